//! What a prover is asked to prove and what it returns: a batch's witness
//! with the submission's inputs, a proof in the contract's encoding with
//! the inputs it proves, and the (shape, verifying key) pairs a prover
//! announces.

use serde::{Deserialize, Serialize};

use crate::circuit::public::{data_hash, fr_hex, PublicInputs};
use crate::circuit::{BatchWitness, Fr, Shape};

/// One batch to prove: the executor's witness plus the inputs that depend
/// on where the proof will be submitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofRequest {
    pub witness: BatchWitness,
    #[serde(with = "fr_hex")]
    pub domain: Fr,
    pub batch_num: u64,
    /// The submitting miner's address, 0x-prefixed hex.
    #[serde(with = "address_hex")]
    pub miner: [u8; 20],
}

impl ProofRequest {
    pub fn public_inputs(&self) -> PublicInputs {
        let (hi, lo) = data_hash(&self.witness.batch);
        PublicInputs {
            domain: self.domain,
            batch_num: self.batch_num,
            old_root: self.witness.old_root,
            new_root: self.witness.new_root,
            data_hash_hi: hi,
            data_hash_lo: lo,
            miner: crate::circuit::public::miner(&self.miner),
        }
    }
}

/// A proof in the contract's encoding with the inputs it proves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofOutput {
    #[serde(with = "crate::circuit::executor::hex_bytes")]
    pub proof: Vec<u8>,
    pub public: PublicInputs,
}

/// A shape a backend can prove, identified by its verifying key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapeKey {
    pub shape: Shape,
    /// keccak256 of the EIP-2537 verifying key, 0x-prefixed.
    pub vk_hash: String,
}

/// serde adapter: a 20-byte address as 0x-prefixed hex.
pub mod address_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(a: &[u8; 20], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(a)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 20], D::Error> {
        let s = String::deserialize(d)?;
        let bytes = hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)?;
        bytes.try_into().map_err(|_| serde::de::Error::custom("an address is 20 bytes"))
    }
}
