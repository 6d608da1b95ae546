use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use zkpow::circuit::keys::Keys;
use zkpow::circuit::Shape;
use zkpow::config::Config;

// jemalloc rather than glibc's malloc, for the daemons' sake: glibc keeps
// freed memory in per-thread arenas and raises its trim threshold after
// large frees, so a long-running aggregator's RSS crept up with no live data
// behind it (docs/BENCHMARKS.md, "Soak"); jemalloc hands idle pages back
// after a few seconds. Unprefixed, so SQLite's allocations go through it too.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// zkpow: prove rollup sequences with Groth16 and earn rewards on-chain.
#[derive(Parser)]
#[command(name = "zkpow", version, about, long_about = None)]
struct Cli {
    /// Configuration file (default: ./config.toml when present).
    #[arg(long, short, global = true, value_name = "FILE", env = "ZKPOW_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a miner's aggregator daemon.
    Aggregator,
    /// Run a prover worker that serves an aggregator.
    Prover,
    /// Run a whole local network: chains, contracts, sequencers, miners.
    Devnet(Box<zkpow::devnet::DevnetArgs>),
    /// Generate Groth16 parameters for circuit shapes (single-party: development only).
    Setup {
        /// Circuit shape "K,D": K transfers per batch, tree depth D. Repeatable.
        #[arg(long, required = true, value_name = "K,D")]
        shape: Vec<Shape>,
        /// Directory for the parameter and verifying-key files (default: keys.dir).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Replace existing parameters. Proofs made with the old ones stop verifying.
        #[arg(long)]
        force: bool,
    },
    /// Deploy the verifier, deposit and rollup contracts to a chain.
    Deploy(Box<zkpow::devnet::deploy_cmd::DeployArgs>),
    /// Show an aggregator's state (its `/v1/status`).
    Status {
        /// The aggregator's HTTP address (default: from aggregator.listen).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// File with the admin token (default: api.admin_token_file / api.admin_token_env).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Print the JSON as served, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Write the real-proof fixture the contract tests read.
    Fixtures {
        #[arg(long, default_value = "contracts/test/fixtures/proofs.json")]
        out: PathBuf,
        #[arg(long, default_value_t = Shape::TEST)]
        shape: Shape,
        /// Number of consecutive batches to prove.
        #[arg(long, default_value_t = 16)]
        batches: usize,
        /// Directory of cached parameters (generated when missing).
        #[arg(long, value_name = "DIR")]
        keys: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (defaults < config file < ZKPOW_ environment).
    Print,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = zkpow::telemetry::init(&config.log) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    match run(cli.command, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Setup { shape, out, force } => setup(&shape, out.unwrap_or(config.keys.dir), force),
        Command::Config { command: ConfigCommand::Print } => {
            print!("{}", config.to_toml()?);
            Ok(())
        }
        Command::Fixtures { out, shape, batches, keys } => {
            let dir = keys.unwrap_or(config.keys.dir);
            let keys = Keys::load_or_setup(&dir, shape, &mut rand::rng())?;
            let fixture = zkpow::fixtures::generate(keys, batches, 2026)?;
            if let Some(parent) = out.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&out, serde_json::to_string_pretty(&fixture)? + "\n")
                .with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {} proofs to {}", batches, out.display());
            Ok(())
        }
        Command::Aggregator => {
            let system = actix_rt::System::new();
            system.block_on(async move {
                let shutdown = shutdown_signal();
                zkpow::node::run(config, shutdown).await
            })
        }
        Command::Prover => {
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(zkpow::prover::worker::run_from_config(config, shutdown_signal()))
        }
        Command::Status { url, token_file, json } => {
            let url = url.unwrap_or_else(|| format!("http://{}", config.aggregator.listen));
            let token = match (token_file, &config.api.admin_token_file, &config.api.admin_token_env) {
                (Some(f), _, _) => Some(zkpow::token::BearerToken::from_file(&f).context("--token-file")?),
                (None, None, None) => None,
                (None, file, env) => {
                    Some(zkpow::token::BearerToken::from_file_or_env(file.as_deref(), env.as_deref(), "api")?)
                }
            };
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let status = rt.block_on(zkpow::status::fetch(&url, token.as_ref()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", zkpow::status::render(&status));
            }
            Ok(())
        }
        Command::Devnet(args) => {
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(zkpow::devnet::run(*args, shutdown_signal()))
        }
        Command::Deploy(args) => {
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(zkpow::devnet::deploy_cmd::run(*args, &config))
        }
    }
}

/// Turns true on SIGINT or SIGTERM.
fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: signal handler: {e}");
                return;
            }
        };
        rt.block_on(async {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: installing the SIGTERM handler: {e}");
                    return;
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutdown requested");
            let _ = tx.send(true);
        });
    });
    rx
}

fn setup(shapes: &[Shape], dir: PathBuf, force: bool) -> anyhow::Result<()> {
    eprintln!(
        "WARNING: this is a single-party Groth16 setup. Whoever ran it knows the toxic waste and can\n\
         forge proofs for these shapes. Use the parameters for development only; for real value,\n\
         load parameters from a multi-party ceremony in the same file format."
    );
    for &shape in shapes {
        let path = zkpow::circuit::keys::params_path(&dir, shape);
        if path.exists() && !force {
            anyhow::bail!(
                "{} exists; pass --force to replace it (proofs made with it will stop verifying)",
                path.display()
            );
        }
        let count = zkpow::circuit::batch_circuit::ConstraintCount::of(shape)?;
        tracing::info!(%shape, constraints = count.constraints, "generating parameters");
        let started = std::time::Instant::now();
        let keys = Keys::setup(shape, &mut rand::rng())?;
        let (params, vk) = keys.write(&dir)?;
        println!(
            "shape {shape}: {} constraints, vk hash 0x{}, {:.1}s\n  {}\n  {}",
            count.constraints,
            hex::encode(keys.vk_hash),
            started.elapsed().as_secs_f64(),
            params.display(),
            vk.display()
        );
    }
    Ok(())
}
