//! The daemon's configuration: one serde tree with defaults, read from
//! `config.toml` and overridden by `ZKPOW_` environment variables
//! (`ZKPOW_LOG__LEVEL=debug` sets `log.level`; `__` separates levels).
//! Unknown keys are errors that name the key. Secrets never live here: the
//! tree names files or environment variables that hold them.

use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::circuit::Shape;

/// Environment variables with this prefix are for the test suite and are
/// not configuration.
pub const TEST_ENV_PREFIX: &str = "ZKPOW_TEST_";

/// `ZKPOW_` variables that are not configuration keys: the config file's path.
const NOT_CONFIG: [&str; 1] = ["ZKPOW_CONFIG"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub node: NodeConfig,
    pub log: LogConfig,
    pub keys: KeysConfig,
    pub prover: ProverConfig,
    pub aggregator: AggregatorConfig,
    pub sender: SenderConfig,
    pub api: ApiConfig,
    pub failover: FailoverConfig,
    pub retention: RetentionConfig,
    pub chains: Vec<ChainConfig>,
    pub rollups: Vec<RollupConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Where the database, the rollup state and the keys live by default.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `zkpow=debug,info`, ...
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Directory of Groth16 parameter and verifying-key files.
    pub dir: PathBuf,
    /// Shapes to load keys for, as "K,D".
    pub shapes: Vec<Shape>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProverConfig {
    /// Proofs computed at once by this process. Unset: derived from the
    /// core count and memory (`prover::sizing::auto`): enough concurrent
    /// proofs that their serial parts keep every core busy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Threads of the process's proving thread pool, which all of its
    /// concurrent proofs share. Unset: one per core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// The aggregator this prover serves.
    pub aggregator_url: String,
    /// File holding the prover token (or use `token_env`).
    pub token_file: Option<PathBuf>,
    /// Environment variable holding the prover token. Must not start with
    /// `ZKPOW_` (those are configuration keys).
    pub token_env: Option<String>,
    /// Name announced to the aggregator (default: the host name).
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    /// `sqlite://path` (default, under the data directory) or `postgres://...`.
    pub database_url: String,
    /// HTTP listen address of the prover protocol and health endpoints.
    pub listen: String,
    /// File holding the token provers must present (or use `prover_token_env`).
    pub prover_token_file: Option<PathBuf>,
    /// Environment variable holding the prover token (not `ZKPOW_*`).
    pub prover_token_env: Option<String>,
    /// How often the chain is polled for new blocks.
    pub poll_interval_ms: u64,
    /// A lease without a heartbeat for this long goes back to the queue.
    pub lease_ms: u64,
    /// Leases that may end without a result before a task is failed.
    pub max_attempts: u32,
    /// Longest a prover's claim waits for work.
    pub claim_poll_ms: u64,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            database_url: "sqlite://data/zkpow.db".into(),
            listen: "127.0.0.1:8600".into(),
            prover_token_file: None,
            prover_token_env: None,
            poll_interval_ms: 1_000,
            lease_ms: 60_000,
            max_attempts: 5,
            claim_poll_ms: 10_000,
        }
    }
}

/// Failover between aggregator processes of one miner that share a
/// PostgreSQL database: one is active, the others stand by (README.md,
/// "Running a standby"). A SQLite database serves one process only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailoverConfig {
    /// A standby takes over when the active process has not renewed its
    /// lease for this long (it died, hung or lost the database).
    pub lease_ms: u64,
    /// How often the active process renews its lease and a standby tries
    /// to take it.
    pub renew_ms: u64,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig { lease_ms: 5_000, renew_ms: 1_000 }
    }
}

/// What the database keeps of settled sequences (docs/ARCHITECTURE.md,
/// "Retention"). A settled sequence whose submission is done and whose
/// transactions are all final gives up its proofs and its transactions'
/// signed bytes and calldata; its rows, states, hashes, fees and booked
/// rewards stay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// How long after settling (verified or skipped) a sequence keeps them.
    /// 0 drops them at the next pass.
    pub keep_settled_s: u64,
    /// How often the pruning pass runs.
    pub interval_s: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { keep_settled_s: 3_600, interval_s: 60 }
    }
}

/// The control API (`/v1/*` besides the prover protocol, `/readyz`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// File holding the admin token (or use `admin_token_env`). Without one,
    /// control calls (pause, resume, resend) are refused.
    pub admin_token_file: Option<PathBuf>,
    /// Environment variable holding the admin token (not `ZKPOW_*`).
    pub admin_token_env: Option<String>,
    /// Serve the read endpoints (status, sequences, provers) without a token.
    pub read_open: bool,
    /// `/readyz` fails when the watcher is further behind the chain head.
    pub ready_max_lag_blocks: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { admin_token_file: None, admin_token_env: None, read_open: false, ready_max_lag_blocks: 64 }
    }
}

/// How proofs are taken on chain (commit within T1, reveal within T2) and
/// how the transaction manager treats fees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SenderConfig {
    /// Send nothing on chain (prove only). The daemon still tracks the chain.
    pub enabled: bool,
    /// Do not commit with fewer blocks than this left in T1: a commit mined
    /// after T1 reverts and wastes its gas.
    pub commit_margin_blocks: u64,
    /// Do not start a reveal with fewer blocks than this left in T2.
    pub reveal_margin_blocks: u64,
    /// Re-sign a transaction with higher fees when it has waited this many
    /// blocks without being mined.
    pub bump_after_blocks: u64,
    /// Fee increase per bump, percent (nodes require at least 10).
    pub bump_percent: u64,
    /// Never pay more than this per gas (gwei), bumps included.
    pub max_fee_per_gas_gwei: u64,
    /// Extra gas over the node's estimate, percent.
    pub gas_limit_margin_percent: u64,
    /// Claim rewards after the window of a sequence we proved ends.
    pub claim_rewards: bool,
    /// Skip a commit when the estimated gas of commit and reveal costs more
    /// than the sequence's whole reward. Off by default: a miner may prove at
    /// a loss to keep its place, and the estimate ignores the reward share.
    pub profit_guard: bool,
    /// Commit to every proven, unverified sequence whose window takes
    /// commits (protocol v2's pipelined windows). `false` keeps to one
    /// window at a time, the next sequence only: the v1 behaviour, kept as
    /// the reference of the throughput benchmark.
    pub pipelined: bool,
    /// Settle other miners' expired commits (`settleNoProof`) when the
    /// settler's share of the penalty pays for the gas at least this many
    /// times over; 0 never settles others' commits (our own are always
    /// settled, which frees our bond).
    pub settle_others_min_ratio: u64,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            enabled: true,
            commit_margin_blocks: 3,
            reveal_margin_blocks: 2,
            bump_after_blocks: 3,
            bump_percent: 20,
            max_fee_per_gas_gwei: 500,
            gas_limit_margin_percent: 25,
            claim_rewards: true,
            profit_guard: false,
            pipelined: true,
            settle_others_min_ratio: 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    pub name: String,
    pub rpc_url: String,
    pub chain_id: u64,
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
    /// File holding the miner's hex private key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Name of an environment variable holding the miner's hex private key.
    #[serde(default)]
    pub key_env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupConfig {
    pub name: String,
    /// `name` of the chain the rollup contract lives on.
    pub chain: String,
    pub address: String,
    pub shape: Shape,
    #[serde(default = "default_start_batch")]
    pub start_batch: u64,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// JSON file of the genesis accounts (`[[index, {"balance": .., "nonce": ..}], ...]`);
    /// its root must equal the contract's genesis root.
    pub genesis_file: PathBuf,
}

fn default_confirmations() -> u64 {
    2
}
fn default_start_batch() -> u64 {
    1
}
fn default_weight() -> u32 {
    1
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig { data_dir: PathBuf::from("data") }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), format: LogFormat::Text }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig { dir: PathBuf::from("data/keys"), shapes: vec![Shape::TEST] }
    }
}

impl Default for ProverConfig {
    fn default() -> Self {
        ProverConfig {
            workers: None,
            threads: None,
            aggregator_url: "http://127.0.0.1:8600".into(),
            token_file: None,
            token_env: None,
            name: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Parse(String),
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    #[error("invalid configuration: {key}: {msg}")]
    Invalid { key: String, msg: String },
}

impl Config {
    /// Defaults < `path` (if given, it must exist; if not given, `config.toml`
    /// in the working directory is read when present) < `ZKPOW_` environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// As [`Config::load`] with an explicit environment, so tests need not
    /// touch the process's.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(p) if !p.exists() => return Err(ConfigError::Missing(p.to_path_buf())),
            Some(p) => fig = fig.merge(Toml::file_exact(p)),
            None if Path::new("config.toml").exists() => fig = fig.merge(Toml::file_exact("config.toml")),
            None => {}
        }
        let vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| {
                k.starts_with("ZKPOW_") && !k.starts_with(TEST_ENV_PREFIX) && !NOT_CONFIG.contains(&k.as_str())
            })
            .collect();
        let env_keys: Vec<(String, String)> =
            vars.iter().map(|(k, _)| (k["ZKPOW_".len()..].to_lowercase().replace("__", "."), k.clone())).collect();
        for (k, v) in vars {
            let key = k["ZKPOW_".len()..].to_lowercase().replace("__", ".");
            // Parsed like figment's own Env provider: numbers, booleans and
            // arrays where the text is one, strings otherwise.
            let value: figment::value::Value = v.parse().unwrap_or_else(|e: std::convert::Infallible| match e {});
            fig = fig.merge(Serialized::global(&key, value));
        }
        let cfg: Config = fig.extract().map_err(|e| ConfigError::Parse(format_figment(e, &env_keys)))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: String, msg: &str| Err(ConfigError::Invalid { key, msg: msg.to_string() });
        for (key, env) in [
            ("prover.token_env", &self.prover.token_env),
            ("aggregator.prover_token_env", &self.aggregator.prover_token_env),
            ("api.admin_token_env", &self.api.admin_token_env),
        ] {
            if env.as_deref().is_some_and(|v| v.starts_with("ZKPOW_")) {
                return invalid(key.into(), "ZKPOW_* variables are configuration keys; pick another name");
            }
        }
        if self.aggregator.lease_ms < 1_000 {
            return invalid("aggregator.lease_ms".into(), "must be at least 1000");
        }
        if self.failover.renew_ms < 50 {
            return invalid("failover.renew_ms".into(), "must be at least 50");
        }
        if self.failover.lease_ms < 3 * self.failover.renew_ms {
            return invalid(
                "failover.lease_ms".into(),
                "must be at least three times failover.renew_ms (a renewal may be late)",
            );
        }
        if self.retention.interval_s == 0 {
            return invalid("retention.interval_s".into(), "must be at least 1");
        }
        if self.aggregator.max_attempts == 0 {
            return invalid("aggregator.max_attempts".into(), "must be at least 1");
        }
        if self.api.admin_token_file.is_some() && self.api.admin_token_env.is_some() {
            return invalid("api".into(), "set admin_token_file or admin_token_env, not both");
        }
        if self.sender.bump_percent < 10 {
            return invalid("sender.bump_percent".into(), "nodes refuse replacements below 10 percent");
        }
        if self.sender.commit_margin_blocks < 2 {
            return invalid(
                "sender.commit_margin_blocks".into(),
                "must be at least 2 (the commit lands a block later)",
            );
        }
        if self.prover.workers == Some(0) {
            return invalid(
                "prover.workers".into(),
                "must be at least 1 (leave it unset to derive it from the machine)",
            );
        }
        if self.prover.threads == Some(0) {
            return invalid("prover.threads".into(), "must be at least 1 (leave it unset for one per core)");
        }
        if let Err(e) = self.log.level.parse::<tracing_subscriber::EnvFilter>() {
            return invalid("log.level".into(), &e.to_string());
        }
        for (i, c) in self.chains.iter().enumerate() {
            if c.key_file.is_some() && c.key_env.is_some() {
                return invalid(format!("chains[{i}]"), "set key_file or key_env, not both");
            }
            if self.chains.iter().filter(|o| o.name == c.name).count() > 1 {
                return invalid(format!("chains[{i}].name"), "chain names must be unique");
            }
        }
        for (i, r) in self.rollups.iter().enumerate() {
            if !self.chains.iter().any(|c| c.name == r.chain) {
                return invalid(format!("rollups[{i}].chain"), "names no configured chain");
            }
            if r.start_batch == 0 {
                return invalid(format!("rollups[{i}].start_batch"), "batches are numbered from 1");
            }
            if r.weight == 0 {
                return invalid(format!("rollups[{i}].weight"), "must be at least 1");
            }
        }
        Ok(())
    }

    /// The effective configuration as TOML, for `zkpow config print`.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::Parse(e.to_string()))
    }
}

fn format_figment(e: figment::Error, env_keys: &[(String, String)]) -> String {
    e.into_iter()
        .map(|e| {
            let path = e.path.join(".");
            let key = if path.is_empty() { String::new() } else { format!("{path}: ") };
            let from_env = env_keys.iter().find(|(k, _)| path.starts_with(k.as_str()) || k.starts_with(&path));
            let src = match (from_env, e.metadata.as_ref().and_then(|m| m.source.as_ref())) {
                (Some((_, var)), _) if !path.is_empty() => format!(" (from environment variable {var})"),
                (_, Some(figment::Source::File(f))) => format!(" (in {})", f.display()),
                _ => String::new(),
            };
            format!("{key}{}{src}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_then_file_then_env() {
        let f = write("[log]\nlevel = \"debug\"\n[prover]\nworkers = 3\n");
        let cfg =
            Config::load_with_env(Some(f.path()), env(&[("ZKPOW_PROVER__WORKERS", "5"), ("OTHER", "x")])).unwrap();
        assert_eq!(cfg.log.level, "debug");
        assert_eq!(cfg.prover.workers, Some(5));
        assert_eq!(cfg.prover.threads, None, "unset: derived from the machine");
        assert_eq!(cfg.node.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn unknown_key_is_named() {
        let f = write("[prover]\nworkerz = 3\n");
        let err = Config::load_with_env(Some(f.path()), env(&[])).unwrap_err().to_string();
        assert!(err.contains("workerz"), "{err}");
        let err = Config::load_with_env(None, env(&[("ZKPOW_PROVER__THREADZ", "2")])).unwrap_err().to_string();
        assert!(err.contains("threadz"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = Config::load_with_env(None, env(&[("ZKPOW_PROVER__WORKERS", "0")])).unwrap_err().to_string();
        assert!(err.contains("prover.workers"), "{err}");
        let err = Config::load_with_env(None, env(&[("ZKPOW_PROVER__THREADS", "0")])).unwrap_err().to_string();
        assert!(err.contains("prover.threads"), "{err}");
        let f = write("[keys]\nshapes = [\"4\"]\n");
        let err = Config::load_with_env(Some(f.path()), env(&[])).unwrap_err().to_string();
        assert!(err.contains("keys.shapes") && err.contains("K,D"), "{err}");
        let f = write("[[rollups]]\nname = \"r\"\nchain = \"nope\"\naddress = \"0x00\"\nshape = \"2,4\"\ngenesis_file = \"g.json\"\n");
        let err = Config::load_with_env(Some(f.path()), env(&[])).unwrap_err().to_string();
        assert!(err.contains("rollups[0].chain"), "{err}");
    }

    #[test]
    fn test_variables_are_not_config_and_missing_file_is_an_error() {
        assert!(Config::load_with_env(None, env(&[("ZKPOW_TEST_PARAMS_DIR", "/x")])).is_ok());
        let err = Config::load_with_env(Some(Path::new("/nonexistent/zkpow.toml")), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Missing(_)));
    }

    #[test]
    fn the_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let cfg = Config::load_with_env(Some(&path), env(&[])).unwrap();
        assert_eq!(cfg.aggregator.listen, "127.0.0.1:8600");
    }

    #[test]
    fn printed_config_loads_back_identically() {
        let f = write(
            "[[chains]]\nname = \"l1\"\nrpc_url = \"http://127.0.0.1:8545\"\nchain_id = 31337\nkey_env = \"MINER_KEY\"\n\
             [[rollups]]\nname = \"r\"\nchain = \"l1\"\naddress = \"0x0000000000000000000000000000000000000001\"\nshape = \"2,4\"\ngenesis_file = \"g.json\"\n",
        );
        let cfg = Config::load_with_env(Some(f.path()), env(&[])).unwrap();
        let printed = write(&cfg.to_toml().unwrap());
        assert_eq!(Config::load_with_env(Some(printed.path()), env(&[])).unwrap(), cfg);
    }
}
