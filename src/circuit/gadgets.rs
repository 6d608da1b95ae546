//! Small R1CS building blocks shared by the batch circuit and the Poseidon
//! gadget: linear-combination values, booleans packing, conditional
//! selection, zero tests and range decompositions.

use bellman::gadgets::boolean::{AllocatedBit, Boolean};
use bellman::{ConstraintSystem, LinearCombination, SynthesisError, Variable};
use ff::{Field, PrimeField};

use super::Fr;

/// A field value expressed as a linear combination of already allocated
/// variables. Keeping values as combinations instead of allocating every
/// intermediate saves one constraint per linear step (Poseidon's MDS layer,
/// the Merkle swap, packing bits).
#[derive(Clone)]
pub struct Expr {
    pub lc: LinearCombination<Fr>,
    pub value: Option<Fr>,
}

impl Expr {
    pub fn constant(c: Fr) -> Self {
        Expr { lc: LinearCombination::zero() + (c, one()), value: Some(c) }
    }

    pub fn zero() -> Self {
        Expr { lc: LinearCombination::zero(), value: Some(Fr::ZERO) }
    }

    pub fn from_var(var: Variable, value: Option<Fr>) -> Self {
        Expr { lc: LinearCombination::zero() + var, value }
    }

    pub fn alloc<CS, F>(mut cs: CS, name: &str, f: F) -> Result<Self, SynthesisError>
    where
        CS: ConstraintSystem<Fr>,
        F: FnOnce() -> Result<Fr, SynthesisError>,
    {
        let mut value = None;
        let var = cs.alloc(
            || name,
            || {
                let v = f()?;
                value = Some(v);
                Ok(v)
            },
        )?;
        Ok(Expr::from_var(var, value))
    }

    pub fn add(&self, other: &Expr) -> Expr {
        Expr { lc: self.lc.clone() + &other.lc, value: zip(self.value, other.value, |a, b| a + b) }
    }

    pub fn sub(&self, other: &Expr) -> Expr {
        Expr { lc: self.lc.clone() - &other.lc, value: zip(self.value, other.value, |a, b| a - b) }
    }

    pub fn scale(&self, k: Fr) -> Expr {
        let mut lc = LinearCombination::zero();
        for (var, coeff) in self.lc.as_ref() {
            lc = lc + (*coeff * k, *var);
        }
        Expr { lc, value: self.value.map(|v| v * k) }
    }

    /// Merges repeated variables so combinations built by repeated linear
    /// layers (Poseidon's MDS) stay as long as the number of distinct
    /// variables instead of growing geometrically.
    pub fn compact(&self) -> Expr {
        let mut terms: Vec<(Variable, Fr)> = Vec::new();
        for (var, coeff) in self.lc.as_ref() {
            let idx = var.get_unchecked();
            match terms.iter_mut().find(|(v, _)| v.get_unchecked() == idx) {
                Some((_, c)) => *c += coeff,
                None => terms.push((*var, *coeff)),
            }
        }
        let mut lc = LinearCombination::zero();
        for (var, coeff) in terms {
            if !bool::from(coeff.is_zero()) {
                lc = lc + (coeff, var);
            }
        }
        Expr { lc, value: self.value }
    }

    /// The value of a combination of the constant-one input alone (the empty
    /// combination included): known when the circuit is built, whatever the
    /// witness.
    pub fn as_constant(&self) -> Option<Fr> {
        let mut c = Fr::ZERO;
        for (var, coeff) in self.lc.as_ref() {
            if var.get_unchecked() != one().get_unchecked() {
                return None;
            }
            c += coeff;
        }
        Some(c)
    }

    pub fn add_const(&self, c: Fr) -> Expr {
        Expr { lc: self.lc.clone() + (c, one()), value: self.value.map(|v| v + c) }
    }

    /// Allocates a fresh variable equal to this combination (one constraint).
    /// Used to cut long combinations short where they would be copied into
    /// many constraints.
    pub fn materialize<CS: ConstraintSystem<Fr>>(&self, mut cs: CS) -> Result<Expr, SynthesisError> {
        let out = Expr::alloc(cs.namespace(|| "val"), "val", || self.value.ok_or(SynthesisError::AssignmentMissing))?;
        cs.enforce(|| "materialize", |lc| lc + &self.lc, |lc| lc + one(), |lc| lc + &out.lc);
        Ok(out)
    }

    /// `self * other`, one constraint.
    pub fn mul<CS: ConstraintSystem<Fr>>(&self, mut cs: CS, other: &Expr) -> Result<Expr, SynthesisError> {
        let value = zip(self.value, other.value, |a, b| a * b);
        let out = Expr::alloc(cs.namespace(|| "prod"), "prod", || value.ok_or(SynthesisError::AssignmentMissing))?;
        cs.enforce(|| "mul", |lc| lc + &self.lc, |lc| lc + &other.lc, |lc| lc + &out.lc);
        Ok(out)
    }

    pub fn enforce_equal<CS: ConstraintSystem<Fr>>(&self, mut cs: CS, other: &Expr) {
        cs.enforce(|| "equal", |lc| lc + &self.lc - &other.lc, |lc| lc + one(), |lc| lc);
    }
}

/// The constraint system's constant-one input.
pub fn one() -> Variable {
    Variable::new_unchecked(bellman::Index::Input(0))
}

fn zip(a: Option<Fr>, b: Option<Fr>, f: impl FnOnce(Fr, Fr) -> Fr) -> Option<Fr> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        _ => None,
    }
}

/// A boolean as a 0/1 expression.
pub fn bool_expr(b: &Boolean) -> Expr {
    Expr { lc: b.lc(one(), Fr::ONE), value: b.get_value().map(|v| if v { Fr::ONE } else { Fr::ZERO }) }
}

/// Packs big-endian bits (most significant first) into one expression; free.
pub fn pack_be(bits: &[Boolean]) -> Expr {
    let mut acc = Expr::zero();
    let mut coeff = Fr::ONE;
    for bit in bits.iter().rev() {
        acc = acc.add(&bool_expr(bit).scale(coeff));
        coeff = coeff.double();
    }
    acc
}

/// Packs little-endian bits (least significant first) into one expression; free.
pub fn pack_le(bits: &[Boolean]) -> Expr {
    let mut acc = Expr::zero();
    let mut coeff = Fr::ONE;
    for bit in bits {
        acc = acc.add(&bool_expr(bit).scale(coeff));
        coeff = coeff.double();
    }
    acc
}

/// Allocates the `n` low bits of `value`, least significant first (one
/// booleanity constraint each). A number built from them with [`pack_le`] is
/// below `2^n` by construction, with no packing constraint.
pub fn alloc_bits_le<CS: ConstraintSystem<Fr>>(
    mut cs: CS,
    value: Option<u128>,
    n: usize,
) -> Result<Vec<Boolean>, SynthesisError> {
    assert!(n <= 128);
    (0..n)
        .map(|i| {
            let bit = AllocatedBit::alloc(cs.namespace(|| format!("bit {i}")), value.map(|v| (v >> i) & 1 == 1))?;
            Ok(Boolean::from(bit))
        })
        .collect()
}

/// Decomposes `x` into `n` little-endian bits and enforces the packing, so
/// `x < 2^n` (n + 1 constraints). `n` must be below the field's capacity.
pub fn to_bits_le<CS: ConstraintSystem<Fr>>(mut cs: CS, x: &Expr, n: usize) -> Result<Vec<Boolean>, SynthesisError> {
    assert!(n < Fr::CAPACITY as usize);
    let repr = x.value.map(|v| v.to_repr());
    let mut bits = Vec::with_capacity(n);
    for i in 0..n {
        let bit_value = repr.as_ref().map(|r| (r.as_ref()[i / 8] >> (i % 8)) & 1 == 1);
        let bit = AllocatedBit::alloc(cs.namespace(|| format!("bit {i}")), bit_value)?;
        bits.push(Boolean::from(bit));
    }
    let mut packed = LinearCombination::zero();
    let mut coeff = Fr::ONE;
    for bit in &bits {
        packed = packed + &bit.lc(one(), coeff);
        coeff = coeff.double();
    }
    cs.enforce(|| "packing", |lc| lc + &packed, |lc| lc + one(), |lc| lc + &x.lc);
    Ok(bits)
}

/// Returns a boolean that is true iff `x == 0` (two constraints).
pub fn is_zero<CS: ConstraintSystem<Fr>>(mut cs: CS, x: &Expr) -> Result<Boolean, SynthesisError> {
    let is_zero_value = x.value.map(|v| bool::from(v.is_zero()));
    let flag = AllocatedBit::alloc(cs.namespace(|| "flag"), is_zero_value)?;
    let inv = Expr::alloc(cs.namespace(|| "inv"), "inv", || {
        let v = x.value.ok_or(SynthesisError::AssignmentMissing)?;
        Ok(Option::<Fr>::from(v.invert()).unwrap_or(Fr::ZERO))
    })?;
    // x * inv = 1 - flag: forces flag = 0 when x != 0.
    cs.enforce(|| "x*inv", |lc| lc + &x.lc, |lc| lc + &inv.lc, |lc| lc + one() - flag.get_variable());
    // x * flag = 0: forces flag = 0 unless x == 0; with the first, flag = 1 when x == 0.
    cs.enforce(|| "x*flag", |lc| lc + &x.lc, |lc| lc + flag.get_variable(), |lc| lc);
    Ok(Boolean::from(flag))
}

/// `cond ? a : b` as an expression plus one constraint.
pub fn select<CS: ConstraintSystem<Fr>>(
    mut cs: CS,
    cond: &Boolean,
    a: &Expr,
    b: &Expr,
) -> Result<Expr, SynthesisError> {
    // out = b + cond * (a - b)
    let diff = a.sub(b);
    let prod = bool_expr(cond).mul(cs.namespace(|| "cond*diff"), &diff)?;
    Ok(b.add(&prod))
}

/// AND of many booleans as one allocated bit: the sum of their negations is
/// zero iff all are true (is_zero, two constraints regardless of count).
pub fn all<CS: ConstraintSystem<Fr>>(mut cs: CS, bits: &[Boolean]) -> Result<Boolean, SynthesisError> {
    let mut sum = Expr::zero();
    for b in bits {
        sum = sum.add(&bool_expr(&b.not()));
    }
    is_zero(cs.namespace(|| "all"), &sum)
}
