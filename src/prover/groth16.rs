//! The built-in backend: bellman Groth16 over BLS12-381 with the batch
//! circuit.

use std::collections::BTreeMap;
use std::sync::Arc;

use bls12_381::Bls12;

use super::{ProverBackend, ProverError};
use crate::circuit::encoding::{proof_from_bytes, proof_to_bytes};
use crate::circuit::keys::{Keys, VerifierKey};
use crate::circuit::public::PublicInputs;
use crate::circuit::{BatchCircuit, Shape};
use crate::wire::proof::{ProofOutput, ProofRequest, ShapeKey};

/// Proves and verifies the shapes it holds parameters for.
pub struct Groth16Backend {
    keys: BTreeMap<Shape, Arc<Keys>>,
}

impl Groth16Backend {
    pub fn new(keys: impl IntoIterator<Item = Keys>) -> Self {
        Groth16Backend { keys: keys.into_iter().map(|k| (k.shape, Arc::new(k))).collect() }
    }

    fn keys(&self, shape: Shape) -> Result<&Keys, ProverError> {
        self.keys.get(&shape).map(|k| k.as_ref()).ok_or(ProverError::UnknownShape(shape))
    }
}

impl ProverBackend for Groth16Backend {
    fn name(&self) -> &'static str {
        "groth16-bls12-381"
    }

    fn shapes(&self) -> Vec<ShapeKey> {
        self.keys
            .values()
            .map(|k| ShapeKey { shape: k.shape, vk_hash: format!("0x{}", hex::encode(k.vk_hash)) })
            .collect()
    }

    fn prove(&self, req: &ProofRequest) -> Result<ProofOutput, ProverError> {
        let shape = req.witness.shape;
        let keys = self.keys(shape)?;
        let public = req.public_inputs();
        let circuit = BatchCircuit::new(shape, Some(req.witness.clone()), Some(public));
        let proof = ::groth16::create_random_proof(circuit, &keys.params, &mut rand::rng())?;
        // bellman proves unsatisfied witnesses without complaint; checking
        // here (a few milliseconds) keeps a bad witness from ever leaving
        // the prover as a proof the aggregator would count against it.
        ::groth16::verify_proof(&keys.pvk, &proof, &public.to_vec()).map_err(|_| ProverError::UnsatisfiedWitness)?;
        Ok(ProofOutput { proof: proof_to_bytes(&proof), public })
    }

    fn verify(&self, shape: Shape, proof: &[u8], public: &PublicInputs) -> Result<(), ProverError> {
        verify_with(&self.keys(shape)?.pvk, proof, public)
    }
}

fn verify_with(
    pvk: &::groth16::PreparedVerifyingKey<Bls12>,
    proof: &[u8],
    public: &PublicInputs,
) -> Result<(), ProverError> {
    let proof = proof_from_bytes(proof)?;
    ::groth16::verify_proof(pvk, &proof, &public.to_vec()).map_err(|e| ProverError::Invalid(format!("{e:?}")))
}

/// Verification with verifying keys only, as the aggregator checks every
/// proof it receives without holding proving parameters.
pub struct Groth16Verifier {
    keys: BTreeMap<Shape, VerifierKey>,
}

impl Groth16Verifier {
    pub fn new(keys: impl IntoIterator<Item = VerifierKey>) -> Self {
        Groth16Verifier { keys: keys.into_iter().map(|k| (k.shape, k)).collect() }
    }

    pub fn vk_hash(&self, shape: Shape) -> Option<[u8; 32]> {
        self.keys.get(&shape).map(|k| k.vk_hash)
    }

    pub fn verify(&self, shape: Shape, proof: &[u8], public: &PublicInputs) -> Result<(), ProverError> {
        let key = self.keys.get(&shape).ok_or(ProverError::UnknownShape(shape))?;
        verify_with(&key.pvk, proof, public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::batch::encode;
    use crate::circuit::encoding::PROOF_BYTES;
    use crate::circuit::executor::apply_batch;
    use crate::circuit::keys::{cached_test_keys, test_params_dir};
    use crate::circuit::public::domain;
    use crate::circuit::{Account, StateTree, Transfer};
    use ff::Field;

    fn request() -> ProofRequest {
        let shape = Shape::TEST;
        let mut state = StateTree::with_accounts(shape.d, [(1, Account { balance: 50, nonce: 0 })]);
        let batch = encode(shape, &[Transfer { from: 1, to: 2, amount: 20, nonce: 0 }]).unwrap();
        let (witness, _) = apply_batch(&mut state, shape, &batch).unwrap();
        ProofRequest { witness, domain: domain(31337, &[7; 20]), batch_num: 1, miner: [9; 20] }
    }

    #[test]
    fn proves_and_verifies_and_rejects_tampering() {
        let backend = Groth16Backend::new([cached_test_keys(Shape::TEST).unwrap()]);
        let req = request();
        let out = backend.prove(&req).unwrap();
        assert_eq!(out.proof.len(), PROOF_BYTES);
        assert_eq!(out.public, req.public_inputs());
        backend.verify(Shape::TEST, &out.proof, &out.public).unwrap();

        // The verifier that holds only the VK agrees.
        let verifier = Groth16Verifier::new([VerifierKey::load(&test_params_dir(), Shape::TEST).unwrap()]);
        verifier.verify(Shape::TEST, &out.proof, &out.public).unwrap();

        // Another miner cannot reuse it.
        let mut stolen = out.public;
        stolen.miner = crate::circuit::public::miner(&[8; 20]);
        assert!(matches!(verifier.verify(Shape::TEST, &out.proof, &stolen), Err(ProverError::Invalid(_))));
        // Nor for another batch number or rollup.
        let mut p = out.public;
        p.batch_num += 1;
        assert!(verifier.verify(Shape::TEST, &out.proof, &p).is_err());
        let mut p = out.public;
        p.domain += bls12_381::Scalar::ONE;
        assert!(verifier.verify(Shape::TEST, &out.proof, &p).is_err());

        // Swapping A and C leaves valid points but an invalid proof.
        let mut swapped = out.proof.clone();
        swapped[..128].copy_from_slice(&out.proof[384..]);
        swapped[384..].copy_from_slice(&out.proof[..128]);
        assert!(matches!(verifier.verify(Shape::TEST, &swapped, &out.public), Err(ProverError::Invalid(_))));
        // Garbage bytes are a decoding error, not a panic.
        assert!(matches!(
            verifier.verify(Shape::TEST, &[1u8; PROOF_BYTES], &out.public),
            Err(ProverError::Encoding(_))
        ));
        assert!(matches!(
            verifier.verify(Shape { k: 9, d: 9 }, &out.proof, &out.public),
            Err(ProverError::UnknownShape(_))
        ));
    }

    #[test]
    fn unsatisfied_witness_is_refused_by_the_prover() {
        let backend = Groth16Backend::new([cached_test_keys(Shape::TEST).unwrap()]);
        let mut req = request();
        req.witness.new_root += bls12_381::Scalar::ONE;
        assert!(matches!(backend.prove(&req), Err(ProverError::UnsatisfiedWitness)));
    }

    #[tokio::test]
    async fn pool_proves_off_the_runtime() {
        let backend: Arc<dyn ProverBackend> = Arc::new(Groth16Backend::new([cached_test_keys(Shape::TEST).unwrap()]));
        let pool = crate::prover::ProvingPool::new(backend, 1).unwrap();
        let out = pool.prove(request()).await.unwrap();
        pool.verify(Shape::TEST, out.proof.clone(), out.public).await.unwrap();
    }
}
