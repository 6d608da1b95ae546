//! The Poseidon hash over the BLS12-381 scalar field, natively and as an R1CS
//! gadget for the Groth16 circuits: the permutation for any width, its two
//! reference instances, and the two- and four-to-one hashes built on them.
//!
//! # Instances
//!
//! Both use the S-box x^5 and R_F = 8 full rounds (4 before and 4 after the
//! partial rounds) over the 255-bit BLS12-381 scalar field, with a capacity of
//! one element:
//!
//! * [`X5_255_3`]: width t = 3 (rate 2), R_P = 57 partial rounds, the instance
//!   the Poseidon reference implementation publishes as
//!   `poseidonperm_x5_255_3`. It hashes the binary tree levels.
//! * [`X5_255_5`]: width t = 5 (rate 4), R_P = 60, the reference's
//!   `poseidonperm_x5_255_5`. It hashes the 4-ary tree levels.
//!
//! R_F and R_P are what the Poseidon paper's round-number formulas give for a
//! 128-bit security level (M = 128) with n = 255, alpha = 5 and the width,
//! including the paper's security margin (two extra full rounds, 7.5 % more
//! partial rounds). A single 255-bit capacity element is how the reference
//! sizes its M = 128 instances for this field.
//!
//! Each round adds its t round constants to the whole state, applies the
//! S-box (to every cell in full rounds, to cell 0 in partial rounds) and
//! multiplies the state, as a column vector, by the MDS matrix.
//!
//! # Constants
//!
//! Round constants and the MDS matrix are derived at first use, exactly as the
//! reference implementation's `generate_parameters_grain.sage` derives them for
//! `field = 1, sbox = 0, n = 255, t, R_F, R_P` and the BLS12-381 scalar
//! modulus: an 80-bit Grain LFSR seeded with those parameters, whose first 160
//! output bits are discarded and whose output is then filtered in bit pairs
//! (the second bit is kept only when the first is 1). The (R_F + R_P) * t round
//! constants are 255-bit big-endian draws, redrawn while not below the
//! modulus. The MDS matrix is the Cauchy matrix `M[i][j] = 1 / (x_i + y_j)`
//! over the next 2t draws (reduced modulo p, not rejected), redrawn while those
//! are not distinct or some `x_i + y_j` is 0. The script additionally screens
//! the matrix against invariant subspace trails and would redraw on failure;
//! that screening is not repeated here, because for both instances the first
//! candidate is the matrix the reference publishes, and the tests pin it (and
//! the reference test vector of each instance) so any divergence would fail
//! them.
//!
//! # Hashing
//!
//! [`hash2`] and [`hash4`] follow the paper's fixed-input-length convention:
//! the capacity element is initialised to `l * 2^64 + (o - 1)` for `l` inputs
//! and `o` outputs, here `2 * 2^64` ([`HASH2_DOMAIN_TAG`]) and `4 * 2^64`
//! ([`HASH4_DOMAIN_TAG`]); the rate holds the inputs and the digest is
//! `state[1]`, the first rate element, after one permutation. The tag keeps
//! these digests apart from any other use of the same permutation with a
//! different input length or capacity value.
//!
//! # Circuit cost
//!
//! Each S-box costs exactly 3 constraints (x^2, x^4, x^5), so one permutation
//! costs `(R_F * t + R_P) * 3`: 243 for t = 3, 300 for t = 5. Round constants
//! and the MDS layer stay linear combinations and cost nothing. With
//! [`Folding::Constants`] an S-box whose input is known at synthesis time is
//! evaluated natively instead; in a hash that is the capacity cell in round 0,
//! so [`hash2_gadget`] costs 240 and [`hash4_gadget`] 297.

use std::sync::OnceLock;

use bellman::{ConstraintSystem, SynthesisError};
use ff::Field;

use super::gadgets::Expr;
use super::Fr;

/// `poseidonperm_x5_255_3`: width 3, 8 full and 57 partial rounds.
pub static X5_255_3: Instance<3> = Instance::new(8, 57);

/// `poseidonperm_x5_255_5`: width 5, 8 full and 60 partial rounds.
pub static X5_255_5: Instance<5> = Instance::new(8, 60);

/// Capacity value of [`hash2`]: `2 * 2^64`, the paper's fixed-input-length tag
/// for two inputs and one output.
pub const HASH2_DOMAIN_TAG: Fr = Fr::from_raw([0, 2, 0, 0]);

/// Capacity value of [`hash4`]: `4 * 2^64`, the tag for four inputs and one
/// output.
pub const HASH4_DOMAIN_TAG: Fr = Fr::from_raw([0, 4, 0, 0]);

const SBOX_CONSTRAINTS: usize = 3;

/// Bit length of the field elements the Grain stream draws (`n` of the script).
const FIELD_BITS: usize = 255;

/// How a gadget treats an S-box whose input is a constant of the circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Folding {
    /// Evaluate it natively, for no constraint; the output is the same
    /// constant the native permutation computes.
    Constants,
    /// Constrain it like any other. Circuit version 1 did, and its keys are
    /// only valid for exactly that constraint system.
    Nothing,
}

/// A Poseidon instance of width `T` with the x^5 S-box.
pub struct Instance<const T: usize> {
    full_rounds: usize,
    partial_rounds: usize,
    constants: OnceLock<Constants<T>>,
}

pub struct Constants<const T: usize> {
    /// One row per round, added to the state before that round's S-boxes.
    pub round_constants: Vec<[Fr; T]>,
    /// Applied as `state'[i] = sum_j mds[i][j] * state[j]`.
    pub mds: [[Fr; T]; T],
}

impl<const T: usize> Instance<T> {
    const fn new(full_rounds: usize, partial_rounds: usize) -> Self {
        Instance { full_rounds, partial_rounds, constants: OnceLock::new() }
    }

    pub fn full_rounds(&self) -> usize {
        self.full_rounds
    }

    pub fn partial_rounds(&self) -> usize {
        self.partial_rounds
    }

    /// The instance's constants, derived once per process on first use.
    pub fn constants(&self) -> &Constants<T> {
        self.constants.get_or_init(|| generate_constants(self.full_rounds, self.partial_rounds))
    }

    /// Constraints of one [`Instance::permute_gadget`] without folding.
    pub fn permutation_constraints(&self) -> usize {
        (self.full_rounds * T + self.partial_rounds) * SBOX_CONSTRAINTS
    }

    /// The permutation, in place.
    pub fn permute(&self, state: &mut [Fr; T]) {
        let c = self.constants();
        for (round, rc) in c.round_constants.iter().enumerate() {
            for (s, k) in state.iter_mut().zip(rc) {
                *s += k;
            }
            for s in state.iter_mut().take(self.sbox_count(round)) {
                *s = sbox(*s);
            }
            *state = mds_mul(&c.mds, state);
        }
    }

    /// The permutation as constraints: one allocated variable per S-box step,
    /// [`Instance::permutation_constraints`] of them less 3 per S-box folded.
    /// The outputs are linear combinations of the last round's S-box outputs,
    /// not fresh variables.
    ///
    /// Variables are named `round {r}/sbox {i}/x^{2,4,5}/prod/prod` below `cs`,
    /// and the constraints `round {r}/sbox {i}/x^{2,4,5}/mul`.
    pub fn permute_gadget<CS: ConstraintSystem<Fr>>(
        &self,
        mut cs: CS,
        state: [Expr; T],
        folding: Folding,
    ) -> Result<[Expr; T], SynthesisError> {
        let c = self.constants();
        let mut state = state;
        for (round, rc) in c.round_constants.iter().enumerate() {
            let mut cs = cs.namespace(|| format!("round {round}"));
            // Compacting here merges the constant just added with the one carried
            // through the MDS, so each S-box constraint copies every variable once.
            let mut next: [Expr; T] = std::array::from_fn(|i| state[i].add_const(rc[i]).compact());
            for (i, x) in next.iter_mut().enumerate().take(self.sbox_count(round)) {
                *x = match (folding, x.as_constant()) {
                    (Folding::Constants, Some(k)) => Expr::constant(sbox(k)),
                    _ => sbox_gadget(cs.namespace(|| format!("sbox {i}")), x)?,
                };
            }
            state = mds_gadget(&c.mds, &next);
        }
        Ok(state)
    }

    /// Full rounds are the first and last `R_F / 2`; the partial rounds in
    /// between only apply the S-box to cell 0.
    fn sbox_count(&self, round: usize) -> usize {
        let half = self.full_rounds / 2;
        if round < half || round >= half + self.partial_rounds {
            T
        } else {
            1
        }
    }
}

/// Two-to-one hash of the binary tree levels: the width-3 permutation of
/// `[HASH2_DOMAIN_TAG, a, b]`, output `state[1]`.
pub fn hash2(a: Fr, b: Fr) -> Fr {
    let mut state = [HASH2_DOMAIN_TAG, a, b];
    X5_255_3.permute(&mut state);
    state[1]
}

/// Four-to-one hash of the 4-ary tree levels: the width-5 permutation of
/// `[HASH4_DOMAIN_TAG, x0, x1, x2, x3]`, output `state[1]`.
pub fn hash4(x: [Fr; 4]) -> Fr {
    let mut state = [HASH4_DOMAIN_TAG, x[0], x[1], x[2], x[3]];
    X5_255_5.permute(&mut state);
    state[1]
}

/// [`hash2`] as constraints: 243, or 240 with [`Folding::Constants`].
pub fn hash2_gadget<CS: ConstraintSystem<Fr>>(
    cs: CS,
    a: &Expr,
    b: &Expr,
    folding: Folding,
) -> Result<Expr, SynthesisError> {
    let [_, out, _] = X5_255_3.permute_gadget(cs, [Expr::constant(HASH2_DOMAIN_TAG), a.clone(), b.clone()], folding)?;
    Ok(out)
}

/// [`hash4`] as constraints (297: the capacity's round-0 S-box is folded;
/// only circuit version 2 uses this hash, so nothing needs it unfolded).
pub fn hash4_gadget<CS: ConstraintSystem<Fr>>(cs: CS, x: &[Expr; 4]) -> Result<Expr, SynthesisError> {
    let state = [Expr::constant(HASH4_DOMAIN_TAG), x[0].clone(), x[1].clone(), x[2].clone(), x[3].clone()];
    let [_, out, _, _, _] = X5_255_5.permute_gadget(cs, state, Folding::Constants)?;
    Ok(out)
}

fn sbox(x: Fr) -> Fr {
    x.square().square() * x
}

fn mds_mul<const T: usize>(mds: &[[Fr; T]; T], state: &[Fr; T]) -> [Fr; T] {
    std::array::from_fn(|i| mds[i].iter().zip(state).map(|(m, s)| *m * s).sum())
}

fn sbox_gadget<CS: ConstraintSystem<Fr>>(mut cs: CS, x: &Expr) -> Result<Expr, SynthesisError> {
    let x2 = x.mul(cs.namespace(|| "x^2"), x)?;
    let x4 = x2.mul(cs.namespace(|| "x^4"), &x2)?;
    x4.mul(cs.namespace(|| "x^5"), x)
}

fn mds_gadget<const T: usize>(mds: &[[Fr; T]; T], state: &[Expr; T]) -> [Expr; T] {
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

fn generate_constants<const T: usize>(full_rounds: usize, partial_rounds: usize) -> Constants<T> {
    let mut grain = Grain::new(T, full_rounds, partial_rounds);
    let round_constants =
        (0..full_rounds + partial_rounds).map(|_| std::array::from_fn(|_| grain.field_element_rejected())).collect();
    let mds = cauchy_mds(&mut grain);
    Constants { round_constants, mds }
}

/// The script draws the matrix from the same stream, right after the round
/// constants, and reduces its draws instead of rejecting them.
fn cauchy_mds<const T: usize>(grain: &mut Grain) -> [[Fr; T]; T] {
    loop {
        let mut points: Vec<Fr> = (0..2 * T).map(|_| grain.field_element_reduced()).collect();
        while !all_distinct(&points) {
            points = (0..2 * T).map(|_| grain.field_element_reduced()).collect();
        }
        let (xs, ys) = points.split_at(T);
        let mut mds = [[Fr::ZERO; T]; T];
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

    fn new(width: usize, full_rounds: usize, partial_rounds: usize) -> Self {
        // (value, width) fields of the seed, most significant bit first:
        // field type (1 = prime field), S-box (0 = x^alpha), n, t, R_F, R_P.
        let fields: [(usize, usize); 6] =
            [(1, 2), (0, 4), (FIELD_BITS, 12), (width, 12), (full_rounds, 10), (partial_rounds, 10)];
        let mut state = 0u128;
        let mut pos = 0;
        for (value, bits) in fields {
            for b in (0..bits).rev() {
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

    fn alloc_inputs<const T: usize>(cs: &mut TestConstraintSystem<Fr>, values: [Fr; T]) -> [Expr; T] {
        std::array::from_fn(|i| Expr::alloc(cs.namespace(|| format!("in {i}")), "in", || Ok(values[i])).unwrap())
    }

    /// Forces `e` to equal `v` through a fresh witness, so a satisfied system
    /// proves the combination itself (not only its carried value) equals `v`.
    fn enforce_value(cs: &mut TestConstraintSystem<Fr>, name: &str, e: &Expr, v: Fr) {
        let expected = Expr::alloc(cs.namespace(|| format!("{name} expected")), "v", || Ok(v)).unwrap();
        e.enforce_equal(cs.namespace(|| format!("{name} check")), &expected);
    }

    #[test]
    fn reference_test_vector_width_3() {
        // The Poseidon reference implementation's test vector for x5_255_3
        // (`poseidonperm_x5_255_3`): the permutation of [0, 1, 2].
        let mut state = [Fr::from(0), Fr::from(1), Fr::from(2)];
        X5_255_3.permute(&mut state);
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
    fn reference_test_vector_width_5() {
        // The reference implementation's test vector for x5_255_5
        // (`poseidonperm_x5_255_5`): the permutation of [0, 1, 2, 3, 4].
        let mut state = [Fr::from(0), Fr::from(1), Fr::from(2), Fr::from(3), Fr::from(4)];
        X5_255_5.permute(&mut state);
        assert_eq!(
            state,
            [
                fr("0x2a918b9c9f9bd7bb509331c81e297b5707f6fc7393dcee1b13901a0b22202e18"),
                fr("0x65ebf8671739eeb11fb217f2d5c5bf4a0c3f210e3f3cd3b08b5db75675d797f7"),
                fr("0x2cc176fc26bc70737a696a9dfd1b636ce360ee76926d182390cdb7459cf585ce"),
                fr("0x4dc4e29d283afd2a491fe6aef122b9a968e74eff05341f3cc23fda1781dcb566"),
                fr("0x03ff622da276830b9451b88b85e6184fd6ae15c8ab3ee25a5667be8592cce3b1"),
            ]
        );
    }

    fn assert_matrix<const T: usize>(mds: &[[Fr; T]; T], expected: [[&str; T]; T]) {
        for (i, (row, want)) in mds.iter().zip(expected).enumerate() {
            for (j, (entry, hex)) in row.iter().zip(want).enumerate() {
                assert_eq!(*entry, fr(hex), "mds[{i}][{j}]");
            }
        }
    }

    #[test]
    fn constants_match_reference_width_3() {
        // Values the reference implementation lists for poseidonperm_x5_255_3.
        let c = X5_255_3.constants();
        assert_eq!(c.round_constants.len(), 8 + 57);
        assert_eq!(c.round_constants[0][0], fr("0x6c4ffa723eaf1a7bf74905cc7dae4ca9ff4a2c3bc81d42e09540d1f250910880"));
        assert_eq!(c.round_constants[0][1], fr("0x54dd837eccf180c92c2f53a3476e45a156ab69a403b6b9fdfd8dd970fddcdd9a"));
        let last = c.round_constants.last().unwrap();
        assert_eq!(last[2], fr("0x57b33094aeff828377897b56e1c432978d07c668ef25a36bc5e2e835aaeff725"));
        assert_matrix(
            &c.mds,
            [
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
            ],
        );
    }

    #[test]
    fn constants_match_reference_width_5() {
        // Values the reference implementation lists for poseidonperm_x5_255_5:
        // the first two and the last round constants, and the matrix.
        let c = X5_255_5.constants();
        assert_eq!(c.round_constants.len(), 8 + 60);
        assert_eq!(c.round_constants[0][0], fr("0x5ee52b2f39e240a4006e97a15a7609dce42fa9aa510d11586a56db98fa925158"));
        assert_eq!(c.round_constants[0][1], fr("0x3e92829ce321755f769c6fd0d51e98262d7747ad553b028dbbe98b5274b9c8e1"));
        assert_eq!(c.round_constants[1][0], fr("0x3d7e5deccc6eb706c315ff02070232127dbe99bc6a4d1b23e967d35205b87694"));
        let last = c.round_constants.last().unwrap();
        assert_eq!(last[4], fr("0x20f955773b13b160d3575eb2380b466f7d38cb4a0e12a15d43d147645c3944ca"));
        assert_matrix(
            &c.mds,
            [
                [
                    "0x354423b163d1078b0dd645be56316e34a9b98e52dcf9f469be44b108be46c107",
                    "0x44778737e8bc1154aca1cd92054a1e5b83808403705f7d54da88bbd1920e1053",
                    "0x5872eefb5ab6b2946556524168a2aebb69afd513a2fff91e50167b1f6e4055e0",
                    "0x43dff85b25129835819bc8c95819f1a34136f6114e900cd3656e1b9e0e13f86a",
                    "0x07803d2ffe72940596803f244ac090a9cf2d3616546520bc360c7eed0b81cbf8",
                ],
                [
                    "0x45d6bc4b818e2b9a53e0e2c0a08f70c34167fd8128e05ac800651ddfee0932d1",
                    "0x08317abbb9e5046b22dfb79e64c8184855107c1d95dddd2b63ca10dddea9ff1a",
                    "0x1bb80eba77c5dcffafb55ccba4ae39ac8f94a054f2a0ee3006b362f709d5e470",
                    "0x038e75bdcf8be7fd3a1e844c4de7333531bbd5a8d2c3779627df88e7480e7c5c",
                    "0x2dd797a699e620ea6b31b91ba3fad4a82f40cffb3e8a30c0b7a546ff69a9002b",
                ],
                [
                    "0x4b906f9ee339b196e958e3541b555b4b53e540a113b2f1cabba627be16eb5608",
                    "0x605f0c707b82ef287f46431f9241fe4acf0b7ddb151803cbcf1e7bbd27c3e974",
                    "0x100c514bf38f6ff10df1c83bb428397789cfff7bb0b1280f52343861e8c8737e",
                    "0x2d40ce8af8a252f5611701c3d6b1e517161d0549ef27f443570c81fcdfe3706b",
                    "0x3e6418bdf0313f59afc5f40b4450e56881110ea9a0532e8092efb06a12a8b0f1",
                ],
                [
                    "0x71788bf7f6c0cebae5627c5629d012d5fba52428d1f25cdaa0a7434e70e014d0",
                    "0x55cc73296f7e7d26d10b9339721d7983ca06145675255025ab00b34342557db7",
                    "0x0f043b29be2def73a6c6ec92168ea4b47bc9f434a5e6b5d48677670a7ca4d285",
                    "0x62ccc9cdfed859a610f103d74ea04dec0f6874a9b36f3b4e9b47fd73368d45b4",
                    "0x55fb349dd6200b34eaba53a67e74f47d08e473da139dc47e44df50a26423d2d1",
                ],
                [
                    "0x45bfbe5ed2f4a01c13b15f20bba00ff577b1154a81b3f318a6aff86369a66735",
                    "0x6a008906685587af05dce9ad2c65ea1d42b1ec32609597bd00c01f58443329ef",
                    "0x004feebd0dbdb9b71176a1d43c9eb495e16419382cdf7864e4bce7b37440cd58",
                    "0x09f080180ce23a5aef3a07e60b28ffeb2cf1771aefbc565c2a3059b39ed82f43",
                    "0x2f7126ddc54648ab6d02493dbe9907f29f4ef3967ad8cd609f0d9467e1694607",
                ],
            ],
        );
    }

    #[test]
    fn domain_tags_are_inputs_times_two_to_the_64() {
        assert_eq!(HASH2_DOMAIN_TAG, Fr::from(2).pow_vartime(&[65, 0, 0, 0]));
        assert_eq!(HASH4_DOMAIN_TAG, Fr::from(2).pow_vartime(&[66, 0, 0, 0]));
    }

    #[test]
    fn hashes_are_the_tagged_permutations() {
        let (a, b) = (Fr::from(7), Fr::from(11));
        let mut state = [HASH2_DOMAIN_TAG, a, b];
        X5_255_3.permute(&mut state);
        assert_eq!(hash2(a, b), state[1]);
        assert_ne!(hash2(a, b), hash2(b, a));

        let x = [Fr::from(1), Fr::from(2), Fr::from(3), Fr::from(4)];
        let mut state = [HASH4_DOMAIN_TAG, x[0], x[1], x[2], x[3]];
        X5_255_5.permute(&mut state);
        assert_eq!(hash4(x), state[1]);
        // Order matters: swapping any two inputs changes the digest.
        for (i, j) in [(0, 1), (1, 2), (2, 3), (0, 3)] {
            let mut y = x;
            y.swap(i, j);
            assert_ne!(hash4(x), hash4(y), "swap {i},{j}");
        }
    }

    fn gadget_matches_native_for<const T: usize>(instance: &Instance<T>, seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for folding in [Folding::Nothing, Folding::Constants] {
            for _ in 0..3 {
                let input: [Fr; T] = std::array::from_fn(|_| Fr::random(&mut rng));
                let mut expected = input;
                instance.permute(&mut expected);

                let mut cs = TestConstraintSystem::<Fr>::new();
                let state = alloc_inputs(&mut cs, input);
                let out = instance.permute_gadget(cs.namespace(|| "perm"), state, folding).unwrap();
                for (i, (o, e)) in out.iter().zip(expected).enumerate() {
                    assert_eq!(o.value, Some(e));
                    enforce_value(&mut cs, &format!("out {i}"), o, e);
                }
                assert!(cs.is_satisfied(), "unsatisfied: {:?}", cs.which_is_unsatisfied());
                // Variable inputs leave nothing to fold.
                assert_eq!(cs.num_constraints(), instance.permutation_constraints() + T);
            }
        }
    }

    #[test]
    fn gadget_matches_native() {
        gadget_matches_native_for(&X5_255_3, 0x5eed);
        gadget_matches_native_for(&X5_255_5, 0x5eed5);
    }

    #[test]
    fn hash_gadgets_match_native_with_and_without_folding() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (a, b) = (Fr::random(&mut rng), Fr::random(&mut rng));
        for folding in [Folding::Nothing, Folding::Constants] {
            let mut cs = TestConstraintSystem::<Fr>::new();
            let [ea, eb] = alloc_inputs(&mut cs, [a, b]);
            let out = hash2_gadget(cs.namespace(|| "hash"), &ea, &eb, folding).unwrap();
            assert_eq!(out.value, Some(hash2(a, b)));
            enforce_value(&mut cs, "digest", &out, hash2(a, b));
            assert!(cs.is_satisfied(), "{folding:?}: unsatisfied: {:?}", cs.which_is_unsatisfied());
        }

        let x: [Fr; 4] = std::array::from_fn(|_| Fr::random(&mut rng));
        let mut cs = TestConstraintSystem::<Fr>::new();
        let ex = alloc_inputs(&mut cs, x);
        let out = hash4_gadget(cs.namespace(|| "hash"), &ex).unwrap();
        assert_eq!(out.value, Some(hash4(x)));
        enforce_value(&mut cs, "digest", &out, hash4(x));
        assert!(cs.is_satisfied(), "unsatisfied: {:?}", cs.which_is_unsatisfied());
    }

    #[test]
    fn folding_keeps_constant_inputs_exact() {
        // Every input constant: the whole permutation folds to the native
        // value with no constraint at all, which is the strongest check that
        // a folded S-box is the native one.
        let input = [Fr::from(0), Fr::from(1), Fr::from(2), Fr::from(3), Fr::from(4)];
        let mut expected = input;
        X5_255_5.permute(&mut expected);
        let mut cs = TestConstraintSystem::<Fr>::new();
        let out =
            X5_255_5.permute_gadget(cs.namespace(|| "perm"), input.map(Expr::constant), Folding::Constants).unwrap();
        assert_eq!(cs.num_constraints(), 0);
        for (o, e) in out.iter().zip(expected) {
            assert_eq!(o.as_constant(), Some(e));
        }
    }

    #[test]
    fn constraint_counts() {
        assert_eq!(X5_255_3.permutation_constraints(), 243);
        assert_eq!(X5_255_5.permutation_constraints(), 300);
        let count = |f: &dyn Fn(&mut TestConstraintSystem<Fr>)| {
            let mut cs = TestConstraintSystem::<Fr>::new();
            f(&mut cs);
            cs.num_constraints()
        };
        let perm3 = |cs: &mut TestConstraintSystem<Fr>| {
            let state = alloc_inputs(cs, [Fr::from(1), Fr::from(2), Fr::from(3)]);
            X5_255_3.permute_gadget(cs.namespace(|| "perm"), state, Folding::Constants).unwrap();
        };
        let perm5 = |cs: &mut TestConstraintSystem<Fr>| {
            let state = alloc_inputs(cs, [1, 2, 3, 4, 5].map(Fr::from));
            X5_255_5.permute_gadget(cs.namespace(|| "perm"), state, Folding::Constants).unwrap();
        };
        let hash2_with = |folding| {
            move |cs: &mut TestConstraintSystem<Fr>| {
                let [a, b] = alloc_inputs(cs, [Fr::from(1), Fr::from(2)]);
                hash2_gadget(cs.namespace(|| "hash"), &a, &b, folding).unwrap();
            }
        };
        let h4 = |cs: &mut TestConstraintSystem<Fr>| {
            let x = alloc_inputs(cs, [1, 2, 3, 4].map(Fr::from));
            hash4_gadget(cs.namespace(|| "hash"), &x).unwrap();
        };
        assert_eq!(count(&perm3), 243);
        assert_eq!(count(&perm5), 300);
        assert_eq!(count(&hash2_with(Folding::Nothing)), 243);
        assert_eq!(count(&hash2_with(Folding::Constants)), 240);
        assert_eq!(count(&h4), 297);
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
            X5_255_3.permute_gadget(cs.namespace(|| "perm"), state, Folding::Nothing).unwrap();
            assert!(cs.is_satisfied());
            let honest = cs.get(var);
            cs.set(var, honest + Fr::ONE);
            assert_eq!(cs.which_is_unsatisfied(), Some(constraint));
        }
    }

    #[test]
    fn tampered_hash4_sbox_output_is_rejected() {
        for (var, constraint) in [
            ("hash/round 0/sbox 1/x^5/prod/prod", "hash/round 0/sbox 1/x^5/mul"),
            ("hash/round 1/sbox 0/x^2/prod/prod", "hash/round 1/sbox 0/x^2/mul"),
            ("hash/round 40/sbox 0/x^4/prod/prod", "hash/round 40/sbox 0/x^4/mul"),
            ("hash/round 67/sbox 4/x^5/prod/prod", "hash/round 67/sbox 4/x^5/mul"),
        ] {
            let mut cs = TestConstraintSystem::<Fr>::new();
            let x = alloc_inputs(&mut cs, [5, 6, 7, 8].map(Fr::from));
            hash4_gadget(cs.namespace(|| "hash"), &x).unwrap();
            assert!(cs.is_satisfied());
            let honest = cs.get(var);
            cs.set(var, honest + Fr::ONE);
            assert_eq!(cs.which_is_unsatisfied(), Some(constraint));
        }
    }

    #[test]
    fn folded_capacity_sbox_has_no_variables() {
        // The folded S-box is gone, not merely unconstrained: nothing of it
        // exists that a prover could set.
        let mut cs = TestConstraintSystem::<Fr>::new();
        let x = alloc_inputs(&mut cs, [5, 6, 7, 8].map(Fr::from));
        hash4_gadget(cs.namespace(|| "hash"), &x).unwrap();
        let names = cs.pretty_print();
        assert!(!names.contains("hash/round 0/sbox 0/"), "the capacity S-box of round 0 was constrained");
        assert!(names.contains("hash/round 0/sbox 1/"));
        assert!(names.contains("hash/round 1/sbox 0/"));
    }

    #[test]
    fn synthesizes_without_values() {
        // ConstraintCount never asks for a value, as parameter generation.
        let mut cs = crate::circuit::batch_circuit::ConstraintCount::default();
        let x: [Expr; 4] =
            std::array::from_fn(|_| Expr::alloc(&mut cs, "x", || Err(SynthesisError::AssignmentMissing)).unwrap());
        assert!(x[0].value.is_none());
        let out = hash2_gadget(&mut cs, &x[0], &x[1], Folding::Nothing).unwrap();
        assert!(out.value.is_none());
        assert_eq!(cs.constraints, 243);
        let out = hash4_gadget(&mut cs, &x).unwrap();
        assert!(out.value.is_none());
        assert_eq!(cs.constraints, 243 + 297);
        assert_eq!(cs.inputs, 0, "the permutation allocates no public inputs");
    }
}
