//! Flows: the symmetric key, the capped table with packet-time deadlines, and the tracker that
//! runs each segment through reassembly and the application layer.

mod key;
mod table;
mod tracker;

pub use key::{Direction, FlowKey, Side, stable_hash};
pub use table::FlowTable;
pub use tracker::{EventContext, Timeouts, Tracker, TrackerConfig};
