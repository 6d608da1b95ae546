//! EIP-2537 encodings of BLS12-381 points, the form the verifier contract
//! takes without conversion.
//!
//! * Fp element: 64 bytes, 16 zero bytes then the 48-byte big-endian value.
//! * G1: `x ‖ y` (128 bytes). G2: `x.c0 ‖ x.c1 ‖ y.c0 ‖ y.c1` (256 bytes).
//! * The point at infinity is all zeros.
//! * A Groth16 proof is `A (G1) ‖ B (G2) ‖ C (G1)`: 512 bytes.
//! * A verifying key is `alpha (G1) ‖ beta (G2) ‖ gamma (G2) ‖ delta (G2) ‖
//!   IC[0..=7] (G1)`: 1920 bytes. Its keccak256 is the shape's VK hash.
//!
//! Decoding checks that coordinates are canonical, points are on the curve
//! and in the prime-order subgroup.

use bls12_381::{Bls12, G1Affine, G2Affine};
use groth16::{Proof, VerifyingKey};
use sha3::{Digest, Keccak256};

use crate::circuit::public::NUM_PUBLIC_INPUTS;

pub const G1_BYTES: usize = 128;
pub const G2_BYTES: usize = 256;
pub const PROOF_BYTES: usize = 2 * G1_BYTES + G2_BYTES;
pub const VK_BYTES: usize = G1_BYTES + 3 * G2_BYTES + (NUM_PUBLIC_INPUTS + 1) * G1_BYTES;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodingError {
    #[error("expected {want} bytes, got {got}")]
    Length { want: usize, got: usize },
    #[error("{0}: field element padding is not zero")]
    Padding(&'static str),
    #[error("{0}: not a canonical point on the curve in the prime-order subgroup")]
    InvalidPoint(&'static str),
    #[error("verifying key has {got} IC points, the batch circuit needs {want}")]
    IcCount { want: usize, got: usize },
}

pub fn g1_to_bytes(p: &G1Affine) -> [u8; G1_BYTES] {
    let mut out = [0u8; G1_BYTES];
    if bool::from(p.is_identity()) {
        return out;
    }
    let raw = p.to_uncompressed();
    out[16..64].copy_from_slice(&raw[..48]);
    out[80..128].copy_from_slice(&raw[48..96]);
    out
}

pub fn g2_to_bytes(p: &G2Affine) -> [u8; G2_BYTES] {
    let mut out = [0u8; G2_BYTES];
    if bool::from(p.is_identity()) {
        return out;
    }
    // zcash order is x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0; EIP-2537 puts c0 first.
    let raw = p.to_uncompressed();
    out[16..64].copy_from_slice(&raw[48..96]);
    out[80..128].copy_from_slice(&raw[..48]);
    out[144..192].copy_from_slice(&raw[144..192]);
    out[208..256].copy_from_slice(&raw[96..144]);
    out
}

fn unpad<'a>(chunk: &'a [u8], what: &'static str) -> Result<&'a [u8], EncodingError> {
    if chunk[..16].iter().any(|b| *b != 0) {
        return Err(EncodingError::Padding(what));
    }
    Ok(&chunk[16..])
}

pub fn g1_from_bytes(b: &[u8], what: &'static str) -> Result<G1Affine, EncodingError> {
    if b.len() != G1_BYTES {
        return Err(EncodingError::Length { want: G1_BYTES, got: b.len() });
    }
    if b.iter().all(|x| *x == 0) {
        return Ok(G1Affine::identity());
    }
    let mut raw = [0u8; 96];
    raw[..48].copy_from_slice(unpad(&b[..64], what)?);
    raw[48..].copy_from_slice(unpad(&b[64..], what)?);
    Option::from(G1Affine::from_uncompressed(&raw)).ok_or(EncodingError::InvalidPoint(what))
}

pub fn g2_from_bytes(b: &[u8], what: &'static str) -> Result<G2Affine, EncodingError> {
    if b.len() != G2_BYTES {
        return Err(EncodingError::Length { want: G2_BYTES, got: b.len() });
    }
    if b.iter().all(|x| *x == 0) {
        return Ok(G2Affine::identity());
    }
    let mut raw = [0u8; 192];
    raw[48..96].copy_from_slice(unpad(&b[..64], what)?);
    raw[..48].copy_from_slice(unpad(&b[64..128], what)?);
    raw[144..192].copy_from_slice(unpad(&b[128..192], what)?);
    raw[96..144].copy_from_slice(unpad(&b[192..256], what)?);
    Option::from(G2Affine::from_uncompressed(&raw)).ok_or(EncodingError::InvalidPoint(what))
}

pub fn proof_to_bytes(p: &Proof<Bls12>) -> Vec<u8> {
    let mut out = Vec::with_capacity(PROOF_BYTES);
    out.extend_from_slice(&g1_to_bytes(&p.a));
    out.extend_from_slice(&g2_to_bytes(&p.b));
    out.extend_from_slice(&g1_to_bytes(&p.c));
    out
}

pub fn proof_from_bytes(b: &[u8]) -> Result<Proof<Bls12>, EncodingError> {
    if b.len() != PROOF_BYTES {
        return Err(EncodingError::Length { want: PROOF_BYTES, got: b.len() });
    }
    Ok(Proof {
        a: g1_from_bytes(&b[..G1_BYTES], "proof.A")?,
        b: g2_from_bytes(&b[G1_BYTES..G1_BYTES + G2_BYTES], "proof.B")?,
        c: g1_from_bytes(&b[G1_BYTES + G2_BYTES..], "proof.C")?,
    })
}

pub fn vk_to_bytes(vk: &VerifyingKey<Bls12>) -> Result<Vec<u8>, EncodingError> {
    if vk.ic.len() != NUM_PUBLIC_INPUTS + 1 {
        return Err(EncodingError::IcCount { want: NUM_PUBLIC_INPUTS + 1, got: vk.ic.len() });
    }
    let mut out = Vec::with_capacity(VK_BYTES);
    out.extend_from_slice(&g1_to_bytes(&vk.alpha_g1));
    out.extend_from_slice(&g2_to_bytes(&vk.beta_g2));
    out.extend_from_slice(&g2_to_bytes(&vk.gamma_g2));
    out.extend_from_slice(&g2_to_bytes(&vk.delta_g2));
    for p in &vk.ic {
        out.extend_from_slice(&g1_to_bytes(p));
    }
    Ok(out)
}

/// keccak256 of the EIP-2537 verifying key: what provers announce and what
/// the verifier contract reports as `vkHash()`.
pub fn vk_hash(vk: &VerifyingKey<Bls12>) -> Result<[u8; 32], EncodingError> {
    Ok(Keccak256::digest(vk_to_bytes(vk)?).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use group::{Curve, Group};
    use rand::rngs::ChaCha20Rng;
    use rand::SeedableRng;

    #[test]
    fn points_roundtrip_and_identity_is_zeros() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for _ in 0..4 {
            let g1 = bls12_381::G1Projective::random(&mut rng).to_affine();
            let g2 = bls12_381::G2Projective::random(&mut rng).to_affine();
            assert_eq!(g1_from_bytes(&g1_to_bytes(&g1), "g1").unwrap(), g1);
            assert_eq!(g2_from_bytes(&g2_to_bytes(&g2), "g2").unwrap(), g2);
        }
        assert_eq!(g1_to_bytes(&G1Affine::identity()), [0u8; 128]);
        assert!(bool::from(g2_from_bytes(&[0u8; 256], "g2").unwrap().is_identity()));
    }

    #[test]
    fn generator_layout_is_eip2537() {
        // x of the G1 generator starts 0x17f1d3a7 (EIP-2537 test vectors).
        let g = g1_to_bytes(&G1Affine::generator());
        assert_eq!(&g[..16], &[0u8; 16]);
        assert_eq!(&g[16..20], &[0x17, 0xf1, 0xd3, 0xa7]);
        // G2 generator: x.c0 starts 0x024aa2b2, x.c1 starts 0x13e02b60.
        let g2 = g2_to_bytes(&G2Affine::generator());
        assert_eq!(&g2[16..20], &[0x02, 0x4a, 0xa2, 0xb2]);
        assert_eq!(&g2[80..84], &[0x13, 0xe0, 0x2b, 0x60]);
    }

    #[test]
    fn malformed_points_are_rejected() {
        let mut g = g1_to_bytes(&G1Affine::generator());
        g[127] ^= 1;
        assert_eq!(g1_from_bytes(&g, "A"), Err(EncodingError::InvalidPoint("A")));
        let mut g = g1_to_bytes(&G1Affine::generator());
        g[0] = 1;
        assert_eq!(g1_from_bytes(&g, "A"), Err(EncodingError::Padding("A")));
        assert!(matches!(proof_from_bytes(&[0u8; 511]), Err(EncodingError::Length { .. })));
    }
}
