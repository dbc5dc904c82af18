//! kafkachain: a blockchain peer node whose network is Apache Kafka.
//!
//! Layers, each in its own module: [`core`] (pure consensus logic: no I/O), [`store`] (sled),
//! [`kafka`] (rdkafka: topics, envelope, offsets), [`node`] (wiring: applier thread, miner task),
//! [`api`] (HTTP), [`json`] (the block JSON shape the API serves and peers read back), [`config`]
//! (the node's TOML configuration), [`logging`] (log lines, text or JSON, naming the node),
//! [`secret_file`] (files that hold secrets, refused when others may read them), [`service`]
//! (`kafkachain node` as a process: signals, the shutdown checkpoint, systemd's readiness
//! protocol), [`stream`] (the ledger stream's events for downstream systems, and which come next), [`sync`] (locks that survive a panicked holder), [`wallet`] (key files, a small
//! client for the API and the wallet's subcommands), the wall clock in [`clock`], and the
//! benchmark and test tools in [`tools`], each printing its own report. The binary in `main.rs`
//! only parses the command line and calls these.

pub mod api;
pub mod clock;
pub mod config;
pub mod core;
pub mod json;
pub mod kafka;
pub mod logging;
pub mod node;
pub mod secret_file;
pub mod service;
pub mod store;
pub mod stream;
pub mod sync;
pub mod tools;
pub mod wallet;
