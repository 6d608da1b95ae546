//! The public inputs of a batch proof, in the order the verifier contract
//! passes them: domain, batch_num, old_root, new_root, data_hash_hi,
//! data_hash_lo, miner.

use ff::PrimeField;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sha3::Keccak256;

use super::Fr;

pub const NUM_PUBLIC_INPUTS: usize = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicInputs {
    #[serde(with = "fr_hex")]
    pub domain: Fr,
    pub batch_num: u64,
    #[serde(with = "fr_hex")]
    pub old_root: Fr,
    #[serde(with = "fr_hex")]
    pub new_root: Fr,
    #[serde(with = "fr_hex")]
    pub data_hash_hi: Fr,
    #[serde(with = "fr_hex")]
    pub data_hash_lo: Fr,
    #[serde(with = "fr_hex")]
    pub miner: Fr,
}

impl PublicInputs {
    pub fn to_vec(&self) -> [Fr; NUM_PUBLIC_INPUTS] {
        [
            self.domain,
            Fr::from(self.batch_num),
            self.old_root,
            self.new_root,
            self.data_hash_hi,
            self.data_hash_lo,
            self.miner,
        ]
    }

    /// The inputs as the contract sees them: 32-byte big-endian words.
    pub fn to_be_words(&self) -> [[u8; 32]; NUM_PUBLIC_INPUTS] {
        self.to_vec().map(|f| fr_to_be(&f))
    }
}

/// `keccak256(uint256(chain_id) ‖ rollup_address) >> 8`: ties a proof to one
/// rollup contract on one chain; 248 bits always fit the scalar field.
pub fn domain(chain_id: u64, rollup: &[u8; 20]) -> Fr {
    let mut h = Keccak256::new();
    let mut id = [0u8; 32];
    id[24..].copy_from_slice(&chain_id.to_be_bytes());
    h.update(id);
    h.update(rollup);
    let digest: [u8; 32] = h.finalize().into();
    let mut shifted = [0u8; 32];
    shifted[1..].copy_from_slice(&digest[..31]);
    fr_from_be(&shifted).expect("a 248-bit value is below the field modulus")
}

/// The submitting miner's address as a field element (160 bits).
pub fn miner(address: &[u8; 20]) -> Fr {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(address);
    fr_from_be(&w).expect("a 160-bit value is below the field modulus")
}

/// sha256 of the batch bytes split into its high and low 128 bits.
pub fn data_hash(batch: &[u8]) -> (Fr, Fr) {
    let digest: [u8; 32] = Sha256::digest(batch).into();
    let mut hi = [0u8; 32];
    let mut lo = [0u8; 32];
    hi[16..].copy_from_slice(&digest[..16]);
    lo[16..].copy_from_slice(&digest[16..]);
    (fr_from_be(&hi).expect("128 bits fit the field"), fr_from_be(&lo).expect("128 bits fit the field"))
}

pub fn fr_to_be(f: &Fr) -> [u8; 32] {
    let mut out = f.to_repr();
    out.reverse();
    out
}

/// `None` when the value is not below the field modulus.
pub fn fr_from_be(bytes: &[u8; 32]) -> Option<Fr> {
    let mut le = *bytes;
    le.reverse();
    Option::from(Fr::from_repr(le))
}

pub fn fr_to_hex(f: &Fr) -> String {
    to_0x_hex(&fr_to_be(f))
}

/// `0x` and the lower-case hex of `bytes`, built in one allocation. Every
/// witness, proof and public input crosses the prover protocol in this
/// form; `format!` over `hex::encode` (a char iterator) was a tenth of the
/// dispatcher benchmark's CPU time per task (docs/BENCHMARKS.md).
pub fn to_0x_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 + 2 * bytes.len());
    out.push_str("0x");
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

pub fn fr_from_hex(s: &str) -> Result<Fr, String> {
    let raw = s.strip_prefix("0x").unwrap_or(s);
    if raw.len() != 64 {
        return Err(format!("field element {s:?}: expected 32 bytes of hex"));
    }
    // Straight into the array: no intermediate vector per element.
    let mut arr = [0u8; 32];
    hex::decode_to_slice(raw, &mut arr).map_err(|e| format!("field element {s:?}: {e}"))?;
    fr_from_be(&arr).ok_or_else(|| format!("field element {s:?} is not below the BLS12-381 scalar modulus"))
}

/// serde adapter: field elements as 0x-prefixed 32-byte big-endian hex.
pub mod fr_hex {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(f: &Fr, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fr_to_hex(f))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fr, D::Error> {
        let s = String::deserialize(d)?;
        fr_from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// serde adapter for vectors of field elements.
pub mod fr_hex_vec {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Fr], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(fr_to_hex))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Fr>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter().map(|s| fr_from_hex(s).map_err(serde::de::Error::custom)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_forms_match_the_hex_crate_and_refuse_wrong_lengths() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(to_0x_hex(&bytes), format!("0x{}", hex::encode(&bytes)));
        assert_eq!(to_0x_hex(&[]), "0x");
        let f = Fr::from(0xdead_beefu64);
        assert_eq!(fr_from_hex(&fr_to_hex(&f)), Ok(f));
        assert_eq!(fr_from_hex(fr_to_hex(&f).trim_start_matches("0x")), Ok(f), "the prefix is optional");
        assert!(fr_from_hex("0x1234").is_err());
        assert!(fr_from_hex(&format!("0x{}", "0".repeat(66))).is_err());
        assert!(fr_from_hex(&format!("0x{}", "g".repeat(64))).is_err());
    }

    #[test]
    fn be_roundtrip_and_modulus_rejected() {
        let f = Fr::from(0x1234_5678u64);
        assert_eq!(fr_from_be(&fr_to_be(&f)), Some(f));
        assert_eq!(fr_to_be(&f)[28..], [0x12, 0x34, 0x56, 0x78]);
        assert_eq!(fr_from_be(&[0xff; 32]), None);
        assert!(fr_from_hex("0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001").is_err());
        assert!(fr_from_hex("0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000000").is_ok());
    }

    #[test]
    fn data_hash_splits_sha256() {
        let (hi, lo) = data_hash(b"abc");
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223 b00361a396177a9cb410ff61f20015ad
        assert_eq!(fr_to_hex(&hi), format!("0x{}ba7816bf8f01cfea414140de5dae2223", "0".repeat(32)));
        assert_eq!(fr_to_hex(&lo), format!("0x{}b00361a396177a9cb410ff61f20015ad", "0".repeat(32)));
    }

    #[test]
    fn domain_depends_on_chain_and_address() {
        let a = domain(1, &[1u8; 20]);
        assert_ne!(a, domain(2, &[1u8; 20]));
        assert_ne!(a, domain(1, &[2u8; 20]));
        assert_eq!(fr_to_be(&a)[0], 0, "domain is 248 bits");
    }
}
