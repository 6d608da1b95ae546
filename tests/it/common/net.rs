//! A small prover network for the end-to-end tests: anvil chains with
//! interval mining, deployed rollups with a native copy of their state (to
//! post random sequences and know the roots they must reach), and miners
//! (an aggregator with its own key, SQLite database and provers).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider};
use rand::SeedableRng;
use zkpow::chain::bindings::{MinerDeposit, ZkPowRollup};
use zkpow::chain::deploy::{deploy, Deployment, RollupParams};
use zkpow::chain::root_to_b256;
use zkpow::circuit::batch::encode;
use zkpow::circuit::encoding::vk_to_bytes;
use zkpow::circuit::executor::apply_batch;
use zkpow::circuit::keys::{cached_test_keys, test_params_dir};
use zkpow::circuit::sample::{genesis_accounts, random_transfers};
use zkpow::circuit::{Account, Shape, StateTree};
use zkpow::db::{self, Db, SubmissionStatus, TxStatus};

use super::anvil::{anvil_path, signer, wallet};
use super::procs::{log_tail, zkpow, Proc};

pub const ETHER: u128 = 1_000_000_000_000_000_000;
pub const PROVER_TOKEN: &str = "test-prover-token-0123456789abcdef";

/// anvil mining a block every `block_time` seconds (no automine: like a
/// real chain, a transaction waits for the next block).
pub fn spawn_chain(chain_id: u64, block_time: f64) -> AnvilInstance {
    Anvil::at(anvil_path())
        .chain_id(chain_id)
        .block_time_f64(block_time)
        .args(["--accounts", "10", "--balance", "1000"])
        .spawn()
}

pub struct TestRollup {
    pub name: String,
    /// Index into the test's chains.
    pub chain: usize,
    pub shape: Shape,
    pub dep: Deployment,
    pub genesis: Vec<(u64, Account)>,
    /// The native state after everything posted so far.
    pub state: StateTree,
    sequencer: DynProvider,
    rng: rand::rngs::ChaCha20Rng,
    next_batch: u64,
}

/// Deploys a rollup of `shape` on `anvil` (account 0 owns, account 1
/// sequences) with windows of `t1`/`t2` blocks; reuses the chain's deposit
/// contract when given.
pub async fn deploy_rollup(
    anvil: &AnvilInstance,
    chain: usize,
    name: &str,
    shape: Shape,
    t1: u32,
    t2: u32,
    deposit: Option<Address>,
) -> TestRollup {
    let (_, owner) = wallet(anvil, 0);
    let (seq_addr, sequencer) = wallet(anvil, 1);
    let keys = cached_test_keys(shape).expect("test keys");
    let genesis = genesis_accounts(shape, 8, 1_000_000);
    let state = StateTree::with_accounts(shape.d, genesis.clone());
    let mut params = RollupParams::dev(
        vk_to_bytes(&keys.params.vk).expect("vk"),
        seq_addr,
        root_to_b256(&state.root()),
        shape.batch_bytes() as u64,
    );
    params.t1 = t1;
    params.t2 = t2;
    let dep = deploy(owner.clone(), &params, deposit).await.expect("deploying the contracts");
    zkpow::chain::deploy::fund_rewards(owner, dep.deposit, dep.rollup, 10 * ETHER).await.expect("funding rewards");
    TestRollup {
        name: name.to_string(),
        chain,
        shape,
        dep,
        genesis,
        state,
        sequencer,
        rng: rand::rngs::ChaCha20Rng::seed_from_u64(chain as u64 * 1000 + shape.k as u64),
        next_batch: 1,
    }
}

impl TestRollup {
    /// Posts a sequence of `n` batches of random transfers (some invalid);
    /// returns (initNumBatch, finalNewBatch).
    pub async fn post(&mut self, n: usize) -> (u64, u64) {
        let mut batches = Vec::new();
        for _ in 0..n {
            let transfers = random_transfers(&mut self.rng, self.shape, &self.state, 8, 0.3);
            let bytes = encode(self.shape, &transfers).expect("encoding a batch");
            apply_batch(&mut self.state, self.shape, &bytes).expect("applying a batch");
            batches.push(Bytes::from(bytes));
        }
        ZkPowRollup::new(self.dep.rollup, self.sequencer.clone())
            .sequenceBatches(batches)
            .send()
            .await
            .expect("posting a sequence")
            .get_receipt()
            .await
            .expect("receipt of the sequence");
        let init = self.next_batch;
        self.next_batch += n as u64;
        (init, self.next_batch - 1)
    }

    pub fn genesis_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("genesis-{}.json", self.name));
        std::fs::write(&path, serde_json::to_string(&self.genesis).expect("genesis json")).expect("writing genesis");
        path
    }
}

/// Bonds `amount` for anvil account `key_index`.
pub async fn bond(anvil: &AnvilInstance, deposit: Address, key_index: usize, amount: u128) {
    let (_, w) = wallet(anvil, key_index);
    MinerDeposit::new(deposit, w)
        .deposit()
        .value(U256::from(amount))
        .send()
        .await
        .expect("deposit")
        .get_receipt()
        .await
        .expect("deposit receipt");
}

/// How a miner reaches one chain.
pub struct MinerChain<'a> {
    pub name: &'a str,
    pub rpc_url: String,
    pub anvil: &'a AnvilInstance,
}

/// One miner: an aggregator (own key, own SQLite database) and its provers.
pub struct Miner {
    pub name: String,
    pub dir: PathBuf,
    pub address: Address,
    pub config: PathBuf,
    pub db_url: String,
    /// The aggregator's HTTP port.
    pub port: u16,
    pub agg: Option<Proc>,
    pub provers: Vec<Proc>,
    starts: usize,
}

impl Miner {
    /// Writes the miner's config: anvil account `key_index` signs on every chain.
    pub fn new(
        root: &Path,
        name: &str,
        key_index: usize,
        chains: &[MinerChain<'_>],
        rollups: &[&TestRollup],
        extra: &str,
    ) -> Miner {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("miner dir");
        let port = super::procs::free_port();
        std::fs::write(dir.join("token"), format!("{PROVER_TOKEN}\n")).expect("token file");
        let key = signer(chains[0].anvil, key_index);
        std::fs::write(dir.join("miner.key"), format!("{}\n", hex::encode(key.to_bytes()))).expect("key file");
        let db_url = format!("sqlite://{}/agg.db", dir.display());
        let shapes: std::collections::BTreeSet<String> =
            rollups.iter().map(|r| format!("\"{},{}\"", r.shape.k, r.shape.d)).collect();
        let mut text = format!(
            r#"
[keys]
dir = "{keys}"
shapes = [{shapes}]

[aggregator]
database_url = "{db_url}"
listen = "127.0.0.1:{port}"
prover_token_file = "{dir}/token"
poll_interval_ms = 200
lease_ms = 4000
claim_poll_ms = 1000

[prover]
aggregator_url = "http://127.0.0.1:{port}"
token_file = "{dir}/token"
# One proof at a time per process: the tests count provers.
workers = 1
{extra}
"#,
            keys = test_params_dir().display(),
            shapes = shapes.into_iter().collect::<Vec<_>>().join(", "),
            dir = dir.display(),
        );
        for c in chains {
            text += &format!(
                "\n[[chains]]\nname = \"{}\"\nrpc_url = \"{}\"\nchain_id = {}\nconfirmations = 0\nkey_file = \"{}/miner.key\"\n",
                c.name,
                c.rpc_url,
                c.anvil.chain_id(),
                dir.display()
            );
        }
        for r in rollups {
            text += &format!(
                "\n[[rollups]]\nname = \"{}\"\nchain = \"{}\"\naddress = \"{}\"\nshape = \"{},{}\"\ngenesis_file = \"{}\"\n",
                r.name,
                chains[r.chain].name,
                r.dep.rollup,
                r.shape.k,
                r.shape.d,
                r.genesis_file(&dir).display()
            );
        }
        let config = dir.join("config.toml");
        std::fs::write(&config, text).expect("writing the config");
        Miner {
            name: name.to_string(),
            dir,
            address: key.address(),
            config,
            db_url,
            port,
            agg: None,
            provers: Vec::new(),
            starts: 0,
        }
    }

    /// Points the aggregator at another database (PostgreSQL for the
    /// failover tests) instead of its own SQLite file.
    pub fn use_database(&mut self, url: &str) {
        let text = std::fs::read_to_string(&self.config).expect("reading the config");
        let text = text.replace(&format!("database_url = \"{}\"", self.db_url), &format!("database_url = \"{url}\""));
        std::fs::write(&self.config, text).expect("writing the config");
        self.db_url = url.to_string();
    }

    pub fn agg_log(&self) -> PathBuf {
        self.dir.join(format!("agg{}.log", self.starts))
    }

    pub fn start_aggregator(&mut self) {
        self.starts += 1;
        self.agg = Some(zkpow(&self.config, &["aggregator"], &self.agg_log(), &[]));
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill_aggregator(&mut self) {
        self.agg.take();
    }

    pub fn start_prover(&mut self) {
        let name = format!("{}-p{}", self.name, self.provers.len());
        let log = self.dir.join(format!("{name}.log"));
        self.provers.push(zkpow(&self.config, &["prover"], &log, &[("ZKPOW_PROVER__NAME", &name)]));
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn db(&self) -> Db {
        Db::connect(&self.db_url).expect("opening the miner's database")
    }

    pub fn log_tail(&self) -> String {
        format!("--- {} aggregator log ---\n{}", self.name, log_tail(&self.agg_log(), 60))
    }
}

/// Polls `check` until it returns Some, or panics after `limit` with the
/// miners' log tails.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, miners: &[&Miner], mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > limit {
            let logs: Vec<String> = miners.iter().map(|m| m.log_tail()).collect();
            panic!("{what}: not reached within {limit:?}\n{}", logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A read-only view of a rollup contract and its deposit contract.
pub struct Onchain {
    pub rollup: ZkPowRollup::ZkPowRollupInstance<DynProvider>,
    pub deposit: MinerDeposit::MinerDepositInstance<DynProvider>,
    pub provider: DynProvider,
}

impl Onchain {
    pub fn new(anvil: &AnvilInstance, r: &TestRollup) -> Onchain {
        let (_, p) = wallet(anvil, 0);
        Onchain {
            rollup: ZkPowRollup::new(r.dep.rollup, p.clone()),
            deposit: MinerDeposit::new(r.dep.deposit, p.clone()),
            provider: p,
        }
    }

    pub async fn last_verified(&self) -> u64 {
        self.rollup.lastVerifiedBatch().call().await.expect("lastVerifiedBatch")
    }

    pub async fn commit_of(&self, init: u64, miner: Address) -> ZkPowRollup::CommitInfo {
        self.rollup.commitOf(init, miner).call().await.expect("commitOf")
    }

    pub async fn rewards(&self, miner: Address) -> u128 {
        self.deposit.rewardsOf(miner).call().await.expect("rewardsOf").to()
    }

    pub async fn deposit_of(&self, miner: Address) -> u128 {
        self.deposit.depositOf(miner).call().await.expect("depositOf").to()
    }

    pub async fn nonce(&self, who: Address) -> u64 {
        self.provider.get_transaction_count(who).await.expect("nonce")
    }
}

/// The miner's submission of a sequence, once it is done.
pub fn outcome(m: &Miner, rollup: &str, init: u64) -> Option<String> {
    let s = m.db().with_conn(|c| db::outbox::get_submission(c, rollup, init)).ok()??;
    (s.status == SubmissionStatus::Done).then(|| s.outcome.unwrap_or_default())
}

/// Every transaction the miner ever sent on a chain went out once, nonces
/// without gaps, none reverted, one per step (purpose, sequence, window): no
/// double sends, no wasted gas.
pub async fn assert_clean_outbox(m: &Miner, on: &Onchain, chain_id: u64) {
    let txs = m.db().with_conn(|c| db::outbox::sender_txs(c, chain_id, &m.address.0 .0)).unwrap();
    assert!(!txs.is_empty(), "{}: sent nothing", m.name);
    // The deposit went out before the daemon started.
    let first = txs[0].nonce;
    let nonces: Vec<u64> = txs.iter().map(|t| t.nonce).collect();
    assert_eq!(nonces, (first..first + txs.len() as u64).collect::<Vec<_>>(), "{}: nonces without gaps", m.name);
    assert_eq!(on.nonce(m.address).await, first + txs.len() as u64, "{}: one transaction per outbox row", m.name);
    let mut steps = std::collections::BTreeSet::new();
    for t in &txs {
        assert_eq!(t.status, TxStatus::Confirmed, "{}: {} {:?}", m.name, t.id, t.error);
        // A settlement's step also names the settled miner (in its id).
        let settled = if t.purpose == db::TxPurpose::Settle { t.id.clone() } else { String::new() };
        assert!(
            steps.insert((t.purpose.as_str(), t.rollup.clone(), t.init_batch, t.window_id, settled)),
            "{}: a second transaction for one step: {}",
            m.name,
            t.id
        );
    }
}
