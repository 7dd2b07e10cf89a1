//! `coffer server`: wires the configured store, the core with every engine, and the HTTP
//! listener together, and runs until SIGINT/SIGTERM.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use coffer_core::{Core, CoreConfig};
use coffer_http::HttpConfig;
use coffer_sdk::Factory;
use coffer_storage::{Cache, InMem, Sqlite, Store};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::config::{Config, ListenerConfig, StorageConfig};

/// Ciphertexts kept in the read cache in front of the store.
const CACHE_ENTRIES: usize = 64 * 1024;

/// The arguments of `coffer server`.
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Path to an HCL configuration file.
    #[arg(long, required_unless_present = "dev")]
    config: Option<PathBuf>,
    /// Start an unsealed, in-memory dev server with `secret/` mounted as kv v2.
    #[arg(long)]
    dev: bool,
    /// The root token id in dev mode (random when not given).
    #[arg(long, requires = "dev", env = "COFFER_DEV_ROOT_TOKEN_ID")]
    dev_root_token_id: Option<String>,
    /// The address to listen on in dev mode.
    #[arg(long, requires = "dev", default_value = "127.0.0.1:8200")]
    dev_listen_address: String,
}

/// Runs the server; returns when it has shut down.
pub fn run(args: ServerArgs) -> Result<()> {
    let config = match (&args.config, args.dev) {
        (Some(path), false) => Config::load(path)?,
        (_, true) => dev_config(&args.dev_listen_address)?,
        (None, false) => anyhow::bail!("either --config or --dev is required"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config, args))
}

async fn serve(config: Config, args: ServerArgs) -> Result<()> {
    let store: Arc<dyn Store> = match &config.storage {
        StorageConfig::Sqlite { path } => {
            let sqlite = Sqlite::open(path)
                .with_context(|| format!("opening sqlite storage at {}", path.display()))?;
            Arc::new(Cache::new(
                Arc::new(sqlite) as Arc<dyn Store>,
                CACHE_ENTRIES,
            ))
        }
        StorageConfig::InMem => Arc::new(InMem::new()),
    };
    let core = Core::new(
        store,
        CoreConfig {
            default_lease_ttl: config.default_lease_ttl,
            max_lease_ttl: config.max_lease_ttl,
            audit: config.audit.clone(),
        },
        factories(),
    );
    if config.unsafe_allow_api_audit_creation {
        tracing::warn!(
            "audit devices may be created through the API (unsafe_allow_api_audit_creation)"
        );
        core.audit()
            .allow_api_creation(config.audit_api_directory.clone());
    }
    #[cfg(unix)]
    tokio::spawn(reopen_audit_on_sighup(core.clone()));
    let ListenerConfig { address, tls, .. } = &config.listener;
    let tls = match tls {
        Some((cert, key)) => Some(coffer_http::load_tls(cert, key).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };

    if args.dev {
        let init = core
            .dev_init(args.dev_root_token_id.clone())
            .await
            .map_err(|e| anyhow::anyhow!("dev mode initialisation failed: {e}"))?;
        print_dev_banner(
            &format!("{scheme}://{address}"),
            &base64_of(init.shares[0].expose_secret()),
            init.root_token.expose_secret(),
        );
    }
    tracing::info!(%address, storage = config.storage.name(), tls = tls.is_some(), "coffer server started");

    // Mounts' scheduled work, and the barrier's encryption counts (the AES-GCM nonce budget)
    // saved so that they survive restarts.
    let persister = tokio::spawn(scheduled_work(core.clone(), SCHEDULED_EVERY));
    let app = coffer_http::router(
        core.clone(),
        HttpConfig {
            max_request_size: config.max_request_size,
            storage_type: config.storage.name().to_owned(),
        },
    );
    coffer_http::serve(listener, app, tls, shutdown_signal()).await;
    persister.abort();
    if !core.is_sealed() {
        if let Err(e) = core.barrier().persist_encryptions().await {
            tracing::warn!(error = %e, "could not save the barrier's encryption counts");
        }
    }
    tracing::info!("coffer server stopped");
    Ok(())
}

/// How often mounts run their scheduled work and the barrier's encryption counts are saved.
const SCHEDULED_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Once a period: every mount's scheduled work, then the barrier's encryption counts.
async fn scheduled_work(core: std::sync::Arc<Core>, period: std::time::Duration) {
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if core.is_sealed() {
            continue;
        }
        core.run_periodic().await;
        if let Err(e) = core.barrier().persist_encryptions().await {
            tracing::warn!(error = %e, "could not save the barrier's encryption counts");
        }
    }
}

/// Every engine type this binary can mount.
fn factories() -> HashMap<String, Factory> {
    HashMap::from([
        ("kv".to_owned(), coffer_engines::kv_factory()),
        ("cubbyhole".to_owned(), coffer_engines::cubbyhole_factory()),
        ("userpass".to_owned(), coffer_auth::userpass_factory()),
        ("approle".to_owned(), coffer_auth::approle_factory()),
        ("jwt".to_owned(), coffer_auth::jwt_factory()),
        ("oidc".to_owned(), coffer_auth::jwt_factory()),
        ("transit".to_owned(), coffer_engines::transit_factory()),
        ("pki".to_owned(), coffer_engines::pki_factory()),
        ("ssh".to_owned(), coffer_engines::ssh_factory()),
        ("totp".to_owned(), coffer_engines::totp_factory()),
    ])
}

fn dev_config(listen: &str) -> Result<Config> {
    Config::parse(&format!(
        "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"{listen}\"\n  tls_disable = true\n}}\n"
    ))
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The banner `bao server -dev` prints. The key and token go to stdout for the operator, never
/// to the log.
fn print_dev_banner(addr: &str, unseal_key: &str, root_token: &str) {
    println!(
        "WARNING! dev mode is enabled! In this mode, coffer runs entirely in-memory
and starts unsealed with a single unseal key. The root token is already
authenticated to the CLI, so you can immediately begin using coffer.

You may need to set the following environment variables:

    $ export COFFER_ADDR='{addr}'

The unseal key and root token are displayed below in case you want to
seal/unseal the vault or re-authenticate.

Unseal Key: {unseal_key}
Root Token: {root_token}

Development mode should NOT be used in production installations!
"
    );
}

/// SIGHUP reopens the audit files, so that logrotate can move them away; each device's chain
/// continues in its new file.
#[cfg(unix)]
async fn reopen_audit_on_sighup(core: Arc<Core>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install a SIGHUP handler: audit files will not be reopened");
        return;
    };
    while hangup.recv().await.is_some() {
        for (path, result) in core.audit().reopen().await {
            match result {
                Ok(()) => tracing::info!(device = %path, "audit device reopened"),
                Err(error) => {
                    tracing::error!(device = %path, %error, "audit device could not reopen")
                }
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler succeeds on unix");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
