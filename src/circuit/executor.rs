//! The native executor: the state transition of the batch circuit in plain
//! Rust. It turns (state, batch bytes) into the new state and the full
//! witness a prover needs; provers never compute witnesses themselves.
//!
//! Transfer rule (the circuit enforces exactly this): a transfer applies iff
//! `from < 2^D`, `to < 2^D`, `from != to`, `amount > 0`,
//! `nonce == sender.nonce`, `amount <= sender.balance` and
//! `receiver.balance + amount < 2^64`. Otherwise it is a no-op and the state
//! is unchanged. An empty sender has balance 0 and fails the balance check;
//! self-transfers are no-ops because the circuit updates the sender before it
//! opens the receiver, and allowing `from == to` would make the receiver's
//! overflow check depend on which update happened first.

use serde::{Deserialize, Serialize};

use super::batch::{self, BatchError};
use super::public::{fr_hex, fr_hex_vec};
use super::tree::{root_from_path, Account, StateTree};
use super::{Fr, Shape, Transfer};

/// What the circuit needs to open and update the two accounts of a transfer.
/// A path is [`super::tree::path_len`] siblings for the tree's arity, level
/// by level from the leaves (three per 4-ary level, one per binary level).
/// The tree's node hash is the circuit version's (the tree's [`StateTree::version`]):
/// the witness format is the same for every version with the same arity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferWitness {
    pub sender: Account,
    #[serde(with = "fr_hex_vec")]
    pub sender_path: Vec<Fr>,
    /// The receiver as found after the sender's update.
    pub receiver: Account,
    #[serde(with = "fr_hex_vec")]
    pub receiver_path: Vec<Fr>,
}

/// Everything a prover needs for one batch except the public inputs that
/// depend on where the proof is submitted (domain, batch number, miner).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchWitness {
    pub shape: Shape,
    #[serde(with = "hex_bytes")]
    pub batch: Vec<u8>,
    #[serde(with = "fr_hex")]
    pub old_root: Fr,
    #[serde(with = "fr_hex")]
    pub new_root: Fr,
    pub transfers: Vec<TransferWitness>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TransferOutcome {
    Applied,
    IndexOutOfRange,
    SelfTransfer,
    ZeroAmount,
    WrongNonce,
    InsufficientBalance,
    ReceiverOverflow,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExecError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("state tree has depth {tree} but the shape needs depth {shape}")]
    DepthMismatch { tree: usize, shape: usize },
}

/// Why a transfer is a no-op, or `Applied`. Checked in the same order as the
/// circuit's conjunction; the order only matters for the reported reason.
pub fn classify(depth: usize, t: &Transfer, sender: &Account, receiver_after_sender: &Account) -> TransferOutcome {
    let cap = 1u64 << depth;
    if u64::from(t.from) >= cap || u64::from(t.to) >= cap {
        TransferOutcome::IndexOutOfRange
    } else if t.from == t.to {
        TransferOutcome::SelfTransfer
    } else if t.amount == 0 {
        TransferOutcome::ZeroAmount
    } else if u64::from(t.nonce) != sender.nonce {
        TransferOutcome::WrongNonce
    } else if t.amount > sender.balance {
        TransferOutcome::InsufficientBalance
    } else if receiver_after_sender.balance.checked_add(t.amount).is_none() {
        TransferOutcome::ReceiverOverflow
    } else {
        TransferOutcome::Applied
    }
}

/// Applies one batch to `state` and returns the witness and each transfer's
/// outcome. On error the state is untouched.
pub fn apply_batch(
    state: &mut StateTree,
    shape: Shape,
    bytes: &[u8],
) -> Result<(BatchWitness, Vec<TransferOutcome>), ExecError> {
    if state.depth() != shape.d {
        return Err(ExecError::DepthMismatch { tree: state.depth(), shape: shape.d });
    }
    let transfers = batch::decode(shape, bytes)?;
    let old_root = state.root();
    let mask = state.capacity() - 1;
    let mut witnesses = Vec::with_capacity(shape.k);
    let mut outcomes = Vec::with_capacity(shape.k);
    for t in &transfers {
        // The circuit always opens the positions given by the low D bits.
        let from = u64::from(t.from) & mask;
        let to = u64::from(t.to) & mask;
        let sender = state.get(from);
        let sender_path = state.siblings(from);
        // Only a valid transfer touches the sender, and a valid transfer has
        // from != to, so the receiver seen after the sender's update is the
        // receiver before it whenever the outcome matters.
        let receiver_before = state.get(to);
        let outcome = classify(shape.d, t, &sender, &receiver_before);
        if outcome == TransferOutcome::Applied {
            state.set(from, Account { balance: sender.balance - t.amount, nonce: sender.nonce + 1 });
        }
        let receiver = state.get(to);
        let receiver_path = state.siblings(to);
        if outcome == TransferOutcome::Applied {
            state.set(to, Account { balance: receiver.balance + t.amount, nonce: receiver.nonce });
        }
        debug_assert_eq!(
            root_from_path(state.version(), state.depth(), state.get(to).leaf(), to, &state.siblings(to)),
            Some(state.root())
        );
        witnesses.push(TransferWitness { sender, sender_path, receiver, receiver_path });
        outcomes.push(outcome);
    }
    let witness = BatchWitness { shape, batch: bytes.to_vec(), old_root, new_root: state.root(), transfers: witnesses };
    Ok((witness, outcomes))
}

/// serde adapter: bytes as 0x-prefixed hex.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::circuit::public::to_0x_hex(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::batch::encode;

    fn genesis() -> StateTree {
        StateTree::with_accounts(
            4,
            [(1, Account { balance: 100, nonce: 0 }), (2, Account { balance: u64::MAX - 5, nonce: 3 })],
        )
    }

    fn run(transfers: &[Transfer]) -> (StateTree, Vec<TransferOutcome>) {
        let shape = Shape { k: transfers.len(), d: 4 };
        let mut s = genesis();
        let (w, o) = apply_batch(&mut s, shape, &encode(shape, transfers).unwrap()).unwrap();
        assert_eq!(w.new_root, s.root());
        (s, o)
    }

    #[test]
    fn valid_transfer_moves_balance_and_bumps_nonce() {
        let (s, o) = run(&[Transfer { from: 1, to: 5, amount: 40, nonce: 0 }]);
        assert_eq!(o, vec![TransferOutcome::Applied]);
        assert_eq!(s.get(1), Account { balance: 60, nonce: 1 });
        assert_eq!(s.get(5), Account { balance: 40, nonce: 0 });
    }

    #[test]
    fn every_invalid_kind_is_a_noop() {
        use TransferOutcome::*;
        let cases = [
            (Transfer { from: 16, to: 5, amount: 1, nonce: 0 }, IndexOutOfRange),
            (Transfer { from: 1, to: 1 << 20, amount: 1, nonce: 0 }, IndexOutOfRange),
            (Transfer { from: 1, to: 1, amount: 1, nonce: 0 }, SelfTransfer),
            (Transfer { from: 1, to: 5, amount: 0, nonce: 0 }, ZeroAmount),
            (Transfer { from: 1, to: 5, amount: 1, nonce: 1 }, WrongNonce),
            (Transfer { from: 1, to: 5, amount: 101, nonce: 0 }, InsufficientBalance),
            (Transfer { from: 7, to: 5, amount: 1, nonce: 0 }, InsufficientBalance),
            (Transfer { from: 1, to: 2, amount: 6, nonce: 0 }, ReceiverOverflow),
        ];
        for (t, want) in cases {
            let (s, o) = run(&[t]);
            assert_eq!(o, vec![want], "{t:?}");
            assert_eq!(s.root(), genesis().root(), "{t:?} changed the state");
        }
    }

    #[test]
    fn later_transfers_see_earlier_ones() {
        let (s, o) = run(&[
            Transfer { from: 1, to: 3, amount: 100, nonce: 0 },
            Transfer { from: 3, to: 4, amount: 30, nonce: 0 },
            Transfer { from: 1, to: 4, amount: 1, nonce: 1 },
        ]);
        assert_eq!(o, vec![TransferOutcome::Applied, TransferOutcome::Applied, TransferOutcome::InsufficientBalance]);
        assert_eq!(s.get(3), Account { balance: 70, nonce: 1 });
        assert_eq!(s.get(4), Account { balance: 30, nonce: 0 });
    }

    #[test]
    fn witness_paths_have_the_tree_shape() {
        use crate::circuit::tree::{path_len, root_from_path};
        use crate::circuit::Version;
        for (version, d) in [(Version::V3, 4), (Version::V3, 5), (Version::V2, 4), (Version::V2, 5), (Version::V1, 4)] {
            let arity = version.arity();
            let shape = Shape { k: 2, d };
            let mut s = StateTree::of_version_with_accounts(version, d, genesis().accounts());
            let old = s.clone();
            let bytes = encode(shape, &[Transfer { from: 1, to: 5, amount: 40, nonce: 0 }]).unwrap();
            let (w, o) = apply_batch(&mut s, shape, &bytes).unwrap();
            assert_eq!(o, vec![TransferOutcome::Applied, TransferOutcome::SelfTransfer]);
            for t in &w.transfers {
                assert_eq!(t.sender_path.len(), path_len(arity, d), "{version:?} {d}");
                assert_eq!(t.receiver_path.len(), path_len(arity, d), "{version:?} {d}");
            }
            // The sender's path opens it in the old tree.
            let sender = &w.transfers[0];
            assert_eq!(root_from_path(version, d, sender.sender.leaf(), 1, &sender.sender_path), Some(old.root()));
            // And the receiver's path (taken after the sender's update) the
            // new tree, after its own update.
            let receiver = &w.transfers[0];
            let credited = Account { balance: receiver.receiver.balance + 40, ..receiver.receiver };
            assert_eq!(root_from_path(version, d, credited.leaf(), 5, &receiver.receiver_path), Some(s.root()));
        }
    }

    #[test]
    fn wrong_length_leaves_state_untouched() {
        let mut s = genesis();
        let root = s.root();
        assert!(apply_batch(&mut s, Shape { k: 2, d: 4 }, &[0u8; 41]).is_err());
        assert!(matches!(apply_batch(&mut s, Shape { k: 2, d: 5 }, &[0u8; 40]), Err(ExecError::DepthMismatch { .. })));
        assert_eq!(s.root(), root);
    }
}
