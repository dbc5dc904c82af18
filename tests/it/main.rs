//! The integration tests: real `kafkachain node` processes against a real Kafka broker (the one
//! `scripts/test` starts, or clusters of the tests' own), one module per subject, linked into
//! one test binary so the crate is linked once. Run one subject with
//! `cargo test --test it SUBJECT::` (for example `cargo test --test it failover:: -- --nocapture`).

// A test that cannot unwrap has failed; the harness's items are `pub` for the test modules.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod common;

mod bootstrap;
mod broker_away;
mod consumer_group;
mod crash_soak;
mod events;
mod explorer;
mod explorer_page;
mod failover;
mod fees;
mod fuzz;
mod http_input;
mod ledger;
mod metrics;
mod network;
mod openapi;
mod ownership;
mod peer_sync;
mod poison;
mod restart;
mod retarget;
mod secure_kafka;
mod service;
mod slowloris;
mod store_crash;
mod topic_attacks;
mod topic_settings;
