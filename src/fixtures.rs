//! Proof fixtures for the contract test suite: a sequence of real batch
//! proofs for a fixed rollup address and miner, written as JSON the forge
//! tests read (`contracts/test/fixtures/proofs.json`).

use serde::Serialize;

use crate::circuit::batch::encode;
use crate::circuit::encoding::vk_to_bytes;
use crate::circuit::executor::apply_batch;
use crate::circuit::keys::Keys;
use crate::circuit::public::{domain, fr_to_hex};
use crate::circuit::sample::{genesis_accounts, random_transfers};
use crate::circuit::{Shape, StateTree};
use crate::prover::{Groth16Backend, ProverBackend};
use crate::wire::proof::ProofRequest;

/// Where the forge tests place the rollup (with `deployCodeTo`), so the
/// domain public input matches.
pub const FIXTURE_ROLLUP: [u8; 20] = hex_literal(b"1000000000000000000000000000000000000001");
/// anvil's second default account.
pub const FIXTURE_MINER: [u8; 20] = hex_literal(b"70997970c51812dc3a010c7d01b50e0d17dc79c8");
pub const FIXTURE_CHAIN_ID: u64 = 31337;

const fn hex_literal(s: &[u8; 40]) -> [u8; 20] {
    const fn nib(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("lowercase hex only"),
        }
    }
    let mut out = [0u8; 20];
    let mut i = 0;
    while i < 20 {
        out[i] = nib(s[2 * i]) << 4 | nib(s[2 * i + 1]);
        i += 1;
    }
    out
}

#[derive(Serialize)]
pub struct ShapeJson {
    pub k: usize,
    pub d: usize,
}

#[derive(Serialize)]
pub struct Fixture {
    pub shape: ShapeJson,
    pub vk: String,
    pub vk_hash: String,
    pub chain_id: u64,
    pub rollup: String,
    pub miner: String,
    pub genesis_root: String,
    pub batch_size: usize,
    pub batches: Vec<String>,
    pub roots: Vec<String>,
    pub proofs: Vec<String>,
    pub inputs: Vec<Vec<String>>,
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// Proves `count` consecutive batches (numbered from 1) of random transfers
/// over the fixture genesis. Deterministic transfers (seeded), fresh proofs.
pub fn generate(keys: Keys, count: usize, seed: u64) -> anyhow::Result<Fixture> {
    use rand::SeedableRng;
    let shape: Shape = keys.shape;
    let vk = vk_to_bytes(&keys.params.vk)?;
    let vk_hash = hex0x(&keys.vk_hash);
    let backend = Groth16Backend::new([keys]);
    let mut state = StateTree::with_accounts(shape.d, genesis_accounts(shape, 8, 1_000_000));
    let genesis_root = fr_to_hex(&state.root());
    let mut rng = rand::rngs::ChaCha20Rng::seed_from_u64(seed);
    let dom = domain(FIXTURE_CHAIN_ID, &FIXTURE_ROLLUP);
    let mut fx = Fixture {
        shape: ShapeJson { k: shape.k, d: shape.d },
        vk: hex0x(&vk),
        vk_hash,
        chain_id: FIXTURE_CHAIN_ID,
        rollup: hex0x(&FIXTURE_ROLLUP),
        miner: hex0x(&FIXTURE_MINER),
        genesis_root,
        batch_size: shape.batch_bytes(),
        batches: vec![],
        roots: vec![],
        proofs: vec![],
        inputs: vec![],
    };
    for i in 0..count {
        let transfers = random_transfers(&mut rng, shape, &state, 8, 0.3);
        let bytes = encode(shape, &transfers)?;
        let (witness, _) = apply_batch(&mut state, shape, &bytes)?;
        let req = ProofRequest { witness, domain: dom, batch_num: i as u64 + 1, miner: FIXTURE_MINER };
        let out = backend.prove(&req)?;
        tracing::info!(batch = i + 1, "proved fixture batch");
        fx.batches.push(hex0x(&bytes));
        fx.roots.push(fr_to_hex(&state.root()));
        fx.proofs.push(hex0x(&out.proof));
        fx.inputs.push(out.public.to_be_words().iter().map(|w| hex0x(w)).collect());
    }
    Ok(fx)
}
