//! Flows: the symmetric key, the capped table with packet-time deadlines, and what the flow
//! stage records of each connection (its identity, TCP state, counters and how it ended).

mod connection;
mod key;
mod record;
mod table;

pub use connection::{Connection, Timeouts};
pub use key::{FlowKey, Side};
pub use record::{EndReason, FlowIdentity, FlowRecord, FlowState, FlowStats, TcpSummary};
pub use table::{FlowTable, KeyHash, KeyHasher, Visit};
