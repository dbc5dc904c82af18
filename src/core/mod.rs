//! The pure core: consensus types, hashing, proof of work, validation and fork choice. No I/O,
//! no async, no Kafka, no sled: everything here can be tested on its own.

pub mod account;
pub mod admission;
pub mod block;
pub mod chain;
pub mod encoding;
pub mod fee_rate;
pub mod hash;
pub mod header;
pub mod hex_text;
pub mod ledger;
pub mod memory;
pub mod merkle;
pub mod miner;
pub mod params;
pub mod pow;
pub mod signature;
pub mod transaction;
pub mod validate;

#[cfg(test)]
mod chain_tests;
#[cfg(test)]
mod retarget_tests;
#[cfg(any(test, feature = "test-support"))]
pub mod testkit;
