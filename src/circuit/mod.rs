//! The transfer-rollup batch circuit, its gadgets and the native executor.
pub mod gadgets;
pub mod poseidon;
pub use bls12_381::Scalar as Fr;
