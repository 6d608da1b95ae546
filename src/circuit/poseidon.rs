//! The Poseidon hash over the BLS12-381 scalar field, natively and as an R1CS
//! gadget for the Groth16 circuits.
//!
//! # Instance
//!
//! Width t = 3 (rate 2, capacity 1), S-box x^5, R_F = 8 full rounds (4 before
//! and 4 after the partial rounds) and R_P = 57 partial rounds, over the
//! 255-bit BLS12-381 scalar field. This is the instance the Poseidon reference
//! implementation publishes as `poseidonperm_x5_255_3`: R_F and R_P are what the
//! Poseidon paper's round-number formulas give for a 128-bit security level
//! (M = 128) with n = 255, t = 3 and alpha = 5, including the paper's security
//! margin (two extra full rounds, 7.5 % more partial rounds). The capacity is
//! a single 255-bit element, which is how the reference sizes its M = 128
//! instances for this field.
//!
//! Each round adds its three round constants to the whole state, applies the
//! S-box (to every cell in full rounds, to cell 0 in partial rounds) and
//! multiplies the state, as a column vector, by the MDS matrix.
//!
//! # Constants
//!
//! Round constants and the MDS matrix are derived at first use, exactly as the
//! reference implementation's `generate_parameters_grain.sage` derives them for
//! `field = 1, sbox = 0, n = 255, t = 3, R_F = 8, R_P = 57` and the BLS12-381
//! scalar modulus: an 80-bit Grain LFSR seeded with those parameters, whose
//! first 160 output bits are discarded and whose output is then filtered in
//! bit pairs (the second bit is kept only when the first is 1). The
//! (R_F + R_P) * t round constants are 255-bit big-endian draws, redrawn while
//! not below the modulus. The MDS matrix is the Cauchy matrix
//! `M[i][j] = 1 / (x_i + y_j)` over the next 2t draws (reduced modulo p, not
//! rejected), redrawn while those are not distinct or some `x_i + y_j` is 0.
//! The script additionally screens the matrix against invariant subspace
//! trails and would redraw on failure; that screening is not repeated here,
//! because the first candidate is the matrix the reference publishes for this
//! instance, and the tests pin it (and the reference test vector) so any
//! divergence would fail them.
//!
//! # Two-to-one hashing
//!
//! [`hash2`] follows the paper's fixed-input-length convention: the capacity
//! element is initialised to `l * 2^64 + (o - 1)` for `l` inputs and `o`
//! outputs, here `2 * 2^64 = 2^65` ([`HASH2_DOMAIN_TAG`]); the rate holds the
//! two inputs and the digest is `state[1]`, the first rate element, after one
//! permutation. The tag keeps these digests apart from any other use of the
//! same permutation with a different input length or capacity value.
//!
//! # Circuit cost
//!
//! Each S-box costs exactly 3 constraints (x^2, x^4, x^5), so one permutation
//! costs `8 * 3 * 3 + 57 * 3 = 243` constraints. Round constants and the MDS
//! layer stay linear combinations and cost nothing.

use std::sync::OnceLock;

use bellman::{ConstraintSystem, SynthesisError};
use ff::Field;

use super::gadgets::Expr;
use super::Fr;

pub const WIDTH: usize = 3;
pub const FULL_ROUNDS: usize = 8;
pub const PARTIAL_ROUNDS: usize = 57;

/// Constraints spent by one [`permute_gadget`] (and one [`hash2_gadget`]).
pub const PERMUTATION_CONSTRAINTS: usize = (FULL_ROUNDS * WIDTH + PARTIAL_ROUNDS) * SBOX_CONSTRAINTS;

/// Capacity value of [`hash2`]: `2 * 2^64`, the paper's fixed-input-length tag
/// for two inputs and one output.
pub const HASH2_DOMAIN_TAG: Fr = Fr::from_raw([0, 2, 0, 0]);

const SBOX_CONSTRAINTS: usize = 3;

/// Bit length of the field elements the Grain stream draws (`n` of the script).
const FIELD_BITS: usize = 255;

pub struct PoseidonConstants {
    /// One row per round, added to the state before that round's S-boxes.
    pub round_constants: Vec<[Fr; WIDTH]>,
    /// Applied as `state'[i] = sum_j mds[i][j] * state[j]`.
    pub mds: [[Fr; WIDTH]; WIDTH],
}

/// The instance's constants, derived once per process on first use.
pub fn constants() -> &'static PoseidonConstants {
    static CONSTANTS: OnceLock<PoseidonConstants> = OnceLock::new();
    CONSTANTS.get_or_init(generate_constants)
}

/// The Poseidon permutation, in place.
pub fn permute(state: &mut [Fr; WIDTH]) {
    let c = constants();
    for (round, rc) in c.round_constants.iter().enumerate() {
        for (s, k) in state.iter_mut().zip(rc) {
            *s += k;
        }
        for s in state.iter_mut().take(sbox_count(round)) {
            *s = sbox(*s);
        }
        *state = mds_mul(&c.mds, state);
    }
}

/// Two-to-one hash used for Merkle nodes: the permutation of
/// `[HASH2_DOMAIN_TAG, a, b]`, output `state[1]`.
pub fn hash2(a: Fr, b: Fr) -> Fr {
    let mut state = [HASH2_DOMAIN_TAG, a, b];
    permute(&mut state);
    state[1]
}

/// The permutation as constraints: [`PERMUTATION_CONSTRAINTS`] of them, one
/// allocated variable per S-box step. The outputs are linear combinations of
/// the last round's S-box outputs, not fresh variables.
///
/// Variables are named `round {r}/sbox {i}/x^{2,4,5}/prod/prod` below `cs`, and
/// the constraints `round {r}/sbox {i}/x^{2,4,5}/mul`.
pub fn permute_gadget<CS: ConstraintSystem<Fr>>(
    mut cs: CS,
    state: [Expr; WIDTH],
) -> Result<[Expr; WIDTH], SynthesisError> {
    let c = constants();
    let mut state = state;
    for (round, rc) in c.round_constants.iter().enumerate() {
        let mut cs = cs.namespace(|| format!("round {round}"));
        // Compacting here merges the constant just added with the one carried
        // through the MDS, so each S-box constraint copies every variable once.
        let mut next: [Expr; WIDTH] = std::array::from_fn(|i| state[i].add_const(rc[i]).compact());
        for (i, x) in next.iter_mut().enumerate().take(sbox_count(round)) {
            *x = sbox_gadget(cs.namespace(|| format!("sbox {i}")), x)?;
        }
        state = mds_gadget(&c.mds, &next);
    }
    Ok(state)
}

/// [`hash2`] as constraints ([`PERMUTATION_CONSTRAINTS`] of them).
pub fn hash2_gadget<CS: ConstraintSystem<Fr>>(cs: CS, a: &Expr, b: &Expr) -> Result<Expr, SynthesisError> {
    let [_, out, _] = permute_gadget(cs, [Expr::constant(HASH2_DOMAIN_TAG), a.clone(), b.clone()])?;
    Ok(out)
}

/// Full rounds are the first and last `FULL_ROUNDS / 2`; the partial rounds in
/// between only apply the S-box to cell 0.
fn sbox_count(round: usize) -> usize {
    let half = FULL_ROUNDS / 2;
    if round < half || round >= half + PARTIAL_ROUNDS {
        WIDTH
    } else {
        1
    }
}

fn sbox(x: Fr) -> Fr {
    x.square().square() * x
}

fn mds_mul(mds: &[[Fr; WIDTH]; WIDTH], state: &[Fr; WIDTH]) -> [Fr; WIDTH] {
    std::array::from_fn(|i| mds[i].iter().zip(state).map(|(m, s)| *m * s).sum())
}

fn sbox_gadget<CS: ConstraintSystem<Fr>>(mut cs: CS, x: &Expr) -> Result<Expr, SynthesisError> {
    let x2 = x.mul(cs.namespace(|| "x^2"), x)?;
    let x4 = x2.mul(cs.namespace(|| "x^4"), &x2)?;
    x4.mul(cs.namespace(|| "x^5"), x)
}

fn mds_gadget(mds: &[[Fr; WIDTH]; WIDTH], state: &[Expr; WIDTH]) -> [Expr; WIDTH] {
    std::array::from_fn(|i| {
        let mut acc = Expr::zero();
        for (m, s) in mds[i].iter().zip(state) {
            acc = acc.add(&s.scale(*m));
        }
        // Without merging, every round would multiply the number of terms by
        // the width; merged, a cell is bounded by the distinct variables in it.
        acc.compact()
    })
}

fn generate_constants() -> PoseidonConstants {
    let mut grain = Grain::new();
    let round_constants =
        (0..FULL_ROUNDS + PARTIAL_ROUNDS).map(|_| std::array::from_fn(|_| grain.field_element_rejected())).collect();
    let mds = cauchy_mds(&mut grain);
    PoseidonConstants { round_constants, mds }
}

/// The script draws the matrix from the same stream, right after the round
/// constants, and reduces its draws instead of rejecting them.
fn cauchy_mds(grain: &mut Grain) -> [[Fr; WIDTH]; WIDTH] {
    loop {
        let mut points: [Fr; 2 * WIDTH] = std::array::from_fn(|_| grain.field_element_reduced());
        while !all_distinct(&points) {
            points = std::array::from_fn(|_| grain.field_element_reduced());
        }
        let (xs, ys) = points.split_at(WIDTH);
        let mut mds = [[Fr::ZERO; WIDTH]; WIDTH];
        let mut invertible = true;
        for (row, x) in mds.iter_mut().zip(xs) {
            for (entry, y) in row.iter_mut().zip(ys) {
                match Option::<Fr>::from((*x + y).invert()) {
                    Some(inv) => *entry = inv,
                    None => invertible = false,
                }
            }
        }
        if invertible {
            return mds;
        }
    }
}

fn all_distinct(points: &[Fr]) -> bool {
    points.iter().enumerate().all(|(i, p)| points[i + 1..].iter().all(|q| p != q))
}

/// The reference's self-shrinking Grain LFSR. Bit `k` of `state` is element `k`
/// of the script's bit list: bit 0 is the oldest and is shifted out next.
struct Grain {
    state: u128,
}

impl Grain {
    const STATE_BITS: usize = 80;

    fn new() -> Self {
        // (value, width) fields of the seed, most significant bit first:
        // field type (1 = prime field), S-box (0 = x^alpha), n, t, R_F, R_P.
        let fields: [(usize, usize); 6] =
            [(1, 2), (0, 4), (FIELD_BITS, 12), (WIDTH, 12), (FULL_ROUNDS, 10), (PARTIAL_ROUNDS, 10)];
        let mut state = 0u128;
        let mut pos = 0;
        for (value, width) in fields {
            for b in (0..width).rev() {
                state |= (((value >> b) & 1) as u128) << pos;
                pos += 1;
            }
        }
        // The remaining 30 seed bits are ones.
        while pos < Self::STATE_BITS {
            state |= 1 << pos;
            pos += 1;
        }
        let mut grain = Grain { state };
        // The first 160 outputs still depend too visibly on the seed.
        for _ in 0..160 {
            grain.clock();
        }
        grain
    }

    fn clock(&mut self) -> u128 {
        let s = self.state;
        let bit = ((s >> 62) ^ (s >> 51) ^ (s >> 38) ^ (s >> 23) ^ (s >> 13) ^ s) & 1;
        self.state = (s >> 1) | (bit << (Self::STATE_BITS - 1));
        bit
    }

    /// Pairs filter: the second bit of a pair is output only when the first is 1.
    fn next_bit(&mut self) -> bool {
        loop {
            let keep = self.clock();
            let bit = self.clock();
            if keep == 1 {
                return bit == 1;
            }
        }
    }

    /// `FIELD_BITS` output bits read as a big-endian integer, returned as the
    /// little-endian bytes `Fr` expects.
    fn next_bytes(&mut self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        for i in (0..FIELD_BITS).rev() {
            if self.next_bit() {
                bytes[i / 8] |= 1 << (i % 8);
            }
        }
        bytes
    }

    /// Round constants: draws not below the modulus are discarded.
    fn field_element_rejected(&mut self) -> Fr {
        loop {
            // `from_bytes` accepts exactly the canonical encodings, i.e. values below p.
            if let Some(x) = Option::<Fr>::from(Fr::from_bytes(&self.next_bytes())) {
                return x;
            }
        }
    }

    /// MDS points: draws are taken modulo p.
    fn field_element_reduced(&mut self) -> Fr {
        let mut wide = [0u8; 64];
        wide[..32].copy_from_slice(&self.next_bytes());
        Fr::from_bytes_wide(&wide)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bellman::gadgets::test::TestConstraintSystem;
    use rand::rngs::ChaCha8Rng;
    use rand::SeedableRng;

    /// Big-endian hex, as the reference prints field elements.
    fn fr(hex_be: &str) -> Fr {
        let mut bytes: [u8; 32] = hex::decode(hex_be.trim_start_matches("0x")).unwrap().try_into().unwrap();
        bytes.reverse();
        Option::from(Fr::from_bytes(&bytes)).unwrap()
    }

    fn alloc_inputs(cs: &mut TestConstraintSystem<Fr>, values: [Fr; WIDTH]) -> [Expr; WIDTH] {
        std::array::from_fn(|i| Expr::alloc(cs.namespace(|| format!("in {i}")), "in", || Ok(values[i])).unwrap())
    }

    /// Forces `e` to equal `v` through a fresh witness, so a satisfied system
    /// proves the combination itself (not only its carried value) equals `v`.
    fn enforce_value(cs: &mut TestConstraintSystem<Fr>, name: &str, e: &Expr, v: Fr) {
        let expected = Expr::alloc(cs.namespace(|| format!("{name} expected")), "v", || Ok(v)).unwrap();
        e.enforce_equal(cs.namespace(|| format!("{name} check")), &expected);
    }

    #[test]
    fn reference_test_vector() {
        // The Poseidon reference implementation's test vector for x5_255_3
        // (`poseidonperm_x5_255_3`): the permutation of [0, 1, 2].
        let mut state = [Fr::from(0), Fr::from(1), Fr::from(2)];
        permute(&mut state);
        assert_eq!(
            state,
            [
                fr("0x28ce19420fc246a05553ad1e8c98f5c9d67166be2c18e9e4cb4b4e317dd2a78a"),
                fr("0x51f3e312c95343a896cfd8945ea82ba956c1118ce9b9859b6ea56637b4b1ddc4"),
                fr("0x3b2b69139b235626a0bfb56c9527ae66a7bf486ad8c11c14d1da0c69bbe0f79a"),
            ]
        );
    }

    #[test]
    fn constants_match_reference() {
        // Values the reference implementation lists for poseidonperm_x5_255_3.
        let c = constants();
        assert_eq!(c.round_constants.len(), FULL_ROUNDS + PARTIAL_ROUNDS);
        assert_eq!(c.round_constants[0][0], fr("0x6c4ffa723eaf1a7bf74905cc7dae4ca9ff4a2c3bc81d42e09540d1f250910880"));
        assert_eq!(c.round_constants[0][1], fr("0x54dd837eccf180c92c2f53a3476e45a156ab69a403b6b9fdfd8dd970fddcdd9a"));
        let last = c.round_constants.last().unwrap();
        assert_eq!(last[2], fr("0x57b33094aeff828377897b56e1c432978d07c668ef25a36bc5e2e835aaeff725"));
        let mds = [
            [
                "0x3d955d6c02fe4d7cb500e12f2b55eff668a7b4386bd27413766713c93f2acfcd",
                "0x3798866f4e6058035dcf8addb2cf1771fac234bcc8fc05d6676e77e797f224bf",
                "0x2c51456a7bf2467eac813649f3f25ea896eac27c5da020dae54a6e640278fda2",
            ],
            [
                "0x20088ca07bbcd7490a0218ebc0ecb31d0ea34840e2dc2d33a1a5adfecff83b43",
                "0x1d04ba0915e7807c968ea4b1cb2d610c7f9a16b4033f02ebacbb948c86a988c3",
                "0x5387ccd5729d7acbd09d96714d1d18bbd0eeaefb2ddee3d2ef573c9c7f953307",
            ],
            [
                "0x1e208f585a72558534281562cad89659b428ec61433293a8d7f0f0e38a6726ac",
                "0x0455ebf862f0b60f69698e97d36e8aafd4d107cae2b61be1858b23a3363642e0",
                "0x569e2c206119e89455852059f707370e2c1fc9721f6c50991cedbbf782daef54",
            ],
        ];
        for (row, expected) in c.mds.iter().zip(mds) {
            for (entry, hex) in row.iter().zip(expected) {
                assert_eq!(*entry, fr(hex));
            }
        }
    }

    #[test]
    fn domain_tag_is_two_times_two_to_the_64() {
        assert_eq!(HASH2_DOMAIN_TAG, Fr::from(2).pow_vartime(&[65, 0, 0, 0]));
    }

    #[test]
    fn hash2_is_the_tagged_permutation() {
        let (a, b) = (Fr::from(7), Fr::from(11));
        let mut state = [HASH2_DOMAIN_TAG, a, b];
        permute(&mut state);
        assert_eq!(hash2(a, b), state[1]);
        assert_ne!(hash2(a, b), hash2(b, a));
    }

    #[test]
    fn gadget_matches_native() {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
        for _ in 0..4 {
            let input: [Fr; WIDTH] = std::array::from_fn(|_| Fr::random(&mut rng));
            let mut expected = input;
            permute(&mut expected);

            let mut cs = TestConstraintSystem::<Fr>::new();
            let state = alloc_inputs(&mut cs, input);
            let out = permute_gadget(cs.namespace(|| "perm"), state).unwrap();
            for (i, (o, e)) in out.iter().zip(expected).enumerate() {
                assert_eq!(o.value, Some(e));
                enforce_value(&mut cs, &format!("out {i}"), o, e);
            }
            assert!(cs.is_satisfied(), "unsatisfied: {:?}", cs.which_is_unsatisfied());
        }
    }

    #[test]
    fn hash2_gadget_matches_native() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (a, b) = (Fr::random(&mut rng), Fr::random(&mut rng));
        let mut cs = TestConstraintSystem::<Fr>::new();
        let [ea, eb, _] = alloc_inputs(&mut cs, [a, b, Fr::ZERO]);
        let out = hash2_gadget(cs.namespace(|| "hash"), &ea, &eb).unwrap();
        assert_eq!(out.value, Some(hash2(a, b)));
        enforce_value(&mut cs, "digest", &out, hash2(a, b));
        assert!(cs.is_satisfied(), "unsatisfied: {:?}", cs.which_is_unsatisfied());
    }

    #[test]
    fn constraint_count() {
        assert_eq!(PERMUTATION_CONSTRAINTS, 243);
        let mut cs = TestConstraintSystem::<Fr>::new();
        let state = alloc_inputs(&mut cs, [Fr::from(1), Fr::from(2), Fr::from(3)]);
        permute_gadget(cs.namespace(|| "perm"), state).unwrap();
        assert_eq!(cs.num_constraints(), 243);

        let mut cs = TestConstraintSystem::<Fr>::new();
        let [a, b, _] = alloc_inputs(&mut cs, [Fr::from(1), Fr::from(2), Fr::from(3)]);
        hash2_gadget(cs.namespace(|| "hash"), &a, &b).unwrap();
        assert_eq!(cs.num_constraints(), 243);
    }

    #[test]
    fn tampered_sbox_output_is_rejected() {
        for (var, constraint) in [
            ("perm/round 0/sbox 1/x^5/prod/prod", "perm/round 0/sbox 1/x^5/mul"),
            ("perm/round 30/sbox 0/x^2/prod/prod", "perm/round 30/sbox 0/x^2/mul"),
            ("perm/round 64/sbox 2/x^4/prod/prod", "perm/round 64/sbox 2/x^4/mul"),
        ] {
            let mut cs = TestConstraintSystem::<Fr>::new();
            let state = alloc_inputs(&mut cs, [Fr::from(0), Fr::from(1), Fr::from(2)]);
            permute_gadget(cs.namespace(|| "perm"), state).unwrap();
            assert!(cs.is_satisfied());
            let honest = cs.get(var);
            cs.set(var, honest + Fr::ONE);
            assert_eq!(cs.which_is_unsatisfied(), Some(constraint));
        }
    }

    #[test]
    fn synthesizes_without_values() {
        // ConstraintCount never asks for a value, as parameter generation.
        let mut cs = crate::circuit::batch_circuit::ConstraintCount::default();
        let a = Expr::alloc(&mut cs, "a", || Err(SynthesisError::AssignmentMissing)).unwrap();
        let b = Expr::alloc(&mut cs, "b", || Err(SynthesisError::AssignmentMissing)).unwrap();
        assert!(a.value.is_none());
        let out = hash2_gadget(&mut cs, &a, &b).unwrap();
        assert!(out.value.is_none());
        assert_eq!(cs.constraints, 243);
        assert_eq!(cs.inputs, 0, "the permutation allocates no public inputs");
    }
}
