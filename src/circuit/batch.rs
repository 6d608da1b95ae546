//! Canonical batch encoding: what the sequencer posts and what the circuit
//! hashes with SHA-256.
//!
//! A batch of shape (K, D) is exactly `20 * K` bytes: K records of
//! `from: u32 | to: u32 | amount: u64 | nonce: u32`, all big-endian. Unused
//! slots are zero records, which are no-ops because a zero amount is never a
//! valid transfer. The fixed length keeps the in-circuit SHA-256 a fixed
//! number of blocks; the rollup contract rejects any other length at posting
//! time, so everything a sequencer manages to post can be proven.

use serde::{Deserialize, Serialize};

use super::Shape;

pub const TRANSFER_BYTES: usize = 20;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub from: u32,
    pub to: u32,
    pub amount: u64,
    pub nonce: u32,
}

impl Transfer {
    pub fn to_bytes(&self) -> [u8; TRANSFER_BYTES] {
        let mut out = [0u8; TRANSFER_BYTES];
        out[0..4].copy_from_slice(&self.from.to_be_bytes());
        out[4..8].copy_from_slice(&self.to.to_be_bytes());
        out[8..16].copy_from_slice(&self.amount.to_be_bytes());
        out[16..20].copy_from_slice(&self.nonce.to_be_bytes());
        out
    }

    pub fn from_bytes(b: &[u8; TRANSFER_BYTES]) -> Self {
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut amount = [0u8; 8];
        amount.copy_from_slice(&b[8..16]);
        Transfer { from: u32_at(0), to: u32_at(4), amount: u64::from_be_bytes(amount), nonce: u32_at(16) }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("batch holds {got} transfers but shape {shape} allows at most {max}")]
    TooManyTransfers { got: usize, max: usize, shape: Shape },
    #[error("batch is {got} bytes but shape {shape} batches are exactly {want} bytes")]
    Length { got: usize, want: usize, shape: Shape },
}

/// Encodes up to K transfers, padding with zero records.
pub fn encode(shape: Shape, transfers: &[Transfer]) -> Result<Vec<u8>, BatchError> {
    if transfers.len() > shape.k {
        return Err(BatchError::TooManyTransfers { got: transfers.len(), max: shape.k, shape });
    }
    let mut out = vec![0u8; shape.batch_bytes()];
    for (i, t) in transfers.iter().enumerate() {
        out[i * TRANSFER_BYTES..(i + 1) * TRANSFER_BYTES].copy_from_slice(&t.to_bytes());
    }
    Ok(out)
}

/// Decodes exactly K records (padding included).
pub fn decode(shape: Shape, bytes: &[u8]) -> Result<Vec<Transfer>, BatchError> {
    if bytes.len() != shape.batch_bytes() {
        return Err(BatchError::Length { got: bytes.len(), want: shape.batch_bytes(), shape });
    }
    Ok(bytes
        .chunks_exact(TRANSFER_BYTES)
        .map(|c| {
            let mut rec = [0u8; TRANSFER_BYTES];
            rec.copy_from_slice(c);
            Transfer::from_bytes(&rec)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_with_padding() {
        let shape = Shape { k: 3, d: 8 };
        let ts = [Transfer { from: 1, to: 0x0102_0304, amount: u64::MAX, nonce: 7 }];
        let bytes = encode(shape, &ts).unwrap();
        assert_eq!(bytes.len(), 60);
        assert_eq!(&bytes[4..8], &[1, 2, 3, 4]);
        let back = decode(shape, &bytes).unwrap();
        assert_eq!(back[0], ts[0]);
        assert_eq!(back[1], Transfer::default());
        assert_eq!(back[2], Transfer::default());
    }

    #[test]
    fn rejects_wrong_length_and_overfull() {
        let shape = Shape { k: 2, d: 4 };
        assert!(matches!(decode(shape, &[0u8; 39]), Err(BatchError::Length { got: 39, want: 40, .. })));
        assert!(matches!(
            encode(shape, &[Transfer::default(); 3]),
            Err(BatchError::TooManyTransfers { got: 3, max: 2, .. })
        ));
    }
}
