//! Proving backends: the `ProverBackend` trait a prover worker calls, the
//! built-in Groth16 backend, the bounded pool that keeps proving off the
//! async runtime, and how a prover process sizes its proofs and threads.
//! What goes in and comes out of a proof is in [`crate::wire::proof`].
pub mod groth16;
pub mod pool;
pub mod sizing;
pub mod worker;

pub use self::groth16::{Groth16Backend, Groth16Verifier};
pub use pool::ProvingPool;

use crate::circuit::public::PublicInputs;
use crate::circuit::Shape;
use crate::wire::proof::{ProofOutput, ProofRequest, ShapeKey};

#[derive(Debug, thiserror::Error)]
pub enum ProverError {
    #[error("no keys for shape {0}")]
    UnknownShape(Shape),
    #[error("witness is for shape {witness} but the request names shape {requested}")]
    ShapeMismatch { witness: Shape, requested: Shape },
    #[error("circuit synthesis failed: {0}")]
    Synthesis(#[from] bellman::SynthesisError),
    #[error("the witness does not satisfy the circuit (the proof does not verify)")]
    UnsatisfiedWitness,
    #[error("malformed proof: {0}")]
    Encoding(#[from] crate::circuit::encoding::EncodingError),
    #[error("invalid proof: {0}")]
    Invalid(String),
    #[error("proving pool is shut down")]
    PoolClosed,
}

/// What a prover worker proves with. Calls block: run them through a
/// [`ProvingPool`], never on an async executor thread.
pub trait ProverBackend: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn shapes(&self) -> Vec<ShapeKey>;
    fn prove(&self, req: &ProofRequest) -> Result<ProofOutput, ProverError>;
    fn verify(&self, shape: Shape, proof: &[u8], public: &PublicInputs) -> Result<(), ProverError>;
}
