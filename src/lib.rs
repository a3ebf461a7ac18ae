//! spamtap: a passive sensor that finds spam senders, mass-mail clients and SOCKS proxies from
//! packets.
//!
//! The stages follow a packet's path, and each imports only the stages before it:
//! [`capture`] -> [`decode`] -> [`flow`] -> [`reassembly`] -> [`protocols`] -> [`rules`] ->
//! [`enrich`] -> [`analysis`] -> [`output`]. [`tracker`] runs one worker's segments through
//! them; [`runtime`] wires capture, workers and output together. Below every stage is the
//! shared vocabulary: [`timestamp`], [`direction`], [`text`], [`software`] and [`memory`].
//! `tests/architecture.rs` keeps it so.

pub mod analysis;
pub mod capture;
pub mod cli;
pub mod config;
pub mod decode;
pub mod direction;
pub mod enrich;
pub mod fleet;
pub mod flow;
pub mod memory;
pub mod output;
pub mod protocols;
pub mod reassembly;
pub mod report;
pub mod rules;
pub mod runtime;
pub mod software;
#[cfg(test)]
mod testing;
pub mod text;
pub mod timestamp;
pub mod tracker;
