//! The transfer-rollup batch circuit, its gadgets, the account tree, the
//! canonical batch encoding, the native executor that produces witnesses,
//! the keys, and the EIP-2537 encodings of proofs and verifying keys.
//!
//! A circuit *shape* is (K transfers per batch, tree depth D); each shape has
//! its own Groth16 keys. The circuit *version* ([`Version`]) says how the
//! account tree is built and hashed; keys carry it in their header.

pub mod anemoi;
pub mod batch;
pub mod batch_circuit;
pub mod encoding;
pub mod executor;
pub mod gadgets;
pub mod keys;
pub mod poseidon;
pub mod public;
pub mod sample;
pub mod tree;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use batch::{Transfer, TRANSFER_BYTES};
pub use batch_circuit::BatchCircuit;
pub use bls12_381::Scalar as Fr;
pub use executor::{apply_batch, BatchWitness, TransferOutcome, TransferWitness};
pub use public::PublicInputs;
pub use tree::{Account, Arity, StateTree};

/// Bumped whenever the constraint system changes, so keys made for an older
/// circuit are refused instead of producing proofs that never verify.
pub const CIRCUIT_VERSION: u32 = Version::CURRENT.number();

/// The batch circuits this build can synthesize.
///
/// Only [`Version::CURRENT`] is proven and has keys that load; versions 1
/// and 2 stay buildable so that the benchmark measures the circuits it
/// replaced side by side with it, and so their constraint counts stay
/// checkable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// Binary tree hashed with the width-3 Poseidon; the balance alone is
    /// range-checked in an account opening.
    V1,
    /// 4-ary tree hashed with the width-5 Poseidon (one binary top level for
    /// an odd depth), constant S-boxes folded, and both halves of an account
    /// leaf (balance and nonce) decomposed into 64 bits.
    V2,
    /// Version 2's tree and openings, hashed with Anemoi in Jive mode: the
    /// 21-round `l = 2` instance for a 4-ary node, the 32-round `l = 1`
    /// instance for an odd depth's binary top level.
    V3,
}

impl Version {
    pub const CURRENT: Version = Version::V3;

    /// Every version this build can synthesize, oldest first.
    pub const ALL: [Version; 3] = [Version::V1, Version::V2, Version::V3];

    pub const fn number(self) -> u32 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    pub fn from_number(n: u32) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.number() == n)
    }

    pub fn arity(self) -> Arity {
        match self {
            Version::V1 => Arity::Two,
            Version::V2 | Version::V3 => Arity::Four,
        }
    }

    /// The permutation family the version's tree nodes are hashed with.
    pub fn node_hash(self) -> NodeHash {
        match self {
            Version::V1 | Version::V2 => NodeHash::Poseidon,
            Version::V3 => NodeHash::Anemoi,
        }
    }
}

/// How a version hashes the nodes of its tree (the instances per arity are in
/// [`tree::hash_children`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeHash {
    /// Poseidon, width 3 for two children and width 5 for four.
    Poseidon,
    /// Anemoi in Jive mode, `l = 1` for two children and `l = 2` for four.
    Anemoi,
}

/// Deepest tree a transfer's 32-bit account index can address.
pub const MAX_DEPTH: usize = 32;

/// A circuit shape: K transfers per batch and a tree of depth D (2^D accounts).
/// Serialized as the string "K,D", the form the CLI and config use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shape {
    pub k: usize,
    pub d: usize,
}

impl Shape {
    /// The smallest shape; the test suite proves with it.
    pub const TEST: Shape = Shape { k: 2, d: 4 };

    pub fn new(k: usize, d: usize) -> Result<Self, ShapeError> {
        if k == 0 || k > 1024 {
            return Err(ShapeError::Transfers(k));
        }
        if d == 0 || d > MAX_DEPTH {
            return Err(ShapeError::Depth(d));
        }
        Ok(Shape { k, d })
    }

    /// Length of a batch's canonical encoding in bytes.
    pub fn batch_bytes(&self) -> usize {
        self.k * TRANSFER_BYTES
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShapeError {
    #[error("shape must be written K,D (transfers per batch, tree depth), got {0:?}")]
    Syntax(String),
    #[error("transfers per batch K must be in 1..=1024, got {0}")]
    Transfers(usize),
    #[error("tree depth D must be in 1..={MAX_DEPTH}, got {0}")]
    Depth(usize),
}

impl FromStr for Shape {
    type Err = ShapeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || ShapeError::Syntax(s.to_string());
        let (k, d) = s.split_once(',').ok_or_else(syntax)?;
        let k = k.trim().parse().map_err(|_| syntax())?;
        let d = d.trim().parse().map_err(|_| syntax())?;
        Shape::new(k, d)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.k, self.d)
    }
}

impl Serialize for Shape {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_and_the_current_one_is_the_anemoi_4_ary_tree() {
        assert_eq!(CIRCUIT_VERSION, 3);
        assert_eq!(Version::CURRENT.arity(), Arity::Four);
        assert_eq!(Version::CURRENT.node_hash(), NodeHash::Anemoi);
        assert_eq!(Version::V2.arity(), Arity::Four);
        assert_eq!(Version::V2.node_hash(), NodeHash::Poseidon);
        assert_eq!(Version::V1.arity(), Arity::Two);
        for v in Version::ALL {
            assert_eq!(Version::from_number(v.number()), Some(v));
        }
        assert_eq!(Version::from_number(0), None);
        assert_eq!(Version::from_number(4), None);
    }

    #[test]
    fn shape_parses_and_rejects() {
        assert_eq!("4,8".parse::<Shape>(), Ok(Shape { k: 4, d: 8 }));
        assert_eq!(" 16 , 20 ".parse::<Shape>(), Ok(Shape { k: 16, d: 20 }));
        assert_eq!("4".parse::<Shape>(), Err(ShapeError::Syntax("4".into())));
        assert_eq!("0,8".parse::<Shape>(), Err(ShapeError::Transfers(0)));
        assert_eq!("4,33".parse::<Shape>(), Err(ShapeError::Depth(33)));
        assert_eq!(Shape { k: 4, d: 8 }.to_string().parse::<Shape>(), Ok(Shape { k: 4, d: 8 }));
    }
}
