//! Operator and test tools behind the binary's secondary subcommands.

pub mod bench_e2e;
pub mod bench_pow;
pub mod bench_store;
pub mod bench_sync;
pub mod cluster;
pub mod load;
pub mod pow_chart;
pub mod store_writer;
