//! The batch circuit: K transfers applied to a Poseidon sparse Merkle tree,
//! with the SHA-256 of the posted batch bytes computed in-circuit.
//!
//! Per transfer: open the sender (depth-D path), apply the debit if the
//! transfer is valid, recompute the intermediate root, open the receiver
//! against it, apply the credit, recompute the root: four Merkle paths of D
//! Poseidon hashes each, plus range checks. The batch bytes are allocated as
//! bits once and shared by SHA-256 and the transfer logic, so the indices,
//! amount and nonce cost no extra decomposition.

use bellman::gadgets::boolean::{AllocatedBit, Boolean};
use bellman::gadgets::sha256::sha256;
use bellman::{Circuit, ConstraintSystem, SynthesisError};

use super::batch::TRANSFER_BYTES;
use super::executor::{BatchWitness, TransferWitness};
use super::gadgets::{all, bool_expr, is_zero, pack_be, select, to_bits_le, Expr};
use super::poseidon::hash2_gadget;
use super::public::PublicInputs;
use super::tree::two_pow_64;
use super::{Fr, Shape};

/// The circuit for one batch. During parameter generation `witness` and
/// `public` are `None`; the constraint system is the same either way.
#[derive(Clone)]
pub struct BatchCircuit {
    pub shape: Shape,
    pub witness: Option<BatchWitness>,
    pub public: Option<PublicInputs>,
}

impl BatchCircuit {
    pub fn blank(shape: Shape) -> Self {
        BatchCircuit { shape, witness: None, public: None }
    }

    fn check_witness(&self) -> Result<(), SynthesisError> {
        let Some(w) = &self.witness else {
            return Ok(());
        };
        let shape = self.shape;
        let paths_ok = w.transfers.iter().all(|t| t.sender_path.len() == shape.d && t.receiver_path.len() == shape.d);
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

        let mut root = old_root;
        for j in 0..shape.k {
            let rec = &bits[j * TRANSFER_BYTES * 8..(j + 1) * TRANSFER_BYTES * 8];
            let tw = self.witness.as_ref().map(|w| &w.transfers[j]);
            root = transfer(cs.namespace(|| format!("transfer {j}")), shape.d, &root, rec, tw)?;
        }
        root.enforce_equal(cs.namespace(|| "bind new_root"), &new_root);
        Ok(())
    }
}

/// One transfer; returns the root after it. `rec` holds the record's 160
/// bits, most significant first: from (32), to (32), amount (64), nonce (32).
fn transfer<CS: ConstraintSystem<Fr>>(
    mut cs: CS,
    depth: usize,
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
    let wit = |f: fn(&TransferWitness) -> Fr| move || w.map(f).ok_or(SynthesisError::AssignmentMissing);

    // Sender: open, check.
    let s_bal = Expr::alloc(cs.namespace(|| "sender balance"), "v", wit(|t| Fr::from(t.sender.balance)))?;
    let s_nonce = Expr::alloc(cs.namespace(|| "sender nonce"), "v", wit(|t| Fr::from(t.sender.nonce)))?;
    // The 64-bit range makes balance + 2^64·nonce an injective packing.
    to_bits_le(cs.namespace(|| "sender balance range"), &s_bal, 64)?;
    let s_leaf = s_bal.add(&s_nonce.scale(two64));
    let s_sibs = alloc_path(cs.namespace(|| "sender siblings"), depth, w.map(|t| t.sender_path.as_slice()))?;
    let s_root = root_from(cs.namespace(|| "sender old path"), &s_leaf, &from_path, &s_sibs)?;
    s_root.enforce_equal(cs.namespace(|| "sender in tree"), root);
    let nonce_ok = is_zero(cs.namespace(|| "nonce matches"), &s_nonce.sub(&tx_nonce))?;
    // balance - amount + 2^64 has bit 64 set iff balance >= amount.
    let diff = s_bal.sub(&amount).add_const(two64);
    let diff_bits = to_bits_le(cs.namespace(|| "balance covers amount"), &diff, 65)?;
    let sufficient = diff_bits[64].clone();

    // Receiver: open against the tree as the sender's update leaves it.
    let r_bal = Expr::alloc(cs.namespace(|| "receiver balance"), "v", wit(|t| Fr::from(t.receiver.balance)))?;
    let r_nonce = Expr::alloc(cs.namespace(|| "receiver nonce"), "v", wit(|t| Fr::from(t.receiver.nonce)))?;
    to_bits_le(cs.namespace(|| "receiver balance range"), &r_bal, 64)?;
    let r_leaf = r_bal.add(&r_nonce.scale(two64));
    let sum_bits = to_bits_le(cs.namespace(|| "receiver no overflow"), &r_bal.add(&amount), 65)?;
    let overflow = sum_bits[64].clone();

    let valid = all(
        cs.namespace(|| "valid"),
        &[in_range, same.not(), zero_amount.not(), nonce_ok, sufficient, overflow.not()],
    )?;
    let valid = bool_expr(&valid);

    // Debit: balance - amount, nonce + 1, i.e. leaf + 2^64 - amount.
    let debit = valid.mul(cs.namespace(|| "debit"), &Expr::constant(two64).sub(&amount))?;
    let s_new_leaf = s_leaf.add(&debit);
    let mid_root = root_from(cs.namespace(|| "sender new path"), &s_new_leaf, &from_path, &s_sibs)?;

    let r_sibs = alloc_path(cs.namespace(|| "receiver siblings"), depth, w.map(|t| t.receiver_path.as_slice()))?;
    let r_root = root_from(cs.namespace(|| "receiver old path"), &r_leaf, &to_path, &r_sibs)?;
    r_root.enforce_equal(cs.namespace(|| "receiver in tree"), &mid_root);
    let credit = valid.mul(cs.namespace(|| "credit"), &amount)?;
    let r_new_leaf = r_leaf.add(&credit);
    root_from(cs.namespace(|| "receiver new path"), &r_new_leaf, &to_path, &r_sibs)
}

fn alloc_path<CS: ConstraintSystem<Fr>>(
    mut cs: CS,
    depth: usize,
    path: Option<&[Fr]>,
) -> Result<Vec<Expr>, SynthesisError> {
    (0..depth)
        .map(|h| {
            Expr::alloc(cs.namespace(|| format!("sibling {h}")), "v", || {
                path.map(|p| p[h]).ok_or(SynthesisError::AssignmentMissing)
            })
        })
        .collect()
}

/// Root of the path from `leaf`; one constraint for the swap plus one
/// Poseidon per level.
fn root_from<CS: ConstraintSystem<Fr>>(
    mut cs: CS,
    leaf: &Expr,
    bits: &[Boolean],
    siblings: &[Expr],
) -> Result<Expr, SynthesisError> {
    let mut cur = leaf.clone();
    for (h, (bit, sib)) in bits.iter().zip(siblings).enumerate() {
        let mut cs = cs.namespace(|| format!("level {h}"));
        // When the bit is set the current node is the right child.
        let left = select(cs.namespace(|| "left"), bit, sib, &cur)?;
        let right = cur.add(sib).sub(&left).compact();
        cur = hash2_gadget(cs.namespace(|| "hash"), &left.compact(), &right)?;
    }
    Ok(cur)
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
    pub fn of(shape: Shape) -> Result<Self, SynthesisError> {
        let mut cs = ConstraintCount::default();
        BatchCircuit::blank(shape).synthesize(&mut cs)?;
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
    use crate::circuit::tree::{Account, StateTree};
    use crate::circuit::{Transfer, TransferOutcome};
    use bellman::gadgets::test::TestConstraintSystem;
    use ff::Field;
    use rand::rngs::ChaCha20Rng;
    use rand::SeedableRng;

    const SHAPE: Shape = Shape { k: 3, d: 4 };

    fn genesis() -> StateTree {
        StateTree::with_accounts(
            SHAPE.d,
            (0..6u64)
                .map(|i| (i, Account { balance: if i == 5 { u64::MAX - 3 } else { 1_000 * (i + 1) }, nonce: i % 2 })),
        )
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

    fn check(w: &BatchWitness, public: PublicInputs) -> TestConstraintSystem<Fr> {
        let mut cs = TestConstraintSystem::new();
        BatchCircuit { shape: w.shape, witness: Some(w.clone()), public: Some(public) }.synthesize(&mut cs).unwrap();
        cs
    }

    fn witness_for(transfers: &[Transfer]) -> (BatchWitness, Vec<TransferOutcome>) {
        let mut state = genesis();
        apply_batch(&mut state, SHAPE, &encode(SHAPE, transfers).unwrap()).unwrap()
    }

    #[test]
    fn native_and_circuit_agree_on_random_batches() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut state = genesis();
        let mut seen = std::collections::HashSet::new();
        for round in 0..12 {
            let ts = random_transfers(&mut rng, SHAPE, &state, 7, 0.5);
            let (w, outcomes) = apply_batch(&mut state, SHAPE, &encode(SHAPE, &ts).unwrap()).unwrap();
            seen.extend(outcomes.iter().copied());
            let cs = check(&w, public_for(&w));
            assert!(cs.is_satisfied(), "round {round}: {:?} unsatisfied at {:?}", outcomes, cs.which_is_unsatisfied());
            assert_eq!(w.new_root, state.root());
        }
        assert!(seen.contains(&TransferOutcome::Applied) && seen.len() >= 4, "batches too uniform: {seen:?}");
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
        for (t, want) in cases {
            let (w, outcomes) = witness_for(&[Transfer { from: 0, to: 1, amount: 10, nonce: 0 }, t]);
            // The zero padding record is a self-transfer of nothing: a no-op.
            assert_eq!(outcomes, vec![Applied, want, SelfTransfer], "{t:?}");
            let cs = check(&w, public_for(&w));
            assert!(cs.is_satisfied(), "{t:?}: unsatisfied at {:?}", cs.which_is_unsatisfied());
            // And claiming the no-op transfer changed the state cannot be proven.
            let mut applied = genesis();
            applied.set(0, Account { balance: 990, nonce: 1 });
            applied.set(1, Account { balance: 2_010, nonce: 1 });
            assert_eq!(w.new_root, applied.root());
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
        let (w, _) = witness_for(&[Transfer { from: 0, to: 1, amount: 10, nonce: 0 }]);
        let public = public_for(&w);

        // A richer sender than the tree says.
        let mut bad = w.clone();
        bad.transfers[0].sender.balance += 1;
        assert!(!check(&bad, public).is_satisfied(), "wrong sender balance");

        // A different receiver balance.
        let mut bad = w.clone();
        bad.transfers[0].receiver.balance = 0;
        assert!(!check(&bad, public).is_satisfied(), "wrong receiver balance");

        // A wrong sibling.
        let mut bad = w.clone();
        bad.transfers[0].sender_path[2] += Fr::ONE;
        assert!(!check(&bad, public).is_satisfied(), "wrong path");

        // Different batch bytes under the original data hash.
        let (other, _) = witness_for(&[Transfer { from: 0, to: 1, amount: 11, nonce: 0 }]);
        let mut p = public;
        p.new_root = other.new_root;
        assert!(!check(&other, p).is_satisfied(), "batch bytes not matching the data hash");
    }

    #[test]
    fn overflowing_balance_opening_is_rejected() {
        // leaf = balance + 2^64*nonce; opening nonce-1 with balance+2^64 would
        // give the same leaf and a bigger balance, unless the range check holds.
        let mut state = StateTree::with_accounts(SHAPE.d, [(0, Account { balance: 5, nonce: 1 })]);
        let ts = [Transfer { from: 0, to: 1, amount: 6, nonce: 0 }];
        let (w, outcomes) = apply_batch(&mut state, SHAPE, &encode(SHAPE, &ts).unwrap()).unwrap();
        assert_eq!(outcomes[0], TransferOutcome::WrongNonce);
        // Forge: pretend the sender has nonce 0 and 5 + 2^64 balance; the
        // leaf is unchanged, but the circuit must refuse the balance.
        let mut cs = TestConstraintSystem::new();
        let circuit = BatchCircuit { shape: SHAPE, witness: Some(w.clone()), public: Some(public_for(&w)) };
        circuit.synthesize(&mut cs).unwrap();
        assert!(cs.is_satisfied());
        let path = "transfer 0/sender balance/v";
        let forged_balance = Fr::from(5u64) + two_pow_64();
        cs.set(path, forged_balance);
        cs.set("transfer 0/sender nonce/v", Fr::ZERO);
        assert!(!cs.is_satisfied(), "a balance of 2^64 + 5 must fail the range check");
    }

    #[test]
    fn constraint_count_matches_test_system_and_blank_circuit() {
        let (w, _) = witness_for(&[]);
        let cs = check(&w, public_for(&w));
        let count = ConstraintCount::of(SHAPE).unwrap();
        assert_eq!(cs.num_constraints(), count.constraints);
        assert_eq!(count.inputs, 7);
    }

    #[test]
    fn malformed_witness_is_an_error_not_a_panic() {
        let (mut w, _) = witness_for(&[]);
        w.transfers.pop();
        let public = public_for(&w);
        let mut cs = TestConstraintSystem::new();
        let r = BatchCircuit { shape: SHAPE, witness: Some(w), public: Some(public) }.synthesize(&mut cs);
        assert!(matches!(r, Err(SynthesisError::Unsatisfiable)));
    }

    #[test]
    fn print_constraint_counts() {
        for shape in
            [Shape { k: 1, d: 4 }, Shape::TEST, Shape { k: 4, d: 8 }, Shape { k: 8, d: 16 }, Shape { k: 16, d: 20 }]
        {
            let c = ConstraintCount::of(shape).unwrap();
            println!(
                "shape K={} D={}: {} constraints, {} per transfer",
                shape.k,
                shape.d,
                c.constraints,
                c.constraints / shape.k
            );
        }
    }
}
