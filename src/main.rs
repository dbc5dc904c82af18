//! The `kafkachain` binary: parses the command line and hands over to the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use kafkachain::api;
use kafkachain::api::token::{OperatorToken, COOKIE_FILE};
use kafkachain::config::{MiningMode, NodeConfig};
use kafkachain::core::account::Address;
use kafkachain::core::miner::KernelChoice;
use kafkachain::logging::{LogFile, LogFormat};
use kafkachain::node::Node;
use kafkachain::node::KERNEL_CALIBRATION;
use kafkachain::store::{self, Store, DEFAULT_CACHE_BYTES};
use kafkachain::tools::cluster::LOAD_ACCOUNTS;
use kafkachain::tools::{bench_e2e, bench_pow, bench_store, bench_sync, store_writer};
use kafkachain::wallet::{self, Wallet};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

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

/// Searches `bench-pow` stops to measure how quickly a search ends when the tip moves.
const STOP_SAMPLES: usize = 200;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kafkachain: {}", said_once(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once: the library's errors already end with
/// their cause's text, and the contexts added here do not.
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Node(args) => {
            let log_format = args.log_format;
            let log_file = match &args.log_file {
                Some(path) => Some(std::sync::Arc::new(
                    LogFile::open(path).with_context(|| format!("opening the log file {}", path.display()))?,
                )),
                None => None,
            };
            let config = load_config(args)?;
            let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            kafkachain::logging::init(log_format, &config.node_id, filter, log_file.clone());
            let data_dir = config.data_dir.clone();
            tokio::runtime::Runtime::new()?.block_on(run_node(config, log_file))?;
            // The runtime is gone, and with it every handle on the store.
            let started = std::time::Instant::now();
            match store::checkpoint(&data_dir) {
                Ok(()) => tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "store checkpointed for a fast next start"
                ),
                Err(e) => {
                    tracing::warn!("checkpointing the store at shutdown: {e}; the next start reads the log instead")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchPow { threads, seconds, kernel, sweep, json, svg } => {
            anyhow::ensure!(seconds > 0.0, "--seconds must be positive");
            let kernel = KernelChoice::parse(&kernel).context("--kernel")?.resolve(KERNEL_CALIBRATION);
            let cpu = bench_pow::CpuInfo::detect();
            let most = if threads == 0 { cpu.cores } else { threads };
            let counts: Vec<usize> = if sweep { (1..=most).collect() } else { vec![most] };
            println!("cpu: {} ({} cores; flags: {})", cpu.model, cpu.cores, cpu.flags.join(" "));
            println!("kernel: {}", kernel.name());
            let reports = bench_pow::bench_pow(kernel, &counts, seconds)?;
            println!("{:>7} {:>14} {:>9} {:>11}  per thread (M/s)", "threads", "M nonces/s", "speed-up", "efficiency");
            for r in &reports {
                let each: Vec<String> = r.per_thread_per_sec.iter().map(|rate| format!("{:.2}", rate / 1e6)).collect();
                println!(
                    "{:>7} {:>14.2} {:>8.2}x {:>10.0}%  {}",
                    r.threads,
                    r.trials_per_sec / 1e6,
                    r.speedup,
                    r.efficiency * 100.0,
                    each.join(" ")
                );
            }
            let stop = bench_pow::stop_latency(kernel, most, STOP_SAMPLES)?;
            println!(
                "stop latency on {most} thread(s), {} searches: p50 {} µs, p99 {} µs, max {} µs",
                stop.samples, stop.p50_us, stop.p99_us, stop.max_us
            );
            if let Some(path) = svg {
                kafkachain::tools::pow_chart::write_svg(&path, &cpu, &reports)?;
                println!("chart: {}", path.display());
            }
            if json {
                for r in &reports {
                    println!(
                        "{}",
                        serde_json::to_string(&serde_json::json!({ "cpu": &cpu, "report": r, "stop_latency": &stop }))?
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchE2e { seconds, brokers, clients, batch, rate, bits, max_block_txs, secure_dir, json } => {
            anyhow::ensure!(seconds > 0.0 && rate >= 0.0, "--seconds must be positive and --rate not negative");
            anyhow::ensure!(
                (1..=LOAD_ACCOUNTS).contains(&clients),
                "--clients must be 1 to {LOAD_ACCOUNTS} (each client signs from its own load accounts)"
            );
            let rate = (rate > 0.0).then_some(rate);
            let secure = secure_dir;
            let options = bench_e2e::E2eOptions { seconds, brokers, clients, batch, rate, bits, max_block_txs, secure };
            let report = bench_e2e::run(&std::env::current_exe()?, &options)?;
            println!(
                "{} committed tx/s ({} of {} accepted), {} blocks, propagation p50 {} ms, p99 {} ms, max {} ms",
                report.committed_tx_per_sec.round(),
                report.committed_txs,
                report.accepted_txs,
                report.blocks,
                report.propagation_p50_ms,
                report.propagation_p99_ms,
                report.propagation_max_ms
            );
            println!("time spent (ms): {}", serde_json::to_string(&report.busy_ms)?);
            println!("rejected: {}", serde_json::to_string(&report.rejected)?);
            if json {
                println!("{}", serde_json::to_string(&report)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchSync { blocks, brokers, json } => {
            let report = bench_sync::run(&std::env::current_exe()?, &brokers, blocks)?;
            println!(
                "{} blocks: loaded in {:.1} s; cold sync {:.1} s ({:.0} blocks/s), {:.1} MiB resident after; \
                 stopped in {} ms; restart caught up in {} ms (opening the store: {} ms) reading {} messages; \
                 time of the sync by stage (ms): {}",
                report.blocks,
                report.load_secs,
                report.cold_sync_secs,
                report.cold_sync_blocks_per_sec,
                report.rss_mib_after_sync,
                report.stop_after_sync_ms,
                report.restart_to_caught_up_ms,
                report.restart_store_open_ms.map_or("?".to_owned(), |ms| ms.to_string()),
                report.restart_consumed,
                report.sync_busy_ms
            );
            if json {
                println!("{}", serde_json::to_string(&report)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchStore { txs, backlog, max_block_txs, cache_bytes, tx_index, dir, json } => {
            let scratch =
                tempfile::Builder::new().prefix("bench-store").tempdir_in(dir.unwrap_or_else(std::env::temp_dir))?;
            let options = bench_store::StoreBenchOptions { txs, backlog, max_block_txs, cache_bytes, tx_index };
            let report = bench_store::run(scratch.path(), &options)?;
            println!(
                "{} transactions in {} blocks: {:.0} tx/s; admit {:.1} µs/tx (of which verifying the signature {:.1}), confirm {:.1} µs/tx",
                report.txs,
                report.blocks,
                report.tx_per_sec,
                report.admit_us_per_tx,
                report.verify_us_per_tx,
                report.confirm_us_per_tx
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
                let line = serde_json::json!({
                    "tip_height": report.tip_height,
                    "main_len": report.main_len,
                    "mempool_len": report.mempool_len,
                    "confirmed_transfers": report.confirmed_transfers,
                    "offsets": offsets,
                    "problems": report.problems,
                });
                println!("{line}");
            } else {
                println!("tip height {}, mempool {}", report.tip_height, report.mempool_len);
                for (position, next) in offsets {
                    println!("offset {position}: next {next}");
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
        Command::Wallet(args) => run_wallet(args),
    }
}

/// Runs one `kafkachain wallet` command on the key directory.
fn run_wallet(args: WalletArgs) -> anyhow::Result<ExitCode> {
    let keys = Wallet::open(&args.dir).with_context(|| format!("opening the wallet in {}", args.dir.display()))?;
    match args.command {
        WalletCommand::New { name } => {
            let address = keys.create(&name).with_context(|| format!("creating key {name}"))?;
            println!("{address}");
        }
        WalletCommand::Import { name, secret_key_file } => {
            let secret_key = match &secret_key_file {
                Some(path) => kafkachain::secret_file::read_private(path)?,
                None => {
                    std::io::read_to_string(std::io::stdin()).context("reading the secret key from standard input")?
                }
            };
            let address = keys.import(&name, secret_key.trim()).with_context(|| format!("importing key {name}"))?;
            println!("{address}");
        }
        WalletCommand::List => {
            for (name, address) in keys.list().context("listing the keys")? {
                println!("{name} {address}");
            }
        }
        WalletCommand::Address { name } => {
            let key = keys.key(&name).with_context(|| format!("reading key {name}"))?;
            println!("{}", kafkachain::core::account::Address::of_key(&key));
        }
        WalletCommand::Balance { name, node } => {
            let key = keys.key(&name).with_context(|| format!("reading key {name}"))?;
            let info = wallet::balance(&node, &kafkachain::core::account::Address::of_key(&key))
                .with_context(|| format!("asking {node} for the account of {name}"))?;
            println!("balance {} nonce {} pending_nonce {}", info.balance, info.nonce, info.pending_nonce);
        }
        WalletCommand::Send { name, to, amount, fee, node, chain_id } => {
            let key = keys.key(&name).with_context(|| format!("reading key {name}"))?;
            let node_chain = wallet::chain_id(&node).with_context(|| format!("asking {node} for its chain id"))?;
            let chain_id = keys.chain_to_sign_for(chain_id.as_deref(), &node_chain)?;
            let id = wallet::send(&node, &key, &chain_id, to, amount, fee)
                .with_context(|| format!("sending {amount} (fee {fee}) from {name} to {to} via {node}"))?;
            println!("{id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the configuration file and applies the command-line and environment overrides.
fn load_config(args: NodeArgs) -> anyhow::Result<NodeConfig> {
    let mut config = NodeConfig::load(&args.config)?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(http) = args.http {
        config.http_listen = http;
    }
    if let Some(brokers) = args.brokers {
        config.kafka.brokers = brokers;
    }
    if let Some(mode) = args.mine {
        config.mining.mode = mode;
    }
    config.check()?;
    Ok(config)
}

/// Runs a node until SIGINT or SIGTERM, then shuts it down cleanly.
async fn run_node(config: NodeConfig, log_file: Option<std::sync::Arc<LogFile>>) -> anyhow::Result<()> {
    let open_files = api::open_files::ensure_for(config.http.max_connections)?;
    tracing::debug!(open_files, "open-file limit");
    let listener = TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding the HTTP API to {}", config.http_listen))?;
    let http = listener.local_addr()?;
    let http_config = config.http.clone();
    let data_dir = config.data_dir.clone();
    let (node, running) = Node::start(config).await?;
    let token = OperatorToken::set_up(http_config.token_file.as_deref(), &data_dir)?;
    let shutdown = running.shutdown_token();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    tokio::spawn(kafkachain::service::announce_ready(node.clone(), shutdown.clone()));
    if let Some(file) = log_file {
        tokio::spawn(reopen_on_hangup(file));
    }
    match &http_config.token_file {
        Some(file) => {
            tracing::info!(%http, token_file = %file.display(), "HTTP API listening; operator token from the token file")
        }
        None => {
            tracing::info!(%http, cookie = %data_dir.join(COOKIE_FILE).display(), "HTTP API listening; operator token in the cookie file")
        }
    }
    api::serve(listener, api::router(node, token, &http_config), &http_config, shutdown.clone()).await;
    shutdown.cancel();
    running.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the log file again on every SIGHUP (logrotate moved it away).
async fn reopen_on_hangup(file: std::sync::Arc<LogFile>) {
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => {
            tracing::error!("cannot listen for SIGHUP: {e}; the log file will not be reopened");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match file.reopen() {
            Ok(()) => tracing::info!("SIGHUP: log file reopened"),
            Err(e) => tracing::error!("SIGHUP: reopening the log file failed: {e}; writing on to the old one"),
        }
    }
}

/// Cancels `token` on SIGINT or SIGTERM, telling the service manager first that the node stops.
async fn cancel_on_signal(token: CancellationToken) {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    kafkachain::service::announce_stopping();
    token.cancel();
}
