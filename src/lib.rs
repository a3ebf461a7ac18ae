//! spamtap: a passive sensor that finds spam senders, mass-mail clients and SOCKS proxies from
//! packets.
//!
//! The modules follow a packet's path: [`capture`] -> [`decode`] -> [`flow`] ->
//! [`reassembly`] -> [`protocols`] -> [`analysis`] -> [`output`], wired together by
//! [`runtime`] and configured by [`rules`].

pub mod analysis;
pub mod capture;
pub mod cli;
pub mod decode;
pub mod flow;
pub mod output;
pub mod pcapgen;
pub mod protocols;
pub mod reassembly;
pub mod rules;
pub mod runtime;
#[cfg(test)]
mod testing;
pub mod timestamp;
