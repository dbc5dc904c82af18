//! kafkachain: a blockchain peer node whose network is Apache Kafka.
//!
//! Layers, each in its own module: [`core`] (pure consensus logic), [`store`] (sled),
//! and the operator tools in [`tools`].

pub mod tools;
pub mod api;
pub mod config;
pub mod core;
pub mod kafka;
pub mod node;
pub mod store;
