//! The batch circuit: K transfers applied to a sparse Merkle tree of
//! accounts, with the SHA-256 of the posted batch bytes computed in-circuit;
//! in every [`Version`] this build can synthesize.
//!
//! Per transfer: open the sender (a depth-D path), apply the debit if the
//! transfer is valid, recompute the intermediate root, open the receiver
//! against it, apply the credit, recompute the root: four Merkle paths, plus
//! range checks. The batch bytes are allocated as bits once and shared by
//! SHA-256 and the transfer logic, so the indices, amount and nonce cost no
//! extra decomposition, and the low D bits of an index are its tree position.
//!
//! # Version 2
//!
//! The tree is 4-ary, hashed with the width-5 Poseidon (297 constraints with
//! the constant capacity S-box folded). Within a 4-ary level at position
//! `p = b0 + 2*b1`, the children are the current node `x` and the three
//! siblings `s0 < s1 < s2` in position order. With `b01 = b0*b1` (one
//! constraint, shared by the account's two paths, which have the same
//! positions) and `e0 = (1-b0)(1-b1)`, linear in b0, b1 and b01:
//!
//! ```text
//! P0 = e0 * (x - s0)     P3 = b01 * (x - s2)     Q = b1 * (x - s1)
//! c0 = s0 + P0    c1 = x - Q - P0    c2 = s1 + Q - P3    c3 = s2 + P3
//! ```
//!
//! which is `(x, s0, s1, s2)`, `(s0, x, s1, s2)`, `(s0, s1, x, s2)` or
//! `(s0, s1, s2, x)` for p = 0..3: three constraints per path and level, the
//! fewest that can produce the three independent products b0·x, b1·x and
//! b0·b1·x the selection needs. An odd depth's binary top level swaps with one
//! constraint and hashes with the width-3 Poseidon (240 folded).
//!
//! An account opening allocates the 128 bits of its leaf
//! `balance + 2^64 * nonce` and takes the balance and nonce as their two
//! halves, so each opening has exactly one (balance, nonce) reading.
//!
//! # Version 3
//!
//! Version 2's tree, selection and openings; only the node hash changes, to
//! Anemoi in Jive mode ([`super::anemoi`]): 210 constraints per 4-ary node
//! (21 rounds of two 5-constraint Flystels) instead of 297, and 160 for the
//! binary top level of an odd depth (32 rounds, one column) instead of 240.
//! Per unit of depth and transfer that is 427 constraints against 601.
//!
//! # Version 1
//!
//! A binary tree with the width-3 Poseidon (243 per level, nothing folded)
//! and a one-constraint swap. An opening allocated the balance and the nonce
//! as field elements and range-checked only the balance. That left the nonce
//! free: for any balance `b' < 2^64`, the nonce `(leaf - b') / 2^64` (a field
//! element, not an integer) opens the same leaf, so a prover could pick the
//! sender's nonce or the receiver's balance and turn a valid transfer into a
//! no-op, or an overflowing one into a credit. It is kept only as the
//! benchmark's reference; its keys are refused.

use bellman::gadgets::boolean::{AllocatedBit, Boolean};
use bellman::gadgets::sha256::sha256;
use bellman::{Circuit, ConstraintSystem, SynthesisError};

use super::anemoi::{jive2_gadget, jive4_gadget};
use super::batch::TRANSFER_BYTES;
use super::executor::{BatchWitness, TransferWitness};
use super::gadgets::{all, alloc_bits_le, bool_expr, is_zero, pack_be, pack_le, select, to_bits_le, Expr};
use super::poseidon::{hash2_gadget, hash4_gadget, Folding};
use super::public::PublicInputs;
use super::tree::{levels, path_len, two_pow_64, Account, Level};
use super::{Fr, Shape, Version};

/// The circuit for one batch. During parameter generation `witness` and
/// `public` are `None`; the constraint system is the same either way.
#[derive(Clone)]
pub struct BatchCircuit {
    pub shape: Shape,
    pub version: Version,
    pub witness: Option<BatchWitness>,
    pub public: Option<PublicInputs>,
}

impl BatchCircuit {
    /// The circuit of the current version.
    pub fn new(shape: Shape, witness: Option<BatchWitness>, public: Option<PublicInputs>) -> Self {
        BatchCircuit { shape, version: Version::CURRENT, witness, public }
    }

    pub fn blank(shape: Shape) -> Self {
        BatchCircuit::new(shape, None, None)
    }

    fn check_witness(&self) -> Result<(), SynthesisError> {
        let Some(w) = &self.witness else {
            return Ok(());
        };
        let shape = self.shape;
        let len = path_len(self.version.arity(), shape.d);
        let paths_ok = w.transfers.iter().all(|t| t.sender_path.len() == len && t.receiver_path.len() == len);
        if w.shape != shape || w.batch.len() != shape.batch_bytes() || w.transfers.len() != shape.k || !paths_ok {
            return Err(SynthesisError::Unsatisfiable);
        }
        Ok(())
    }
}

impl Circuit<Fr> for BatchCircuit {
    fn synthesize<CS: ConstraintSystem<Fr>>(self, cs: &mut CS) -> Result<(), SynthesisError> {
        self.check_witness()?;
        let shape = self.shape;
        let inputs = self.public.map(|p| p.to_vec());
        let input = |cs: &mut CS, i: usize, name: &'static str| -> Result<Expr, SynthesisError> {
            let value = inputs.map(|v| v[i]);
            let var = cs.alloc_input(|| name, || value.ok_or(SynthesisError::AssignmentMissing))?;
            Ok(Expr::from_var(var, value))
        };
        // The order is the contract's. domain, batch_num and miner take part
        // in no constraint of ours: bellman adds an `input * 0 = 0` row per
        // input, which gives each a non-zero IC point, so the proof still
        // binds them.
        let _domain = input(cs, 0, "domain")?;
        let _batch_num = input(cs, 1, "batch_num")?;
        let old_root = input(cs, 2, "old_root")?;
        let new_root = input(cs, 3, "new_root")?;
        let hash_hi = input(cs, 4, "data_hash_hi")?;
        let hash_lo = input(cs, 5, "data_hash_lo")?;
        let _miner = input(cs, 6, "miner")?;

        let bytes = self.witness.as_ref().map(|w| w.batch.as_slice());
        let mut bits = Vec::with_capacity(shape.batch_bytes() * 8);
        for i in 0..shape.batch_bytes() {
            for b in (0..8).rev() {
                let value = bytes.map(|by| (by[i] >> b) & 1 == 1);
                let bit = AllocatedBit::alloc(cs.namespace(|| format!("batch bit {i}.{b}")), value)?;
                bits.push(Boolean::from(bit));
            }
        }
        let digest = sha256(cs.namespace(|| "sha256"), &bits)?;
        pack_be(&digest[..128]).enforce_equal(cs.namespace(|| "bind data_hash_hi"), &hash_hi);
        pack_be(&digest[128..]).enforce_equal(cs.namespace(|| "bind data_hash_lo"), &hash_lo);

        let levels = levels(self.version.arity(), shape.d);
        let mut root = old_root;
        for j in 0..shape.k {
            let rec = &bits[j * TRANSFER_BYTES * 8..(j + 1) * TRANSFER_BYTES * 8];
            let tw = self.witness.as_ref().map(|w| &w.transfers[j]);
            let cs = cs.namespace(|| format!("transfer {j}"));
            root = transfer(cs, self.version, shape.d, &levels, &root, rec, tw)?;
        }
        root.enforce_equal(cs.namespace(|| "bind new_root"), &new_root);
        Ok(())
    }
}

/// One transfer; returns the root after it. `rec` holds the record's 160
/// bits, most significant first: from (32), to (32), amount (64), nonce (32).
fn transfer<CS: ConstraintSystem<Fr>>(
    mut cs: CS,
    version: Version,
    depth: usize,
    levels: &[Level],
    root: &Expr,
    rec: &[Boolean],
    w: Option<&TransferWitness>,
) -> Result<Expr, SynthesisError> {
    let (from_bits, rest) = rec.split_at(32);
    let (to_bits, rest) = rest.split_at(32);
    let (amount_bits, nonce_bits) = rest.split_at(64);
    let from = pack_be(from_bits);
    let to = pack_be(to_bits);
    let amount = pack_be(amount_bits);
    let tx_nonce = pack_be(nonce_bits);
    // Tree positions are the low D bits, least significant (leaf level) first.
    let from_path: Vec<Boolean> = from_bits[32 - depth..].iter().rev().cloned().collect();
    let to_path: Vec<Boolean> = to_bits[32 - depth..].iter().rev().cloned().collect();

    let mut high = Expr::zero();
    for b in from_bits[..32 - depth].iter().chain(&to_bits[..32 - depth]) {
        high = high.add(&bool_expr(b));
    }
    let in_range = is_zero(cs.namespace(|| "indices in range"), &high)?;
    let same = is_zero(cs.namespace(|| "self transfer"), &from.sub(&to))?;
    let zero_amount = is_zero(cs.namespace(|| "zero amount"), &amount)?;

    let two64 = two_pow_64();

    // Sender: open, check.
    let sender = open_account(&mut cs, version, "sender", w.map(|t| t.sender))?;
    let s_path =
        account_path(cs.namespace(|| "sender siblings"), levels, &from_path, w.map(|t| t.sender_path.as_slice()))?;
    let s_root = root_from(cs.namespace(|| "sender old path"), version, &sender.leaf, &s_path)?;
    s_root.enforce_equal(cs.namespace(|| "sender in tree"), root);
    let nonce_ok = is_zero(cs.namespace(|| "nonce matches"), &sender.nonce.sub(&tx_nonce))?;
    // balance - amount + 2^64 has bit 64 set iff balance >= amount.
    let diff = sender.balance.sub(&amount).add_const(two64);
    let diff_bits = to_bits_le(cs.namespace(|| "balance covers amount"), &diff, 65)?;
    let sufficient = diff_bits[64].clone();

    // Receiver: open against the tree as the sender's update leaves it.
    let receiver = open_account(&mut cs, version, "receiver", w.map(|t| t.receiver))?;
    let sum_bits = to_bits_le(cs.namespace(|| "receiver no overflow"), &receiver.balance.add(&amount), 65)?;
    let overflow = sum_bits[64].clone();

    let valid = all(
        cs.namespace(|| "valid"),
        &[in_range, same.not(), zero_amount.not(), nonce_ok, sufficient, overflow.not()],
    )?;
    let valid = bool_expr(&valid);

    // Debit: balance - amount, nonce + 1, i.e. leaf + 2^64 - amount.
    let debit = valid.mul(cs.namespace(|| "debit"), &Expr::constant(two64).sub(&amount))?;
    let s_new_leaf = sender.leaf.add(&debit);
    let mid_root = root_from(cs.namespace(|| "sender new path"), version, &s_new_leaf, &s_path)?;

    let r_path =
        account_path(cs.namespace(|| "receiver siblings"), levels, &to_path, w.map(|t| t.receiver_path.as_slice()))?;
    let r_root = root_from(cs.namespace(|| "receiver old path"), version, &receiver.leaf, &r_path)?;
    r_root.enforce_equal(cs.namespace(|| "receiver in tree"), &mid_root);
    let credit = valid.mul(cs.namespace(|| "credit"), &amount)?;
    let r_new_leaf = receiver.leaf.add(&credit);
    root_from(cs.namespace(|| "receiver new path"), version, &r_new_leaf, &r_path)
}

/// An account as the circuit reads it: 64-bit balance, nonce, and the leaf
/// `balance + 2^64 * nonce` that goes into the tree.
struct Opening {
    balance: Expr,
    nonce: Expr,
    leaf: Expr,
}

/// Versions 2 and 3: 128 constraints (the leaf's bits), a unique reading of
/// the leaf. Version 1: 65 (the balance's range check), see the module docs.
fn open_account<CS: ConstraintSystem<Fr>>(
    cs: &mut CS,
    version: Version,
    who: &str,
    account: Option<Account>,
) -> Result<Opening, SynthesisError> {
    match version {
        Version::V2 | Version::V3 => {
            let bits = alloc_bits_le(cs.namespace(|| format!("{who} account")), account.map(|a| a.packed()), 128)?;
            Ok(Opening { balance: pack_le(&bits[..64]), nonce: pack_le(&bits[64..]), leaf: pack_le(&bits) })
        }
        Version::V1 => {
            let value = |f: fn(&Account) -> u64| {
                move || account.map(|a| Fr::from(f(&a))).ok_or(SynthesisError::AssignmentMissing)
            };
            let balance = Expr::alloc(cs.namespace(|| format!("{who} balance")), "v", value(|a| a.balance))?;
            let nonce = Expr::alloc(cs.namespace(|| format!("{who} nonce")), "v", value(|a| a.nonce))?;
            to_bits_le(cs.namespace(|| format!("{who} balance range")), &balance, 64)?;
            let leaf = balance.add(&nonce.scale(two_pow_64()));
            Ok(Opening { balance, nonce, leaf })
        }
    }
}

/// One level of an account's path, as both of its paths (before and after
/// the account's update) use it: same siblings, same position.
enum PathLevel {
    Binary {
        /// Set when the path's node is the right child.
        bit: Boolean,
        sibling: Expr,
    },
    Quaternary {
        b0: Expr,
        b1: Expr,
        /// `b0 * b1`, allocated once per account and level.
        b01: Expr,
        siblings: Box<[Expr; 3]>,
    },
}

/// Allocates an account's siblings (named `sibling {i}`, in path order) and,
/// per 4-ary level, the position product `b0*b1` (one constraint).
/// `position` holds the index bits, least significant first.
fn account_path<CS: ConstraintSystem<Fr>>(
    mut cs: CS,
    levels: &[Level],
    position: &[Boolean],
    path: Option<&[Fr]>,
) -> Result<Vec<PathLevel>, SynthesisError> {
    let mut next = 0;
    let mut sibling = |cs: &mut CS| {
        let i = next;
        next += 1;
        Expr::alloc(cs.namespace(|| format!("sibling {i}")), "v", || {
            path.map(|p| p[i]).ok_or(SynthesisError::AssignmentMissing)
        })
    };
    let mut out = Vec::with_capacity(levels.len());
    for (l, level) in levels.iter().enumerate() {
        let bits = &position[level.shift..level.shift + level.bits()];
        out.push(match level.arity {
            2 => PathLevel::Binary { bit: bits[0].clone(), sibling: sibling(&mut cs)? },
            _ => {
                let siblings = Box::new([sibling(&mut cs)?, sibling(&mut cs)?, sibling(&mut cs)?]);
                let (b0, b1) = (bool_expr(&bits[0]), bool_expr(&bits[1]));
                let b01 = b0.mul(cs.namespace(|| format!("level {l} b0*b1")), &b1)?;
                PathLevel::Quaternary { b0, b1, b01, siblings }
            }
        });
    }
    Ok(out)
}

/// Root of the path from `leaf`. Per binary level one constraint for the
/// swap and the version's two-to-one hash; per 4-ary level three for the
/// selection and its four-to-one hash.
fn root_from<CS: ConstraintSystem<Fr>>(
    mut cs: CS,
    version: Version,
    leaf: &Expr,
    path: &[PathLevel],
) -> Result<Expr, SynthesisError> {
    let mut cur = leaf.clone();
    for (h, level) in path.iter().enumerate() {
        let mut cs = cs.namespace(|| format!("level {h}"));
        cur = match level {
            PathLevel::Binary { bit, sibling } => {
                // When the bit is set the current node is the right child.
                let left = select(cs.namespace(|| "left"), bit, sibling, &cur)?.compact();
                let right = cur.add(sibling).sub(&left).compact();
                let cs = cs.namespace(|| "hash");
                match version {
                    Version::V1 => hash2_gadget(cs, &left, &right, Folding::Nothing)?,
                    Version::V2 => hash2_gadget(cs, &left, &right, Folding::Constants)?,
                    Version::V3 => jive2_gadget(cs, &left, &right)?,
                }
            }
            PathLevel::Quaternary { b0, b1, b01, siblings } => {
                let children = children4(cs.namespace(|| "select"), &cur, b0, b1, b01, siblings)?.map(|c| c.compact());
                let cs = cs.namespace(|| "hash");
                match version {
                    Version::V1 => unreachable!("version 1's tree is binary"),
                    Version::V2 => hash4_gadget(cs, &children)?,
                    Version::V3 => jive4_gadget(cs, &children)?,
                }
            }
        };
    }
    Ok(cur)
}

/// The four children of a 4-ary node with `x` at position `b0 + 2*b1` and
/// `s` in the other three positions, in order (three constraints; the
/// derivation is in the module docs).
fn children4<CS: ConstraintSystem<Fr>>(
    mut cs: CS,
    x: &Expr,
    b0: &Expr,
    b1: &Expr,
    b01: &Expr,
    s: &[Expr; 3],
) -> Result<[Expr; 4], SynthesisError> {
    let e0 = Expr::constant(Fr::from(1)).sub(b0).sub(b1).add(b01);
    let p0 = e0.mul(cs.namespace(|| "position 0"), &x.sub(&s[0]))?;
    let p3 = b01.mul(cs.namespace(|| "position 3"), &x.sub(&s[2]))?;
    let q = b1.mul(cs.namespace(|| "upper half"), &x.sub(&s[1]))?;
    Ok([s[0].add(&p0), x.sub(&q).sub(&p0), s[1].add(&q).sub(&p3), s[2].add(&p3)])
}

/// Counts constraints and variables without storing them and without ever
/// asking for a value (as parameter generation synthesizes); used for the
/// constraint table and to check gadgets synthesize without a witness.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConstraintCount {
    pub constraints: usize,
    pub inputs: usize,
    pub aux: usize,
}

impl ConstraintSystem<Fr> for ConstraintCount {
    type Root = Self;

    fn alloc<F, A, AR>(&mut self, _: A, _: F) -> Result<bellman::Variable, SynthesisError>
    where
        F: FnOnce() -> Result<Fr, SynthesisError>,
        A: FnOnce() -> AR,
        AR: Into<String>,
    {
        self.aux += 1;
        Ok(bellman::Variable::new_unchecked(bellman::Index::Aux(self.aux - 1)))
    }

    fn alloc_input<F, A, AR>(&mut self, _: A, _: F) -> Result<bellman::Variable, SynthesisError>
    where
        F: FnOnce() -> Result<Fr, SynthesisError>,
        A: FnOnce() -> AR,
        AR: Into<String>,
    {
        self.inputs += 1;
        Ok(bellman::Variable::new_unchecked(bellman::Index::Input(self.inputs)))
    }

    fn enforce<A, AR, LA, LB, LC>(&mut self, _: A, a: LA, b: LB, c: LC)
    where
        A: FnOnce() -> AR,
        AR: Into<String>,
        LA: FnOnce(bellman::LinearCombination<Fr>) -> bellman::LinearCombination<Fr>,
        LB: FnOnce(bellman::LinearCombination<Fr>) -> bellman::LinearCombination<Fr>,
        LC: FnOnce(bellman::LinearCombination<Fr>) -> bellman::LinearCombination<Fr>,
    {
        // Built as parameter generation builds them, so a gadget whose
        // combinations need witness values fails here too.
        let _ = (
            a(bellman::LinearCombination::zero()),
            b(bellman::LinearCombination::zero()),
            c(bellman::LinearCombination::zero()),
        );
        self.constraints += 1;
    }

    fn push_namespace<NR, N>(&mut self, _: N)
    where
        NR: Into<String>,
        N: FnOnce() -> NR,
    {
    }

    fn pop_namespace(&mut self) {}

    fn get_root(&mut self) -> &mut Self::Root {
        self
    }
}

impl ConstraintCount {
    /// The current version's circuit of `shape`.
    pub fn of(shape: Shape) -> Result<Self, SynthesisError> {
        ConstraintCount::of_version(shape, Version::CURRENT)
    }

    pub fn of_version(shape: Shape, version: Version) -> Result<Self, SynthesisError> {
        let mut cs = ConstraintCount::default();
        BatchCircuit { shape, version, witness: None, public: None }.synthesize(&mut cs)?;
        Ok(cs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::batch::encode;
    use crate::circuit::executor::apply_batch;
    use crate::circuit::public::{data_hash, domain, miner};
    use crate::circuit::sample::random_transfers;
    use crate::circuit::tree::{root_from_path, Account, StateTree};
    use crate::circuit::{Transfer, TransferOutcome};
    use bellman::gadgets::test::TestConstraintSystem;
    use ff::{Field, PrimeField};
    use rand::rngs::ChaCha20Rng;
    use rand::{RngExt, SeedableRng};

    const SHAPE: Shape = Shape { k: 3, d: 4 };
    /// An odd depth: two 4-ary levels under a binary top level.
    const ODD: Shape = Shape { k: 3, d: 5 };
    const VERSIONS: [Version; 3] = Version::ALL;
    /// The versions with a 4-ary tree.
    const FOUR_ARY: [Version; 2] = [Version::V2, Version::V3];

    fn genesis_of(version: Version, depth: usize) -> StateTree {
        StateTree::of_version_with_accounts(
            version,
            depth,
            (0..6u64)
                .map(|i| (i, Account { balance: if i == 5 { u64::MAX - 3 } else { 1_000 * (i + 1) }, nonce: i % 2 })),
        )
    }

    fn genesis() -> StateTree {
        genesis_of(Version::CURRENT, SHAPE.d)
    }

    fn public_for(w: &BatchWitness) -> PublicInputs {
        let (hi, lo) = data_hash(&w.batch);
        PublicInputs {
            domain: domain(31337, &[0x42; 20]),
            batch_num: 7,
            old_root: w.old_root,
            new_root: w.new_root,
            data_hash_hi: hi,
            data_hash_lo: lo,
            miner: miner(&[0x11; 20]),
        }
    }

    fn check_version(version: Version, w: &BatchWitness, public: PublicInputs) -> TestConstraintSystem<Fr> {
        let mut cs = TestConstraintSystem::new();
        let circuit = BatchCircuit { shape: w.shape, version, witness: Some(w.clone()), public: Some(public) };
        circuit.synthesize(&mut cs).unwrap();
        cs
    }

    fn check(w: &BatchWitness, public: PublicInputs) -> TestConstraintSystem<Fr> {
        check_version(Version::CURRENT, w, public)
    }

    fn witness_in(version: Version, shape: Shape, transfers: &[Transfer]) -> (BatchWitness, Vec<TransferOutcome>) {
        let mut state = genesis_of(version, shape.d);
        apply_batch(&mut state, shape, &encode(shape, transfers).unwrap()).unwrap()
    }

    fn witness_for(transfers: &[Transfer]) -> (BatchWitness, Vec<TransferOutcome>) {
        witness_in(Version::CURRENT, SHAPE, transfers)
    }

    #[test]
    fn native_and_circuit_agree_on_random_batches() {
        for (version, shape, rounds) in [
            (Version::V3, SHAPE, 12),
            (Version::V3, ODD, 12),
            (Version::V2, SHAPE, 12),
            (Version::V2, ODD, 12),
            (Version::V1, SHAPE, 12),
        ] {
            let mut rng = ChaCha20Rng::seed_from_u64(7);
            let mut state = genesis_of(version, shape.d);
            let mut seen = std::collections::HashSet::new();
            for round in 0..rounds {
                let ts = random_transfers(&mut rng, shape, &state, 7, 0.5);
                let (w, outcomes) = apply_batch(&mut state, shape, &encode(shape, &ts).unwrap()).unwrap();
                seen.extend(outcomes.iter().copied());
                let cs = check_version(version, &w, public_for(&w));
                assert!(
                    cs.is_satisfied(),
                    "{version:?} {shape} round {round}: {outcomes:?} unsatisfied at {:?}",
                    cs.which_is_unsatisfied()
                );
                assert_eq!(w.new_root, state.root());
            }
            assert!(
                seen.contains(&TransferOutcome::Applied) && seen.len() >= 4,
                "{version:?} {shape}: batches too uniform: {seen:?}"
            );
        }
    }

    #[test]
    fn every_invalid_kind_is_proven_as_a_noop() {
        use TransferOutcome::*;
        let cases = [
            (Transfer { from: 16, to: 2, amount: 1, nonce: 0 }, IndexOutOfRange),
            (Transfer { from: 0, to: 0xffff_0002, amount: 1, nonce: 0 }, IndexOutOfRange),
            (Transfer { from: 2, to: 2, amount: 1, nonce: 0 }, SelfTransfer),
            (Transfer { from: 2, to: 3, amount: 0, nonce: 0 }, ZeroAmount),
            (Transfer { from: 2, to: 3, amount: 1, nonce: 1 }, WrongNonce),
            (Transfer { from: 2, to: 3, amount: 3_001, nonce: 0 }, InsufficientBalance),
            (Transfer { from: 9, to: 3, amount: 1, nonce: 0 }, InsufficientBalance),
            (Transfer { from: 2, to: 5, amount: 4, nonce: 0 }, ReceiverOverflow),
        ];
        for version in VERSIONS {
            for (t, want) in cases {
                let (w, outcomes) = witness_in(version, SHAPE, &[Transfer { from: 0, to: 1, amount: 10, nonce: 0 }, t]);
                // The zero padding record is a self-transfer of nothing: a no-op.
                assert_eq!(outcomes, vec![Applied, want, SelfTransfer], "{t:?}");
                let cs = check_version(version, &w, public_for(&w));
                assert!(cs.is_satisfied(), "{version:?} {t:?}: unsatisfied at {:?}", cs.which_is_unsatisfied());
                // And claiming the no-op transfer changed the state cannot be proven.
                let mut applied = genesis_of(version, SHAPE.d);
                applied.set(0, Account { balance: 990, nonce: 1 });
                applied.set(1, Account { balance: 2_010, nonce: 1 });
                assert_eq!(w.new_root, applied.root());
            }
        }
    }

    #[test]
    fn tampered_public_inputs_are_unsatisfied() {
        let (w, _) = witness_for(&[Transfer { from: 0, to: 1, amount: 10, nonce: 0 }]);
        let good = public_for(&w);
        assert!(check(&w, good).is_satisfied());
        let mut p = good;
        p.new_root += Fr::ONE;
        assert!(!check(&w, p).is_satisfied(), "wrong new root");
        let mut p = good;
        p.old_root = genesis().root() + Fr::ONE;
        assert!(!check(&w, p).is_satisfied(), "wrong old root");
        let mut p = good;
        p.data_hash_lo += Fr::ONE;
        assert!(!check(&w, p).is_satisfied(), "wrong data hash lo");
        let mut p = good;
        p.data_hash_hi = good.data_hash_lo;
        assert!(!check(&w, p).is_satisfied(), "wrong data hash hi");
    }

    #[test]
    fn tampered_witness_is_unsatisfied() {
        for version in VERSIONS {
            let (w, _) = witness_in(version, SHAPE, &[Transfer { from: 0, to: 1, amount: 10, nonce: 0 }]);
            let public = public_for(&w);
            assert!(check_version(version, &w, public).is_satisfied());

            // A richer sender than the tree says.
            let mut bad = w.clone();
            bad.transfers[0].sender.balance += 1;
            assert!(!check_version(version, &bad, public).is_satisfied(), "{version:?}: wrong sender balance");

            // A different receiver balance.
            let mut bad = w.clone();
            bad.transfers[0].receiver.balance = 0;
            assert!(!check_version(version, &bad, public).is_satisfied(), "{version:?}: wrong receiver balance");

            // A wrong sibling.
            let mut bad = w.clone();
            bad.transfers[0].sender_path[2] += Fr::ONE;
            assert!(!check_version(version, &bad, public).is_satisfied(), "{version:?}: wrong path");

            // Different batch bytes under the original data hash.
            let (other, _) = witness_in(version, SHAPE, &[Transfer { from: 0, to: 1, amount: 11, nonce: 0 }]);
            let mut p = public;
            p.new_root = other.new_root;
            assert!(!check_version(version, &other, p).is_satisfied(), "{version:?}: batch bytes not matching");
        }
    }

    #[test]
    fn every_tampered_sibling_is_rejected() {
        // Sender 13 and receiver 6 sit at different positions on every level
        // (13 = 1 + 3*4, 6 = 2 + 1*4; and the top bit in the odd tree).
        for (version, shape) in FOUR_ARY.into_iter().flat_map(|v| [(v, SHAPE), (v, ODD)]) {
            let transfers = [
                Transfer { from: 0, to: 13, amount: 10, nonce: 0 },
                Transfer { from: 13, to: 6 + (shape.d as u32 - 4) * 16, amount: 4, nonce: 0 },
            ];
            let (w, outcomes) = witness_in(version, shape, &transfers);
            assert_eq!(&outcomes[..2], &[TransferOutcome::Applied, TransferOutcome::Applied]);
            let public = public_for(&w);
            assert!(check_version(version, &w, public).is_satisfied());
            for i in 0..path_len(version.arity(), shape.d) {
                let mut bad = w.clone();
                bad.transfers[1].sender_path[i] += Fr::ONE;
                assert!(
                    !check_version(version, &bad, public).is_satisfied(),
                    "{version:?} {shape}: sender sibling {i}"
                );
                let mut bad = w.clone();
                bad.transfers[1].receiver_path[i] -= Fr::ONE;
                assert!(
                    !check_version(version, &bad, public).is_satisfied(),
                    "{version:?} {shape}: receiver sibling {i}"
                );
            }
        }
    }

    #[test]
    fn tampered_position_product_and_selection_are_rejected() {
        // Transfer 0 is 3 -> 2: positions 3 and 2 at level 0, so b0*b1 = 1
        // for the sender and every selection product is non-zero somewhere.
        let (w, _) = witness_for(&[Transfer { from: 3, to: 2, amount: 10, nonce: 1 }]);
        let public = public_for(&w);
        let mut cs = check(&w, public);
        assert!(cs.is_satisfied());
        for var in [
            "transfer 0/sender siblings/level 0 b0*b1/prod/prod",
            "transfer 0/receiver siblings/level 1 b0*b1/prod/prod",
            "transfer 0/sender old path/level 0/select/position 3/prod/prod",
            "transfer 0/sender new path/level 0/select/position 0/prod/prod",
            "transfer 0/receiver old path/level 0/select/upper half/prod/prod",
            "transfer 0/receiver new path/level 1/select/position 0/prod/prod",
        ] {
            let honest = cs.get(var);
            cs.set(var, honest + Fr::ONE);
            assert!(!cs.is_satisfied(), "{var}");
            cs.set(var, honest);
            assert!(cs.is_satisfied());
        }
    }

    #[test]
    fn account_bits_are_the_leaf() {
        // Every bit of an opening is part of the leaf: flipping one (the
        // lowest and highest of the balance and of the nonce) leaves a leaf
        // that is not in the tree. Flipping a bit is a value the booleanity
        // check accepts, so only the path can refuse it.
        let (w, _) = witness_for(&[Transfer { from: 3, to: 2, amount: 10, nonce: 1 }]);
        let public = public_for(&w);
        let mut cs = check(&w, public);
        assert!(cs.is_satisfied());
        for who in ["sender", "receiver"] {
            for bit in [0, 63, 64, 127] {
                let var = format!("transfer 0/{who} account/bit {bit}/boolean");
                let honest = cs.get(&var);
                cs.set(&var, Fr::ONE - honest);
                assert!(!cs.is_satisfied(), "{var}");
                cs.set(&var, honest);
            }
        }
        assert!(cs.is_satisfied());
    }

    #[test]
    fn version_1_opening_had_a_second_reading() {
        // Why version 2 decomposes the nonce too: with only the balance
        // range-checked, (balance - 1, nonce + 2^-64) packs to the same leaf
        // and the balance is still a 64-bit number. The nonce is then no
        // integer, so the sender's nonce check fails and a valid transfer
        // could be proven a no-op.
        let a = Account { balance: 1_000, nonce: 3 };
        let two64_inv = Option::<Fr>::from(two_pow_64().invert()).unwrap();
        let forged_balance = Fr::from(999);
        let forged_nonce = Fr::from(3) + two64_inv;
        assert_eq!(forged_balance + forged_nonce * two_pow_64(), a.leaf());
        assert_ne!(forged_nonce, Fr::from(3));
        // Version 2 reads a leaf only through its 128 bits, which are unique.
        assert_eq!(Fr::from_u128(a.packed()), a.leaf());
    }

    #[test]
    fn overflowing_balance_opening_is_rejected() {
        // leaf = balance + 2^64*nonce; opening nonce-1 with balance+2^64 would
        // give the same leaf and a bigger balance, unless the range check holds.
        // Version 1 names the balance; version 2 has no balance variable to
        // set, only bits, and a balance of 2^64 + 5 has no 64-bit form.
        let mut state =
            StateTree::of_version_with_accounts(Version::V1, SHAPE.d, [(0, Account { balance: 5, nonce: 1 })]);
        let ts = [Transfer { from: 0, to: 1, amount: 6, nonce: 0 }];
        let (w, outcomes) = apply_batch(&mut state, SHAPE, &encode(SHAPE, &ts).unwrap()).unwrap();
        assert_eq!(outcomes[0], TransferOutcome::WrongNonce);
        // Forge: pretend the sender has nonce 0 and 5 + 2^64 balance; the
        // leaf is unchanged, but the circuit must refuse the balance.
        let mut cs = check_version(Version::V1, &w, public_for(&w));
        assert!(cs.is_satisfied());
        let path = "transfer 0/sender balance/v";
        let forged_balance = Fr::from(5u64) + two_pow_64();
        cs.set(path, forged_balance);
        cs.set("transfer 0/sender nonce/v", Fr::ZERO);
        assert!(!cs.is_satisfied(), "a balance of 2^64 + 5 must fail the range check");
    }

    /// Synthesizes one account path alone: the leaf and the siblings as
    /// witnesses, the position bits as allocated booleans.
    fn path_system(
        version: Version,
        depth: usize,
        leaf: Fr,
        index: u64,
        siblings: &[Fr],
    ) -> (TestConstraintSystem<Fr>, Expr) {
        let mut cs = TestConstraintSystem::<Fr>::new();
        let levels = levels(version.arity(), depth);
        let bits: Vec<Boolean> = (0..depth)
            .map(|i| {
                let bit = AllocatedBit::alloc(cs.namespace(|| format!("index bit {i}")), Some((index >> i) & 1 == 1));
                Boolean::from(bit.unwrap())
            })
            .collect();
        let leaf = Expr::alloc(cs.namespace(|| "leaf"), "v", || Ok(leaf)).unwrap();
        let path = account_path(cs.namespace(|| "siblings"), &levels, &bits, Some(siblings)).unwrap();
        let root = root_from(cs.namespace(|| "path"), version, &leaf, &path).unwrap();
        (cs, root)
    }

    #[test]
    fn four_ary_selection_places_the_node_at_each_position() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let (x, s): (Fr, [Fr; 3]) = (Fr::random(&mut rng), std::array::from_fn(|_| Fr::random(&mut rng)));
        for p in 0..4u64 {
            let mut cs = TestConstraintSystem::<Fr>::new();
            let bit = |cs: &mut TestConstraintSystem<Fr>, i: u64| {
                bool_expr(&Boolean::from(
                    AllocatedBit::alloc(cs.namespace(|| format!("b{i}")), Some((p >> i) & 1 == 1)).unwrap(),
                ))
            };
            let (b0, b1) = (bit(&mut cs, 0), bit(&mut cs, 1));
            let b01 = b0.mul(cs.namespace(|| "b01"), &b1).unwrap();
            let ex = Expr::alloc(cs.namespace(|| "x"), "v", || Ok(x)).unwrap();
            let es = [0, 1, 2].map(|i| Expr::alloc(cs.namespace(|| format!("s{i}")), "v", || Ok(s[i])).unwrap());
            let children = children4(cs.namespace(|| "select"), &ex, &b0, &b1, &b01, &es).unwrap();
            let mut want = s.to_vec();
            want.insert(p as usize, x);
            for (i, (c, w)) in children.iter().zip(&want).enumerate() {
                assert_eq!(c.value, Some(*w), "position {p}, child {i}");
                let fixed = Expr::alloc(cs.namespace(|| format!("want {i}")), "v", || Ok(*w)).unwrap();
                c.enforce_equal(cs.namespace(|| format!("child {i}")), &fixed);
            }
            assert!(cs.is_satisfied(), "position {p}: {:?}", cs.which_is_unsatisfied());
            // 1 for b0*b1 and 3 for the selection, besides the 4 checks.
            assert_eq!(cs.num_constraints(), 2 + 1 + 3 + 4);
        }
    }

    #[test]
    fn path_gadget_matches_native_at_every_position_and_refuses_others() {
        // Depth 4 (two 4-ary levels) and 5 (plus the binary top level):
        // every position of the lowest level, both of the top, against the
        // native root; and with the same siblings, another position's root
        // is not reached.
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        for (version, depth) in FOUR_ARY.into_iter().flat_map(|v| [(v, 4usize), (v, 5)]) {
            let len = path_len(version.arity(), depth);
            let leaf = Fr::random(&mut rng);
            let siblings: Vec<Fr> = (0..len).map(|_| Fr::random(&mut rng)).collect();
            for _ in 0..6 {
                let index = rng.random_range(0..1u64 << depth);
                let native = root_from_path(version, depth, leaf, index, &siblings).unwrap();
                let (mut cs, root) = path_system(version, depth, leaf, index, &siblings);
                assert_eq!(root.value, Some(native), "{version:?} depth {depth} index {index}");
                let expected = Expr::alloc(cs.namespace(|| "expected"), "v", || Ok(native)).unwrap();
                root.enforce_equal(cs.namespace(|| "root"), &expected);
                assert!(cs.is_satisfied(), "{version:?} depth {depth} index {index}: {:?}", cs.which_is_unsatisfied());

                for other in [index ^ 1, index ^ 2, index ^ 3, index ^ (1 << (depth - 1))] {
                    let (mut cs, root) = path_system(version, depth, leaf, other, &siblings);
                    let expected = Expr::alloc(cs.namespace(|| "expected"), "v", || Ok(native)).unwrap();
                    root.enforce_equal(cs.namespace(|| "root"), &expected);
                    assert!(
                        !cs.is_satisfied(),
                        "{version:?} depth {depth}: position {other} reached the root of {index}"
                    );
                }
            }
        }
    }

    #[test]
    fn constraint_count_matches_test_system_and_blank_circuit() {
        for version in VERSIONS {
            for shape in [SHAPE, ODD] {
                let (w, _) = witness_in(version, shape, &[]);
                let cs = check_version(version, &w, public_for(&w));
                let mut count = ConstraintCount::default();
                BatchCircuit { shape, version, witness: None, public: None }.synthesize(&mut count).unwrap();
                assert_eq!(cs.num_constraints(), count.constraints, "{version:?} {shape}");
                assert_eq!(count.inputs, 7);
            }
        }
        assert_eq!(ConstraintCount::of(SHAPE).unwrap(), ConstraintCount::of_version(SHAPE, Version::CURRENT).unwrap());
    }

    #[test]
    fn merkle_and_account_costs_are_exact() {
        // Same K, different D: the SHA-256 part is identical, so the
        // difference is the Merkle part alone. Version 1: 976 per level and
        // transfer (4 paths x (243 + 1)). Version 2: 1,202 per 4-ary level
        // and transfer (2 accounts x (b0*b1 + 2 paths x (3 + 297))), i.e.
        // 601 per unit of depth. Version 3: 854 per 4-ary level
        // (2 x (1 + 2 x (3 + 210))), 427 per unit of depth.
        let count = |v, k, d| ConstraintCount::of_version(Shape { k, d }, v).unwrap().constraints;
        assert_eq!(count(Version::V1, 2, 9) - count(Version::V1, 2, 8), 2 * 976);
        assert_eq!(count(Version::V2, 2, 10) - count(Version::V2, 2, 8), 2 * 1_202);
        assert_eq!(count(Version::V3, 2, 10) - count(Version::V3, 2, 8), 2 * 854);
        // A binary top level: per account, 2 paths x (swap + the two-to-one
        // hash): the folded width-3 Poseidon, or the l = 1 Jive.
        assert_eq!(count(Version::V2, 2, 9) - count(Version::V2, 2, 8), 2 * 2 * 2 * 241);
        assert_eq!(count(Version::V3, 2, 9) - count(Version::V3, 2, 8), 2 * 2 * 2 * 161);
        // At equal Merkle depth the versions differ by the accounts' bits:
        // v2 opens each account with 128 bits where v1 range-checked the
        // balance with 65, and by the tree itself.
        assert_eq!(
            count(Version::V2, 1, 8) as i64 - count(Version::V1, 1, 8) as i64,
            (2 * (128 - 65) + 8 * 601) as i64 - 8 * 976
        );
        // v3 and v2 differ by the node hash alone.
        assert_eq!(count(Version::V2, 1, 8) - count(Version::V3, 1, 8), 8 * (601 - 427));
        assert_eq!(count(Version::V2, 1, 9) - count(Version::V3, 1, 9), 8 * (601 - 427) + 4 * (241 - 161));
    }

    #[test]
    fn version_1_counts_are_the_ones_its_keys_were_made_for() {
        for (k, d, constraints) in [(1, 4, 29_409), (2, 4, 34_059), (4, 8, 84_191), (8, 16, 206_087), (16, 20, 469_021)]
        {
            assert_eq!(ConstraintCount::of_version(Shape { k, d }, Version::V1).unwrap().constraints, constraints);
        }
    }

    #[test]
    fn version_2_counts_are_the_ones_its_keys_were_made_for() {
        for (k, d, constraints) in [(1, 4, 28_035), (2, 4, 31_311), (4, 8, 72_695), (8, 16, 159_095), (16, 20, 351_037)]
        {
            assert_eq!(ConstraintCount::of_version(Shape { k, d }, Version::V2).unwrap().constraints, constraints);
        }
    }

    #[test]
    fn version_3_counts() {
        for (k, d, constraints) in [(1, 4, 27_339), (2, 4, 29_919), (4, 8, 67_127), (8, 16, 136_823), (16, 20, 295_357)]
        {
            assert_eq!(ConstraintCount::of_version(Shape { k, d }, Version::V3).unwrap().constraints, constraints);
        }
    }

    #[test]
    fn thirty_percent_fewer_constraints_per_transfer_at_depth_20() {
        // The goal: at most 70 % of version 1's constraints per transfer at
        // D = 20 (29,313 at K = 16, so at most 20,519).
        let shape = Shape { k: 16, d: 20 };
        let v1 = ConstraintCount::of_version(shape, Version::V1).unwrap().constraints / shape.k;
        let v3 = ConstraintCount::of_version(shape, Version::V3).unwrap().constraints / shape.k;
        assert_eq!((v1, v3), (29_313, 18_459));
        assert!(v3 * 10 <= v1 * 7, "{v3} is more than 70 % of {v1}");
    }

    #[test]
    fn malformed_witness_is_an_error_not_a_panic() {
        let (mut w, _) = witness_for(&[]);
        w.transfers.pop();
        let public = public_for(&w);
        let mut cs = TestConstraintSystem::new();
        let r = BatchCircuit::new(SHAPE, Some(w), Some(public)).synthesize(&mut cs);
        assert!(matches!(r, Err(SynthesisError::Unsatisfiable)));

        // A version-1 witness (binary paths) for the current circuit.
        let (w, _) = witness_in(Version::V1, SHAPE, &[]);
        let public = public_for(&w);
        let mut cs = TestConstraintSystem::new();
        let r = BatchCircuit::new(SHAPE, Some(w), Some(public)).synthesize(&mut cs);
        assert!(matches!(r, Err(SynthesisError::Unsatisfiable)));
    }

    #[test]
    fn version_2_witness_does_not_prove_version_3() {
        // Same tree shape, same witness format: only the hash tells them
        // apart, and a version-2 state is not a version-3 state.
        let (w2, _) = witness_in(Version::V2, SHAPE, &[Transfer { from: 0, to: 1, amount: 10, nonce: 0 }]);
        let (w3, _) = witness_in(Version::V3, SHAPE, &[Transfer { from: 0, to: 1, amount: 10, nonce: 0 }]);
        assert_eq!(w2.transfers[0].sender, w3.transfers[0].sender);
        assert_ne!(w2.old_root, w3.old_root);
        assert!(check_version(Version::V2, &w2, public_for(&w2)).is_satisfied());
        assert!(!check_version(Version::V3, &w2, public_for(&w2)).is_satisfied());
    }

    #[test]
    fn print_constraint_counts() {
        println!("| shape (K, D) | v1 constraints | v1 per transfer | v2 constraints | v2 per transfer | v2 vs v1 | v3 constraints | v3 per transfer | v3 vs v1 |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for shape in
            [Shape { k: 1, d: 4 }, Shape::TEST, Shape { k: 4, d: 8 }, Shape { k: 8, d: 16 }, Shape { k: 16, d: 20 }]
        {
            let [v1, v2, v3] = Version::ALL.map(|v| ConstraintCount::of_version(shape, v).unwrap().constraints);
            let change = |c: usize| (c as f64 / v1 as f64 - 1.0) * 100.0;
            println!(
                "| {}, {} | {v1} | {} | {v2} | {} | {:+.1}% | {v3} | {} | {:+.1}% |",
                shape.k,
                shape.d,
                v1 / shape.k,
                v2 / shape.k,
                change(v2),
                v3 / shape.k,
                change(v3),
            );
        }
    }
}
