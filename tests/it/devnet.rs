//! `zkpow devnet` and `zkpow deploy` as a user runs them: the real binary,
//! real anvil chains, real proofs. Also keeps the README honest: every
//! command it shows parses, and its TOML snippets load.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alloy::node_bindings::Anvil;
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use zkpow::aggregator::genesis::load_genesis;
use zkpow::chain::bindings::{MinerDeposit, ZkPowRollup};
use zkpow::circuit::keys::{cached_test_keys, test_params_dir};
use zkpow::circuit::Shape;
use zkpow::config::Config;
use zkpow::devnet::chaos::{ChaosSummary, Drain};
use zkpow::devnet::progress::Status;
use zkpow::devnet::sequencer::replay;
use zkpow::devnet::supervise::ProcKind;

use crate::common::anvil::{anvil_path, spawn};
use crate::common::procs::{log_tail, Proc};

const BIN: &str = env!("CARGO_BIN_EXE_zkpow");

/// A port `p` with `p + 1` free too.
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let p = crate::common::procs::free_port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two consecutive free ports");
}

/// Blocks, windows and sequences of the devnet tests: fast.
const TIMING: &[&str] =
    &["--block-time", "0.5", "--t1", "8", "--t2", "12", "--interval-secs", "3", "--max-batches", "2"];

/// Runs the devnet with `timing` (see [`TIMING`]), its data in `dir/data`
/// (`--fresh` empties that) and its output in `dir`.
fn devnet(dir: &Path, timing: &[&str], extra: &[&str], chain_port: u16, api_port: u16, run: usize) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.arg("devnet")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--keys-dir")
        .arg(test_params_dir())
        .args(timing)
        .args(["--base-port", &chain_port.to_string(), "--api-port", &api_port.to_string(), "--status-secs", "5"])
        .args(extra)
        .env("ANVIL", anvil_path())
        .env("RUST_LOG", "info")
        .current_dir(dir)
        .stdout(std::fs::File::create(dir.join(format!("stdout{run}.log"))).unwrap())
        .stderr(std::fs::File::create(dir.join(format!("stderr{run}.log"))).unwrap());
    Proc(cmd.spawn().expect("starting zkpow devnet"))
}

fn read_status(dir: &Path) -> Option<Status> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("data/status.json")).ok()?).ok()
}

fn failure(dir: &Path, run: usize) -> String {
    let mut s = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        log_tail(&dir.join(format!("stdout{run}.log")), 40),
        log_tail(&dir.join(format!("stderr{run}.log")), 30)
    );
    for name in ["miner1-aggregator", "miner2-aggregator", "miner1-prover0"] {
        s += &format!("\n--- {name} ---\n{}", log_tail(&dir.join("data/logs").join(format!("{name}.log")), 15));
    }
    s
}

/// SIGTERM, as Ctrl-C or a service manager would stop it; the exit status.
fn terminate(p: &mut Proc, limit: Duration) -> std::process::ExitStatus {
    // SAFETY: plain syscall on our own child's pid.
    unsafe {
        libc::kill(p.pid(), libc::SIGTERM);
    }
    let start = Instant::now();
    loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            return s;
        }
        assert!(start.elapsed() < limit, "devnet did not stop within {limit:?} of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[derive(serde::Deserialize)]
struct Manifest {
    chains: Vec<ManifestChain>,
    rollups: Vec<ManifestRollup>,
}
#[derive(serde::Deserialize)]
struct ManifestChain {
    name: String,
    deposit: Address,
}
#[derive(serde::Deserialize, PartialEq, Debug)]
struct ManifestRollup {
    name: String,
    chain: String,
    shape: Shape,
    rollup: Address,
}

/// The two full devnets (two chains, two miners, provers each) do not run
/// at once: together on 2 cores they starve each other's proofs past the
/// windows and bounds these tests check.
/// An async lock: the guard is held across the tests' awaits, and a test
/// that failed must not poison it for the other.
async fn one_devnet_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static DEVNET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    DEVNET.lock().await
}

#[tokio::test(flavor = "multi_thread")]
async fn devnet_verifies_on_both_chains_rewards_both_miners_and_resumes() {
    let _one = one_devnet_at_a_time().await;
    // The devnet reuses the test suite's cached parameters.
    cached_test_keys(Shape { k: 2, d: 4 }).unwrap();
    cached_test_keys(Shape { k: 2, d: 5 }).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (chain_port, api_port) = (free_port_pair(), free_port_pair());
    let started = Instant::now();
    let mut p = devnet(dir, TIMING, &["--fresh", "--duration-secs", "170"], chain_port, api_port, 1);

    let done = |s: &Status| {
        s.rollups.iter().all(|r| r.sequences_verified >= 1)
            && s.miners.iter().all(|m| m.chains.iter().all(|c| c.rewarded >= 1))
    };
    let status = loop {
        if let Some(s) = read_status(dir).filter(done) {
            break s;
        }
        if let Some(code) = p.0.try_wait().unwrap() {
            panic!("devnet exited early ({code})\n{}", failure(dir, 1));
        }
        assert!(started.elapsed() < Duration::from_secs(160), "not verified and rewarded in time\n{}", failure(dir, 1));
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("verified on both chains, both miners rewarded after {:.1}s", started.elapsed().as_secs_f64());
    for r in &status.rollups {
        eprintln!("{}: first verified {:?}s after start", r.name, r.first_verified_secs);
    }

    // `zkpow status` works against a running miner out of the box: the
    // devnet configures an admin token and prints the command.
    let out = std::fs::read_to_string(dir.join("stdout1.log")).unwrap();
    let miner1_config = dir.join("data/miner1/config.toml");
    assert!(out.contains(&format!("miner1: zkpow status --config {}", miner1_config.display())), "{out}");
    let st = Command::new(BIN)
        .arg("status")
        .arg("--config")
        .arg(&miner1_config)
        .env_remove("ZKPOW_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(st.status.success(), "zkpow status failed: {}\n{text}", String::from_utf8_lossy(&st.stderr));
    for want in ["zkpow aggregator", "rollup-a", "rollup-b", "provers:", "sender:"] {
        assert!(text.contains(want), "status output lacks {want:?}:\n{text}");
    }

    // Check the chains directly while they run: the verified root is what
    // the native executor computes from the posted calldata, nobody was
    // punished.
    let manifest: Manifest =
        serde_json::from_str(&std::fs::read_to_string(dir.join("data/devnet.json")).unwrap()).unwrap();
    let provider_of = |chain: &str| -> DynProvider {
        let i = manifest.chains.iter().position(|c| c.name == chain).unwrap();
        let url = format!("http://127.0.0.1:{}", chain_port + i as u16);
        ProviderBuilder::new().connect_http(url.parse().unwrap()).erased()
    };
    for r in &manifest.rollups {
        let provider = provider_of(&r.chain);
        let genesis = load_genesis(&dir.join(format!("data/genesis-{}.json", r.name))).unwrap();
        let contract = ZkPowRollup::new(r.rollup, provider.clone());
        let verified = contract.lastVerifiedBatch().call().await.unwrap();
        let root = contract.stateRoot().call().await.unwrap();
        let (_, history) = replay(&provider, r.rollup, r.shape, &genesis).await.unwrap();
        assert!(verified >= 1, "{}", r.name);
        assert_eq!(history.root_at(verified), Some(root), "{}: verified root vs native executor", r.name);
    }
    for c in &manifest.chains {
        let filter =
            Filter::new().address(c.deposit).event_signature(MinerDeposit::Slashed::SIGNATURE_HASH).from_block(0);
        let punished = provider_of(&c.name).get_logs(&filter).await.unwrap();
        assert!(punished.is_empty(), "{}: somebody was punished: {punished:?}", c.name);
    }

    let code = terminate(&mut p, Duration::from_secs(60));
    assert!(code.success(), "devnet exit status {code}\n{}", failure(dir, 1));
    let out = std::fs::read_to_string(dir.join("stdout1.log")).unwrap();
    assert!(out.contains("summary") && out.contains("matches executor"), "{out}");
    let before = read_status(dir).unwrap();

    // A second run resumes the same chains, contracts and sequencer state.
    let mut p = devnet(dir, TIMING, &["--blocks", "50"], chain_port, api_port, 2);
    let start = Instant::now();
    let code = loop {
        if let Some(code) = p.0.try_wait().unwrap() {
            break code;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "bounded run did not end\n{}", failure(dir, 2));
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(code.success(), "resumed devnet: {code}\n{}", failure(dir, 2));
    let again: Manifest =
        serde_json::from_str(&std::fs::read_to_string(dir.join("data/devnet.json")).unwrap()).unwrap();
    assert_eq!(again.rollups, manifest.rollups, "the resumed devnet deployed nothing new");
    let after = read_status(dir).unwrap();
    for (b, a) in before.rollups.iter().zip(&after.rollups) {
        assert!(a.last_batch > b.last_batch, "{}: the sequencer continued", a.name);
        assert!(a.last_verified_batch >= b.last_verified_batch);
        assert_eq!(a.root_matches, Some(true), "{}", a.name);
    }
    assert!(after.miners.iter().all(|m| m.chains.iter().all(|c| c.punished == 0)));
    eprintln!("whole test: {:.1}s", started.elapsed().as_secs_f64());
}

/// A short chaos run: miner processes are SIGKILLed every few seconds and
/// restarted by the devnet; once the bound is reached and the lag drained,
/// the audit must find every posted sequence verified and no honest
/// penalty, double send or nonce gap. The chain is checked here directly
/// too, not only through the devnet's own summary.
#[tokio::test(flavor = "multi_thread")]
async fn devnet_chaos_run_restarts_killed_miners_and_loses_nothing() {
    let _one = one_devnet_at_a_time().await;
    cached_test_keys(Shape { k: 2, d: 4 }).unwrap();
    cached_test_keys(Shape { k: 2, d: 5 }).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (chain_port, api_port) = (free_port_pair(), free_port_pair());
    let started = Instant::now();
    // Longer windows than TIMING: a killed aggregator needs a few seconds
    // to come back, on a loaded machine more, and a miner that misses its
    // reveal window is penalized (which this test must not see).
    // Sequences no faster than two miners prove them on two cores, so the
    // drain is short.
    let timing = ["--block-time", "0.5", "--t1", "10", "--t2", "40", "--interval-secs", "12", "--max-batches", "2"];
    // Kills at 8, 16, ... 48 s: aggregators first and every other one.
    let chaos = ["--fresh", "--chaos", "8", "--chaos-seed", "14", "--duration-secs", "50", "--drain-secs", "150"];
    let mut p = devnet(dir, &timing, &chaos, chain_port, api_port, 1);
    let code = loop {
        if let Some(code) = p.0.try_wait().unwrap() {
            break code;
        }
        assert!(started.elapsed() < Duration::from_secs(270), "the chaos run did not end\n{}", failure(dir, 1));
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("chaos run: {:.1}s", started.elapsed().as_secs_f64());
    assert!(code.success(), "chaos run: {code}\n{}", failure(dir, 1));
    let out = std::fs::read_to_string(dir.join("stdout1.log")).unwrap();
    assert!(out.contains("chaos summary") && out.contains("PASS"), "{out}");

    let summary: ChaosSummary =
        serde_json::from_str(&std::fs::read_to_string(dir.join("data/chaos.json")).unwrap()).unwrap();
    eprintln!("{}", summary.lines().join("\n"));
    assert!(summary.kills.total >= 5 && summary.kills.aggregator >= 2, "{:?}", summary.kills);
    assert_eq!(summary.kills.total, summary.kills.aggregator + summary.kills.prover);
    assert_eq!(summary.drain, Drain::Drained);
    assert!(summary.sequences_posted >= 4, "{}", summary.sequences_posted);
    assert_eq!(summary.sequences_verified, summary.sequences_posted);
    assert_eq!(summary.honest_penalties, 0, "{:?}", summary.details);
    assert_eq!(summary.double_sends, 0, "{:?}", summary.details);
    assert_eq!(summary.nonce_gaps, 0, "{:?}", summary.details);
    assert!(summary.transactions > 0, "the audit read the outboxes");
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);

    // status.json: every kill was followed by a restart, and everything
    // runs again by the end of the drain.
    let status = read_status(dir).unwrap();
    assert_eq!(status.processes.len(), 4, "{:?}", status.processes);
    assert_eq!(status.restarts(), summary.kills.total, "{:?}", status.processes);
    assert_eq!(summary.restarts, summary.kills.total);
    let aggregator_restarts: u32 =
        status.processes.iter().filter(|p| p.kind == ProcKind::Aggregator).map(|p| p.restarts).sum();
    assert_eq!(aggregator_restarts, summary.kills.aggregator);
    assert_eq!(status.chaos_kills, Some(summary.kills));

    for p in &status.processes {
        assert!(p.running, "{p:?}");
        if p.restarts > 0 {
            // Killed by chaos, not crashed on its own.
            assert!(p.last_exit.as_deref().is_some_and(|e| e.starts_with("chaos")), "{p:?}");
        }
    }

    // The chains agree. The devnet has stopped them (anvil writes its state
    // on SIGTERM): read them again from their state files.
    let manifest: Manifest =
        serde_json::from_str(&std::fs::read_to_string(dir.join("data/devnet.json")).unwrap()).unwrap();
    for c in &manifest.chains {
        let anvil = Anvil::at(anvil_path())
            .arg("--load-state")
            .arg(dir.join(format!("data/{}.state.json", c.name)).display().to_string())
            .spawn();
        let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url()).erased();
        let filter =
            Filter::new().address(c.deposit).event_signature(MinerDeposit::Slashed::SIGNATURE_HASH).from_block(0);
        let punished = provider.get_logs(&filter).await.unwrap();
        assert!(punished.is_empty(), "{}: an honest miner was punished: {punished:?}", c.name);
        for r in manifest.rollups.iter().filter(|r| r.chain == c.name) {
            let contract = ZkPowRollup::new(r.rollup, provider.clone());
            let (last, verified) =
                (contract.lastBatch().call().await.unwrap(), contract.lastVerifiedBatch().call().await.unwrap());
            assert!(last >= 2 && verified == last, "{}: {verified} of {last} batches verified", r.name);
        }
    }
    eprintln!("whole test: {:.1}s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_writes_a_snippet_the_config_loads() {
    cached_test_keys(Shape::TEST).unwrap();
    let anvil = spawn();
    let tmp = tempfile::tempdir().unwrap();
    let key_hex = hex::encode(anvil.keys()[0].to_bytes());
    let key_file = tmp.path().join("deployer.key");
    std::fs::write(&key_file, format!("0x{key_hex}\n")).unwrap();
    let snippet = tmp.path().join("snippet.toml");
    let deploy = |chain_id: &str| {
        Command::new(BIN)
            .arg("deploy")
            .args(["--rpc", &anvil.endpoint(), "--shape", "2,4", "--chain-id", chain_id, "--fund-rewards", "1000"])
            .arg("--key-file")
            .arg(&key_file)
            .arg("--keys-dir")
            .arg(test_params_dir())
            .arg("--genesis-file")
            .arg(tmp.path().join("genesis.json"))
            .arg("--out")
            .arg(&snippet)
            .current_dir(tmp.path())
            .output()
            .unwrap()
    };
    let wrong = deploy("1");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("chain id 31337, not 1"));

    let out = deploy("31337");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains(&key_hex) && !stderr.contains(&key_hex), "the key was printed");
    let cfg = Config::load_with_env(Some(&snippet), Vec::<(String, String)>::new()).unwrap();
    assert_eq!(cfg.chains[0].chain_id, 31337);
    assert_eq!(cfg.rollups[0].shape, Shape::TEST);
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let rollup: Address = cfg.rollups[0].address.parse().unwrap();
    assert!(!provider.get_code_at(rollup).await.unwrap().is_empty());
    let genesis = load_genesis(&cfg.rollups[0].genesis_file).unwrap();
    let root = zkpow::chain::root_to_b256(&zkpow::circuit::StateTree::with_accounts(4, genesis).root());
    assert_eq!(ZkPowRollup::new(rollup, provider).stateRootAt(0).call().await.unwrap(), root);
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// Fenced blocks of the given language.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start();
        match &mut current {
            None if t.starts_with("```") && t[3..].trim() == lang => current = Some(String::new()),
            Some(_) if t.starts_with("```") => out.extend(current.take()),
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

/// The arguments of every `zkpow ...` / `cargo run ... -- ...` command in
/// the README's shell blocks (continuation lines joined).
fn readme_commands() -> Vec<Vec<String>> {
    let mut cmds = Vec::new();
    for block in blocks(&readme(), "sh") {
        for line in block.replace("\\\n", " ").lines() {
            let line = line.split(" #").next().unwrap_or("");
            let words: Vec<&str> = line.split_whitespace().collect();
            let start = if let Some(i) = words.iter().position(|w| *w == "--") {
                (words.first() == Some(&"cargo")).then_some(i + 1)
            } else {
                words.iter().position(|w| *w == "zkpow").map(|i| i + 1)
            };
            if let Some(s) = start {
                cmds.push(words[s..].iter().map(|w| w.to_string()).collect());
            }
        }
    }
    cmds
}

#[test]
fn readme_commands_parse() {
    let cmds = readme_commands();
    assert!(cmds.len() >= 5, "found only {cmds:?}");
    let mut subcommands = std::collections::BTreeSet::new();
    for args in &cmds {
        // Skip the global --config FILE; the subcommand follows.
        let mut i = 0;
        while i < args.len() && (args[i] == "--config" || args[i] == "-c") {
            i += 2;
        }
        let mut sub = vec![args[i].clone()];
        if args[i] == "config" {
            sub.push(args[i + 1].clone());
        }
        let help = Command::new(BIN).args(&sub).arg("--help").stdin(Stdio::null()).output().unwrap();
        let text = String::from_utf8_lossy(&help.stdout).to_string();
        assert!(help.status.success(), "zkpow {} --help: {}", sub.join(" "), String::from_utf8_lossy(&help.stderr));
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            let flag = flag.split('=').next().unwrap();
            assert!(text.contains(flag), "README: `zkpow {}` has no option {flag}", args.join(" "));
        }
        subcommands.insert(sub.join(" "));
    }
    for needed in ["devnet", "deploy", "aggregator", "prover", "setup"] {
        assert!(subcommands.contains(needed), "README shows no `zkpow {needed}`: {subcommands:?}");
    }
}

#[test]
fn readme_toml_snippets_load() {
    let blocks = blocks(&readme(), "toml");
    assert!(!blocks.is_empty());
    let tmp = tempfile::tempdir().unwrap();
    for (i, b) in blocks.iter().enumerate() {
        let path: PathBuf = tmp.path().join(format!("readme{i}.toml"));
        std::fs::write(&path, b).unwrap();
        if let Err(e) = Config::load_with_env(Some(&path), Vec::<(String, String)>::new()) {
            panic!("README toml block {i} does not load: {e}\n{b}");
        }
    }
}
