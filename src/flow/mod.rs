//! Flows: the symmetric key, the capped table with packet-time deadlines.

mod key;
mod table;

pub use key::{Direction, FlowKey, Side, stable_hash};
pub use table::FlowTable;
