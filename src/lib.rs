//! kafkachain: a blockchain peer node whose network is Apache Kafka.
//!
//! Layers, each in its own module: [`core`] (pure consensus logic), [`store`] (sled),
//! and the command-line tools in [`bench`].

pub mod bench;
pub mod core;
pub mod store;
