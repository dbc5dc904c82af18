//! The node as a process the operating system runs: [`run`] is `kafkachain node` (configuration,
//! logging, the node and its HTTP API until SIGINT or SIGTERM, then a checkpoint of the store;
//! SIGHUP reopens the log file for logrotate). The signals and the service manager meet here.
//!
//! It tells a service manager how the node is doing, through systemd's notify protocol (a unit of
//! `Type=notify`, `contrib/init/kafkachain.service`): `READY=1` once the node serves current data
//! (it has read the blocks topic up to where it stood at start, or it has halted and says why in
//! `STATUS`), `STOPPING=1` when it begins to stop. Without `NOTIFY_SOCKET` in the environment (run
//! by hand, in the tests) it does nothing.

use crate::api;
use crate::api::open_files::OpenFilesError;
use crate::api::token::{OperatorToken, TokenError, COOKIE_FILE};
use crate::config::{ConfigError, NodeConfig, Overrides};
use crate::logging::{LogFile, LogFormat};
use crate::node::{Node, NotReady, StartError};
use sd_notify::NotifyState;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Why `kafkachain node` could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The log file could not be opened for appending.
    #[error("opening the log file {}: {source}", path.display())]
    LogFile {
        /// The log file.
        path: PathBuf,
        /// What the system reported.
        source: std::io::Error,
    },
    /// The configuration could not be loaded, or an override makes it invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The async runtime could not be started, or the listener's address could not be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The process may not open enough files for `http.max_connections`.
    #[error(transparent)]
    OpenFiles(#[from] OpenFilesError),
    /// The HTTP API's address could not be bound.
    #[error("binding the HTTP API to {addr}: {source}")]
    Bind {
        /// The address (`http_listen`).
        addr: SocketAddr,
        /// What the system reported.
        source: std::io::Error,
    },
    /// The node could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The operator token could not be read or the cookie written.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// Runs a node with the configuration file `config_file` and `overrides`, its log lines in
/// `log_format` on stderr or appended to `log_file`, until SIGINT or SIGTERM; then shuts it down
/// cleanly and checkpoints the store so the next start is fast.
pub fn run(
    config_file: &Path,
    overrides: Overrides,
    log_format: LogFormat,
    log_file: Option<&Path>,
) -> Result<(), RunError> {
    let log_file = log_file
        .map(|path| LogFile::open(path).map(Arc::new).map_err(|source| RunError::LogFile { path: path.into(), source }))
        .transpose()?;
    let config = NodeConfig::load_with(config_file, overrides)?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    crate::logging::init(log_format, &config.node_id, filter, log_file.clone());
    let data_dir = config.data_dir.clone();
    tokio::runtime::Runtime::new()?.block_on(serve(config, log_file))?;
    // The runtime is gone, and with it every handle on the store.
    let started = Instant::now();
    match crate::store::checkpoint(&data_dir) {
        Ok(()) => tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store checkpointed for a fast next start"
        ),
        Err(e) => {
            tracing::warn!("checkpointing the store at shutdown: {e}; the next start reads the log instead")
        }
    }
    Ok(())
}

/// Runs the node and its HTTP API until SIGINT or SIGTERM, then shuts them down cleanly.
async fn serve(config: NodeConfig, log_file: Option<Arc<LogFile>>) -> Result<(), RunError> {
    let open_files = api::open_files::ensure_for(config.http.max_connections)?;
    tracing::debug!(open_files, "open-file limit");
    let addr = config.http_listen;
    let listener = TcpListener::bind(addr).await.map_err(|source| RunError::Bind { addr, source })?;
    let http = listener.local_addr()?;
    let http_config = config.http.clone();
    let data_dir = config.data_dir.clone();
    let (node, running) = Node::start(config).await?;
    let token = OperatorToken::set_up(http_config.token_file.as_deref(), &data_dir)?;
    let shutdown = running.shutdown_token();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    tokio::spawn(announce_ready(node.clone(), shutdown.clone()));
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
async fn reopen_on_hangup(file: Arc<LogFile>) {
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
            Err(e) => {
                tracing::error!("SIGHUP: reopening the log file failed: {e}; writing on to the old one")
            }
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
    announce_stopping();
    token.cancel();
}

/// Sends `READY=1` with a `STATUS` line as soon as the node is caught up or halted, unless it is
/// shut down first.
async fn announce_ready(node: Node, shutdown: CancellationToken) {
    let status = loop {
        match node.readiness() {
            Ok(()) => break "caught up with the blocks topic".to_owned(),
            Err(NotReady::Halted(why)) => break format!("halted: {why}"),
            Err(_) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    };
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Sends `STOPPING=1`.
fn announce_stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("telling the service manager (NOTIFY_SOCKET) failed: {e}");
    }
}
