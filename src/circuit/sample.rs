//! Random transfer batches for tests, benchmarks and the devnet sequencer.
//! They deliberately mix valid transfers with every kind of invalid one, as
//! a real sequencer's input may.

use rand::{Rng, RngExt};

use super::tree::StateTree;
use super::{Shape, Transfer};

/// Up to `shape.k` transfers among the accounts `0..accounts`. About
/// `invalid_ratio` of them are invalid in a randomly chosen way.
pub fn random_transfers<R: Rng>(
    rng: &mut R,
    shape: Shape,
    state: &StateTree,
    accounts: u32,
    invalid_ratio: f64,
) -> Vec<Transfer> {
    let cap = 1u64 << shape.d;
    let accounts = (accounts as u64).clamp(2, cap) as u32;
    let count = rng.random_range(1..=shape.k);
    // Track nonces and balances within the batch so later valid transfers
    // stay valid after earlier ones.
    let mut shadow = state.clone();
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let from = rng.random_range(0..accounts);
        let mut to = rng.random_range(0..accounts);
        if to == from {
            to = (from + 1) % accounts;
        }
        let sender = shadow.get(from as u64);
        let amount = if sender.balance == 0 { 1 } else { rng.random_range(1..=sender.balance.min(1_000)) };
        let mut t = Transfer { from, to, amount, nonce: sender.nonce as u32 };
        if rng.random_bool(invalid_ratio.clamp(0.0, 1.0)) {
            match rng.random_range(0..6) {
                0 if shape.d < 32 => t.from = (cap as u32).saturating_add(rng.random_range(0..3)),
                0 => t.to = t.from,
                1 => t.to = t.from,
                2 => t.amount = 0,
                3 => t.nonce = t.nonce.wrapping_add(rng.random_range(1..5)),
                4 => t.amount = sender.balance.saturating_add(1 + rng.random_range(0..100)),
                _ => t.amount = u64::MAX - rng.random_range(0..10),
            }
        }
        let receiver = shadow.get(to as u64);
        if super::executor::classify(shape.d, &t, &sender, &receiver) == super::TransferOutcome::Applied {
            shadow.set(t.from as u64, super::Account { balance: sender.balance - t.amount, nonce: sender.nonce + 1 });
            let r = shadow.get(t.to as u64);
            shadow.set(t.to as u64, super::Account { balance: r.balance + t.amount, nonce: r.nonce });
        }
        out.push(t);
    }
    out
}

/// `n` funded accounts at indices `0..n` (capped at the tree size).
pub fn genesis_accounts(shape: Shape, n: u64, balance: u64) -> Vec<(u64, super::Account)> {
    (0..n.min(1u64 << shape.d)).map(|i| (i, super::Account { balance, nonce: 0 })).collect()
}
