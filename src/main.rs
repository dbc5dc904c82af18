//! The `kafkachain` binary: parses the command line and hands over to the library.

use clap::{Parser, Subcommand};
use kafkachain::config::{MiningMode, Overrides};
use kafkachain::core::account::Address;
use kafkachain::logging::LogFormat;
use kafkachain::service;
use kafkachain::store::DEFAULT_CACHE_BYTES;
use kafkachain::tools::bench_e2e::E2eOptions;
use kafkachain::tools::bench_pow::PowBenchCommand;
use kafkachain::tools::bench_store::StoreBenchOptions;
use kafkachain::tools::{bench_e2e, bench_pow, bench_store, bench_sync, check_store, soak, store_writer};
use kafkachain::wallet;
use std::path::PathBuf;
use std::process::ExitCode;

/// The allocator of every kafkachain process: jemalloc. Its per-thread caches suit the node's
/// pattern (short-lived buffers on many threads: the applier, the read-ahead, rdkafka's
/// callbacks, HTTP workers); the cold sync measured 1.5-1.9x faster than on glibc malloc
/// (README, issue 25).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A blockchain peer node whose network is Apache Kafka.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: consume the topics into the store, mine, serve the HTTP API.
    Node(NodeArgs),
    /// Measure proof-of-work throughput: search an unreachable difficulty for a fixed time.
    BenchPow {
        /// Threads searching (0 = one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// How long to search at each thread count.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// The hashing kernel: auto (time each for 200 ms, take the fastest), portable, sha-ni,
        /// sha-ni-x1 .. sha-ni-x8, avx2, avx512.
        #[arg(long, default_value = "auto")]
        kernel: String,
        /// Run 1, 2, .. N threads in turn (N = --threads, or the cores) and print rate, speed-up and
        /// efficiency against linear scaling.
        #[arg(long)]
        sweep: bool,
        /// Print one JSON object per thread count (after the table).
        #[arg(long)]
        json: bool,
        /// Draw the rate against the thread count into this SVG file.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Measure end-to-end throughput and block propagation of three local nodes on a real broker.
    BenchE2e {
        /// Seconds of load.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Kafka bootstrap servers.
        #[arg(long, env = "KAFKACHAIN_BROKERS", default_value = "127.0.0.1:9092")]
        brokers: String,
        /// Concurrent HTTP clients.
        #[arg(long, default_value_t = 6)]
        clients: usize,
        /// Transfers per HTTP request.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Offered load, transfers per second over all clients (the target rate by default);
        /// 0 submits as fast as the nodes accept, which measures the backlog's drain.
        #[arg(long, default_value_t = 20_000.0)]
        rate: f64,
        /// Difficulty of the benchmark chain.
        #[arg(long, default_value_t = 8)]
        bits: u32,
        /// Most transactions per block (5,000 gave the most committed tx/s here, with a
        /// propagation a quarter of 20,000's: a block is applied on every node before it counts).
        #[arg(long, default_value_t = 5_000)]
        max_block_txs: usize,
        /// Run the nodes on the secured cluster whose files are in this directory (made by
        /// `scripts/kafka up --secure`, `.kafka/secure`): TLS and SCRAM-SHA-512.
        #[arg(long)]
        secure_dir: Option<PathBuf>,
        /// Node 1 publishes the ledger stream (one confirmation); report its publishing lag.
        #[arg(long)]
        ledger: bool,
        /// A command that runs one of Kafka's tool classes (`scripts/bench-e2e` passes
        /// "scripts/kafka tool"): the run then ends with Kafka's ProducerPerformance and
        /// EndToEndLatency on the same broker, and the ratios to them.
        #[arg(long)]
        kafka_tools: Option<String>,
        /// End with the report as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Run three mining nodes under a steady signed load for a while, sampling what grows on a
    /// long-running node (memory, open files, threads, store, mempool, propagation) into a CSV
    /// and an SVG, and report the slopes after a warm-up.
    Soak {
        /// Minutes of load.
        #[arg(long, default_value_t = 60.0)]
        minutes: f64,
        /// Offered transfers per second.
        #[arg(long, default_value_t = 2_000.0)]
        rate: f64,
        /// Seconds between samples.
        #[arg(long, default_value_t = 10)]
        sample_secs: u64,
        /// Minutes at the start the slopes leave out.
        #[arg(long, default_value_t = 10.0)]
        warmup_minutes: f64,
        /// Directory for soak.csv and soak.svg.
        #[arg(long, default_value = "soak")]
        out: PathBuf,
        /// Kafka bootstrap servers.
        #[arg(long, env = "KAFKACHAIN_BROKERS", default_value = "127.0.0.1:9092")]
        brokers: String,
        /// The broker's log directory: the samples then carry the blocks topic's size.
        #[arg(long)]
        kafka_log_dir: Option<PathBuf>,
        /// End with the report as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Measure a node's cold sync (blocks/s, memory) and restart time on a chain of N blocks.
    BenchSync {
        /// Blocks to load into a fresh topic.
        #[arg(long, default_value_t = 1_000)]
        blocks: u64,
        /// Kafka bootstrap servers.
        #[arg(long, env = "KAFKACHAIN_BROKERS", default_value = "127.0.0.1:9092")]
        brokers: String,
        /// Publish the ledger stream during the sync (one confirmation) and measure its rate.
        #[arg(long)]
        ledger: bool,
        /// The broker's log directory (its `log.dirs`; `scripts/bench-sync` passes the local
        /// broker's): the report then weighs the blocks topic there against the store.
        #[arg(long)]
        kafka_log_dir: Option<PathBuf>,
        /// End with the report as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Measure the store's work per transaction (admit, then confirm in a block) on one core.
    BenchStore {
        /// Transactions to admit and confirm.
        #[arg(long, default_value_t = 300_000)]
        txs: u64,
        /// Transactions kept waiting in the mempool beyond the next block.
        #[arg(long, default_value_t = 200_000)]
        backlog: u64,
        /// Most transactions per block, the reward included (7,000 signed transfers fill most of
        /// the default 1 MiB block).
        #[arg(long, default_value_t = 7_000)]
        max_block_txs: usize,
        /// sled's cache bound in bytes.
        #[arg(long, default_value_t = DEFAULT_CACHE_BYTES)]
        cache_bytes: u64,
        /// Keep the transaction index (`storage.tx_index`), one more write per transfer.
        #[arg(long)]
        tx_index: bool,
        /// Directory for the scratch store (default: a new temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// End with the report as one JSON line.
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
    /// Keep Ed25519 keys in a directory and use them with a node: addresses, balances, transfers.
    Wallet(WalletArgs),
}

/// `kafkachain node` options; each override also reads an environment variable.
#[derive(clap::Args)]
struct NodeArgs {
    /// The node's TOML configuration (see config/default.toml).
    #[arg(long)]
    config: PathBuf,
    /// Override `data_dir`.
    #[arg(long, env = "KAFKACHAIN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Override `http_listen` (host:port).
    #[arg(long, env = "KAFKACHAIN_HTTP")]
    http: Option<std::net::SocketAddr>,
    /// Override `kafka.brokers`.
    #[arg(long, env = "KAFKACHAIN_BROKERS")]
    brokers: Option<String>,
    /// Override `mining.mode`.
    #[arg(long, env = "KAFKACHAIN_MINE", value_enum)]
    mine: Option<MiningMode>,
    /// Log lines on stderr: `text`, or `json` (one object per line) for log collectors; every
    /// line names the node.
    #[arg(long, env = "KAFKACHAIN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Append log lines to this file instead of stderr; SIGHUP opens it again (for logrotate).
    #[arg(long, env = "KAFKACHAIN_LOG_FILE")]
    log_file: Option<PathBuf>,
}

/// `kafkachain wallet` options: the key directory, then what to do.
#[derive(clap::Args)]
struct WalletArgs {
    /// Directory of the key files (created with mode 0700 if missing).
    #[arg(long, global = true, env = "KAFKACHAIN_WALLET_DIR", default_value = "wallet")]
    dir: PathBuf,
    #[command(subcommand)]
    command: WalletCommand,
}

#[derive(Subcommand)]
enum WalletCommand {
    /// Generate a new key and print its address.
    New {
        /// Name of the key (1-64 ASCII letters, digits, '-' or '_').
        name: String,
    },
    /// Store an existing secret key under a name and print its address. The key (the 32-byte
    /// Ed25519 seed, 64 hex characters) is read from standard input, or from a file only its
    /// owner may read: never from the command line, where `ps` shows it to every user.
    Import {
        /// Name of the key (1-64 ASCII letters, digits, '-' or '_').
        name: String,
        /// Read the key from this file (mode 0600 or stricter) instead of standard input.
        #[arg(long)]
        secret_key_file: Option<PathBuf>,
    },
    /// Print every key as "name address", sorted by name.
    List,
    /// Print a key's address.
    Address {
        /// Name of the key.
        name: String,
    },
    /// Print a key's balance and nonces as a node sees them.
    Balance {
        /// Name of the key.
        name: String,
        /// Base URL of the node's HTTP API, e.g. http://127.0.0.1:5000.
        #[arg(long)]
        node: String,
    },
    /// Print a key's transfers in and out, a line each as the node confirms them (and a line for
    /// each a reorganization undoes), until interrupted.
    Watch {
        /// Name of the key.
        name: String,
        /// Base URL of the node's HTTP API, e.g. http://127.0.0.1:5000.
        #[arg(long)]
        node: String,
    },
    /// Sign a transfer from a key, submit it to a node and print its transaction id.
    Send {
        /// Name of the paying key.
        name: String,
        /// Recipient address, 64 hex characters.
        #[arg(long)]
        to: Address,
        /// Amount, in the smallest unit.
        #[arg(long)]
        amount: u64,
        /// Fee for the miner, in the smallest unit.
        #[arg(long, default_value_t = 0)]
        fee: u64,
        /// Base URL of the node's HTTP API, e.g. http://127.0.0.1:5000.
        #[arg(long)]
        node: String,
        /// The chain id to sign for; the node must report the same. Without it, the wallet's
        /// remembered chain id (the first one it signed for) is expected.
        #[arg(long)]
        chain_id: Option<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kafkachain: {}", said_once(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once: most of the library's errors already
/// end with their cause's text, which is not said again.
fn said_once(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

/// Hands the subcommand to the library; check-store's exit code says whether the store is
/// consistent.
fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Node(args) => {
            let overrides = Overrides {
                data_dir: args.data_dir,
                http_listen: args.http,
                brokers: args.brokers,
                mining_mode: args.mine,
            };
            service::run(&args.config, overrides, args.log_format, args.log_file.as_deref())?
        }
        Command::BenchPow { threads, seconds, kernel, sweep, json, svg } => {
            bench_pow::command(&PowBenchCommand { threads, seconds, kernel, sweep, json, svg })?
        }
        Command::BenchE2e {
            seconds,
            brokers,
            clients,
            batch,
            rate,
            bits,
            max_block_txs,
            secure_dir,
            ledger,
            kafka_tools,
            json,
        } => {
            let kafka_tools = kafka_tools.map(|command| command.split_whitespace().map(str::to_owned).collect());
            let options = E2eOptions {
                seconds,
                brokers,
                clients,
                batch,
                rate,
                bits,
                max_block_txs,
                secure: secure_dir,
                ledger,
                kafka_tools,
            };
            bench_e2e::command(&options, json)?
        }
        Command::Soak { minutes, rate, sample_secs, warmup_minutes, out, brokers, kafka_log_dir, json } => {
            let options = soak::SoakOptions { brokers, minutes, rate, sample_secs, warmup_minutes, out, kafka_log_dir };
            soak::command(&options, json)?
        }
        Command::BenchSync { blocks, brokers, ledger, kafka_log_dir, json } => {
            bench_sync::command(&bench_sync::SyncOptions { brokers, blocks, ledger, kafka_log_dir }, json)?
        }
        Command::BenchStore { txs, backlog, max_block_txs, cache_bytes, tx_index, dir, json } => {
            let options = StoreBenchOptions { txs, backlog, max_block_txs, cache_bytes, tx_index };
            bench_store::command(&options, dir.as_deref(), json)?
        }
        Command::CheckStore { data_dir, json } => {
            let consistent = check_store::command(&data_dir, json)?;
            return Ok(if consistent { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Command::StoreWriter { data_dir, blocks } => store_writer::command(&data_dir, blocks)?,
        Command::Wallet(args) => run_wallet(args)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one `kafkachain wallet` subcommand on the key directory.
fn run_wallet(args: WalletArgs) -> Result<(), wallet::CommandError> {
    let wallet = wallet::Commands::open(&args.dir)?;
    match args.command {
        WalletCommand::New { name } => wallet.create(&name),
        WalletCommand::Import { name, secret_key_file } => wallet.import(&name, secret_key_file.as_deref()),
        WalletCommand::List => wallet.list(),
        WalletCommand::Address { name } => wallet.address(&name),
        WalletCommand::Balance { name, node } => wallet.balance(&name, &node),
        WalletCommand::Watch { name, node } => wallet.watch(&name, &node),
        WalletCommand::Send { name, to, amount, fee, node, chain_id } => {
            wallet.send(&name, to, amount, fee, &node, chain_id.as_deref())
        }
    }
}
