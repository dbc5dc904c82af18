//! The `kafkachain` binary: parses the command line and hands over to the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use kafkachain::store::{Store, DEFAULT_CACHE_BYTES};
use kafkachain::tools::{bench_pow, store_writer};
use std::path::PathBuf;
use std::process::ExitCode;

/// A blockchain peer node whose network is Apache Kafka.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure proof-of-work throughput: search an unreachable difficulty for a fixed time.
    BenchPow {
        /// Threads searching (0 = one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// How long to search.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// End with one JSON line: {"threads","seconds","trials","trials_per_sec"}.
        #[arg(long)]
        json: bool,
    },
    /// Check a data directory's consistency (tip, main-chain index, transaction index, mempool).
    CheckStore {
        /// The node's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Print the report as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Apply freshly mined blocks to a scratch store, as the node does (for crash tests).
    StoreWriter {
        /// Directory of the scratch store (created if missing).
        #[arg(long)]
        data_dir: PathBuf,
        /// Stop after this many blocks (default: run until killed).
        #[arg(long)]
        blocks: Option<u64>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kafkachain: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::BenchPow { threads, seconds, json } => {
            anyhow::ensure!(seconds > 0.0, "--seconds must be positive");
            let report = bench_pow::bench_pow(threads, seconds)?;
            println!(
                "{} thread(s), {:.1} s: {} trials, {:.0} trials/s",
                report.threads, report.seconds, report.trials, report.trials_per_sec
            );
            if json {
                println!("{}", serde_json::to_string(&report)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckStore { data_dir, json } => {
            let store = Store::open_existing(&data_dir, DEFAULT_CACHE_BYTES)
                .with_context(|| format!("opening {}", data_dir.display()))?;
            let report = store.check_consistency()?;
            let offsets = store.offsets()?;
            if json {
                let offsets: serde_json::Map<_, _> =
                    offsets.into_iter().map(|(k, v)| (k, v.into())).collect();
                let line = serde_json::json!({
                    "tip_height": report.tip_height,
                    "main_len": report.main_len,
                    "mempool_len": report.mempool_len,
                    "confirmed_txs": report.confirmed_txs,
                    "offsets": offsets,
                    "problems": report.problems,
                });
                println!("{line}");
            } else {
                println!("tip height {}, mempool {}", report.tip_height, report.mempool_len);
                for (key, next) in offsets {
                    println!("offset {key}: next {next}");
                }
                for problem in &report.problems {
                    println!("PROBLEM: {problem}");
                }
            }
            Ok(if report.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::StoreWriter { data_dir, blocks } => {
            let applied = store_writer::run(&data_dir, blocks, DEFAULT_CACHE_BYTES)
                .with_context(|| format!("writing blocks into {}", data_dir.display()))?;
            println!("applied {applied} blocks");
            Ok(ExitCode::SUCCESS)
        }
    }
}
