//! Groth16 keys per circuit shape: generation, the on-disk format and a
//! per-shape cache.
//!
//! Files in a key directory, for shape (K, D):
//! * `groth16-k{K}-d{D}.params`: header, then bellman's parameter encoding
//!   (what a prover needs).
//! * `groth16-k{K}-d{D}.vk.json`: shape, circuit version, VK hash and the
//!   EIP-2537 verifying key (what the aggregator and the contract deployer
//!   need).
//!
//! The header is `b"ZKPOWPRM"`, then big-endian u32s `format`,
//! `circuit_version`, `K`, `D`, then the 32-byte VK hash. Loading refuses a
//! file whose header does not match the shape asked for or this build's
//! circuit version, and a file whose VK does not hash to the header's value.
//! Only the benchmark asks for other versions (1 and 2, the circuits the
//! current one replaced), through [`Keys::load_or_setup_version`].
//!
//! `zkpow setup` is a single-party setup: whoever ran it knows the toxic
//! waste and can forge proofs. It is for development. Parameters from an
//! external ceremony load through the same format.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bls12_381::Bls12;
use groth16::{Parameters, PreparedVerifyingKey, VerifyingKey};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::batch_circuit::BatchCircuit;
use super::encoding::{self, EncodingError};
use super::{Shape, Version, CIRCUIT_VERSION};

const MAGIC: &[u8; 8] = b"ZKPOWPRM";
const FORMAT: u32 = 1;
const HEADER_BYTES: usize = 8 + 4 * 4 + 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a zkpow parameter file (bad magic)")]
    Magic { path: PathBuf },
    #[error("{path}: file format {found}, this build reads format {FORMAT}")]
    Format { path: PathBuf, found: u32 },
    #[error(
        "{path}: made for circuit version {found}, this build has circuit version {want}; run `zkpow setup` again"
    )]
    CircuitVersion { path: PathBuf, found: u32, want: u32 },
    #[error("{path}: made for shape {found}, wanted shape {want}")]
    ShapeMismatch { path: PathBuf, found: Shape, want: Shape },
    #[error("{path}: verifying key hashes to {actual} but the header says {header}; the file is corrupt or was tampered with")]
    VkHash { path: PathBuf, header: String, actual: String },
    #[error("{path}: {msg}")]
    Json { path: PathBuf, msg: String },
    #[error("parameter generation failed: {0}")]
    Synthesis(#[from] bellman::SynthesisError),
    #[error(transparent)]
    Encoding(#[from] EncodingError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.to_path_buf(), source }
}

/// Proving parameters and the derived verifying key of one shape.
pub struct Keys {
    pub shape: Shape,
    /// The circuit the parameters were made for ([`Version::CURRENT`] unless
    /// loaded with [`Keys::load_or_setup_version`]).
    pub version: Version,
    pub params: Parameters<Bls12>,
    pub pvk: PreparedVerifyingKey<Bls12>,
    pub vk_hash: [u8; 32],
}

/// The verifying key alone, as the aggregator and the deployer use it.
pub struct VerifierKey {
    pub shape: Shape,
    pub vk: VerifyingKey<Bls12>,
    pub pvk: PreparedVerifyingKey<Bls12>,
    pub vk_hash: [u8; 32],
}

/// The JSON form of a verifying key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VkFile {
    pub shape: Shape,
    pub circuit_version: u32,
    /// keccak256 of `vk`, 0x-prefixed.
    pub vk_hash: String,
    /// EIP-2537 encoding, 0x-prefixed.
    pub vk: String,
}

pub fn params_path(dir: &Path, shape: Shape) -> PathBuf {
    dir.join(format!("groth16-k{}-d{}.params", shape.k, shape.d))
}

pub fn vk_path(dir: &Path, shape: Shape) -> PathBuf {
    dir.join(format!("groth16-k{}-d{}.vk.json", shape.k, shape.d))
}

impl Keys {
    /// A fresh single-party setup. Development only.
    pub fn setup<R: Rng>(shape: Shape, rng: &mut R) -> Result<Keys, KeyError> {
        Keys::setup_version(shape, Version::CURRENT, rng)
    }

    fn setup_version<R: Rng>(shape: Shape, version: Version, rng: &mut R) -> Result<Keys, KeyError> {
        let circuit = BatchCircuit { shape, version, witness: None, public: None };
        let params = groth16::generate_random_parameters::<Bls12, _, _>(circuit, rng)?;
        Keys::from_params(shape, version, params)
    }

    fn from_params(shape: Shape, version: Version, params: Parameters<Bls12>) -> Result<Keys, KeyError> {
        let vk_hash = encoding::vk_hash(&params.vk)?;
        let pvk = groth16::prepare_verifying_key(&params.vk);
        Ok(Keys { shape, version, params, pvk, vk_hash })
    }

    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey {
            shape: self.shape,
            vk: self.params.vk.clone(),
            pvk: groth16::prepare_verifying_key(&self.params.vk),
            vk_hash: self.vk_hash,
        }
    }

    /// Writes both files atomically (temporary file, then rename) so a crash
    /// or a concurrent reader never sees half a file.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), KeyError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let params_file = params_path(dir, self.shape);
        let tmp = params_file.with_extension("params.tmp");
        {
            let f = File::create(&tmp).map_err(io(&tmp))?;
            let mut w = BufWriter::new(f);
            w.write_all(&header(self.shape, self.version, &self.vk_hash)).map_err(io(&tmp))?;
            self.params.write(&mut w).map_err(io(&tmp))?;
            w.flush().map_err(io(&tmp))?;
            w.get_ref().sync_all().map_err(io(&tmp))?;
        }
        fs::rename(&tmp, &params_file).map_err(io(&params_file))?;

        let vk_file = vk_path(dir, self.shape);
        let json = VkFile {
            shape: self.shape,
            circuit_version: self.version.number(),
            vk_hash: format!("0x{}", hex::encode(self.vk_hash)),
            vk: format!("0x{}", hex::encode(encoding::vk_to_bytes(&self.params.vk)?)),
        };
        let tmp = vk_file.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&json)
            .map_err(|e| KeyError::Json { path: tmp.clone(), msg: e.to_string() })?;
        fs::write(&tmp, text + "\n").map_err(io(&tmp))?;
        fs::rename(&tmp, &vk_file).map_err(io(&vk_file))?;
        Ok((params_file, vk_file))
    }

    /// Loads the parameters of `shape` from `dir`, checking the header and
    /// the VK hash. Points are not subgroup-checked here (that takes minutes
    /// for large shapes); the VK hash ties the file to the key the contract
    /// was deployed with, and a wrong proving key only yields proofs that
    /// fail verification.
    pub fn load(dir: &Path, shape: Shape) -> Result<Keys, KeyError> {
        Keys::load_version(dir, shape, Version::CURRENT)
    }

    fn load_version(dir: &Path, shape: Shape, version: Version) -> Result<Keys, KeyError> {
        let path = params_path(dir, shape);
        let f = File::open(&path).map_err(io(&path))?;
        let mut r = BufReader::with_capacity(1 << 20, f);
        let mut head = [0u8; HEADER_BYTES];
        r.read_exact(&mut head).map_err(io(&path))?;
        let header_hash = check_header(&path, &head, shape, version)?;
        let params = Parameters::<Bls12>::read(&mut r, false).map_err(io(&path))?;
        let keys = Keys::from_params(shape, version, params)?;
        if keys.vk_hash != header_hash {
            return Err(KeyError::VkHash {
                path,
                header: format!("0x{}", hex::encode(header_hash)),
                actual: format!("0x{}", hex::encode(keys.vk_hash)),
            });
        }
        Ok(keys)
    }

    /// Loads the shape's parameters, generating and writing them first if
    /// they do not exist. An exclusive lock on a sibling lock file makes
    /// concurrent callers (parallel test processes, several provers on one
    /// host) generate each shape once. Parameters of another circuit version
    /// are refused, not replaced: a deployed verifier may still hold their key.
    pub fn load_or_setup<R: Rng>(dir: &Path, shape: Shape, rng: &mut R) -> Result<Keys, KeyError> {
        Keys::cache(dir, shape, Version::CURRENT, rng, Stale::Refuse)
    }

    /// [`Keys::load_or_setup`] for a given circuit version: the benchmark
    /// keeps older versions' parameters (in a directory of their own per
    /// version, since the file names do not carry the version) to measure
    /// the old circuits.
    pub fn load_or_setup_version<R: Rng>(
        dir: &Path,
        shape: Shape,
        version: Version,
        rng: &mut R,
    ) -> Result<Keys, KeyError> {
        Keys::cache(dir, shape, version, rng, Stale::Refuse)
    }

    fn cache<R: Rng>(dir: &Path, shape: Shape, version: Version, rng: &mut R, stale: Stale) -> Result<Keys, KeyError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join(format!(".groth16-k{}-d{}.lock", shape.k, shape.d));
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io(&lock_path))?;
        lock.lock().map_err(io(&lock_path))?;
        let loaded = params_path(dir, shape).exists().then(|| Keys::load_version(dir, shape, version));
        let result = match loaded {
            Some(Err(KeyError::CircuitVersion { found, .. })) if stale == Stale::Replace => {
                tracing::warn!(%shape, dir = %dir.display(), found, "cached Groth16 parameters are for another circuit version: replacing them");
                Keys::setup_and_write(dir, shape, version, rng)
            }
            Some(loaded) => loaded,
            None => {
                tracing::warn!(%shape, dir = %dir.display(), "no Groth16 parameters for this shape: running a single-party setup (development only)");
                Keys::setup_and_write(dir, shape, version, rng)
            }
        };
        drop(lock);
        result
    }

    fn setup_and_write<R: Rng>(dir: &Path, shape: Shape, version: Version, rng: &mut R) -> Result<Keys, KeyError> {
        let keys = Keys::setup_version(shape, version, rng)?;
        keys.write(dir)?;
        Ok(keys)
    }
}

impl VerifierKey {
    pub fn load(dir: &Path, shape: Shape) -> Result<VerifierKey, KeyError> {
        let path = vk_path(dir, shape);
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        let file: VkFile =
            serde_json::from_str(&text).map_err(|e| KeyError::Json { path: path.clone(), msg: e.to_string() })?;
        VerifierKey::from_file(&path, shape, &file)
    }

    pub fn from_file(path: &Path, shape: Shape, file: &VkFile) -> Result<VerifierKey, KeyError> {
        let path = path.to_path_buf();
        if file.circuit_version != CIRCUIT_VERSION {
            return Err(KeyError::CircuitVersion { path, found: file.circuit_version, want: CIRCUIT_VERSION });
        }
        if file.shape != shape {
            return Err(KeyError::ShapeMismatch { path, found: file.shape, want: shape });
        }
        let json_err = |msg: String| KeyError::Json { path: path.clone(), msg };
        let bytes = hex::decode(file.vk.trim_start_matches("0x")).map_err(|e| json_err(format!("vk: {e}")))?;
        let vk = vk_from_bytes(&bytes)?;
        let vk_hash = encoding::vk_hash(&vk)?;
        let declared = file.vk_hash.trim_start_matches("0x").to_lowercase();
        if hex::encode(vk_hash) != declared {
            return Err(KeyError::VkHash {
                path,
                header: file.vk_hash.clone(),
                actual: format!("0x{}", hex::encode(vk_hash)),
            });
        }
        Ok(VerifierKey { shape, pvk: groth16::prepare_verifying_key(&vk), vk, vk_hash })
    }
}

pub fn vk_from_bytes(b: &[u8]) -> Result<VerifyingKey<Bls12>, EncodingError> {
    use encoding::{g1_from_bytes, g2_from_bytes, G1_BYTES, G2_BYTES, VK_BYTES};
    if b.len() != VK_BYTES {
        return Err(EncodingError::Length { want: VK_BYTES, got: b.len() });
    }
    let alpha = g1_from_bytes(&b[..G1_BYTES], "vk.alpha")?;
    let mut off = G1_BYTES;
    let mut g2 = |what| {
        let p = g2_from_bytes(&b[off..off + G2_BYTES], what);
        off += G2_BYTES;
        p
    };
    let beta = g2("vk.beta")?;
    let gamma = g2("vk.gamma")?;
    let delta = g2("vk.delta")?;
    let ic_start = G1_BYTES + 3 * G2_BYTES;
    let ic = b[ic_start..].chunks_exact(G1_BYTES).map(|c| g1_from_bytes(c, "vk.ic")).collect::<Result<Vec<_>, _>>()?;
    // Only the fields the verifier uses are meaningful; beta_g1 and delta_g1
    // are prover-side and are not part of the contract's key.
    Ok(VerifyingKey {
        alpha_g1: alpha,
        beta_g1: bls12_381::G1Affine::identity(),
        beta_g2: beta,
        gamma_g2: gamma,
        delta_g1: bls12_381::G1Affine::identity(),
        delta_g2: delta,
        ic,
    })
}

/// What [`Keys::cache`] does with a cached file made for another circuit
/// version.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stale {
    Refuse,
    /// The test cache: its parameters only ever prove test batches.
    Replace,
}

fn header(shape: Shape, version: Version, vk_hash: &[u8; 32]) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT.to_be_bytes());
    h[12..16].copy_from_slice(&version.number().to_be_bytes());
    h[16..20].copy_from_slice(&(shape.k as u32).to_be_bytes());
    h[20..24].copy_from_slice(&(shape.d as u32).to_be_bytes());
    h[24..56].copy_from_slice(vk_hash);
    h
}

fn check_header(path: &Path, h: &[u8; HEADER_BYTES], want: Shape, version: Version) -> Result<[u8; 32], KeyError> {
    let path = path.to_path_buf();
    if &h[..8] != MAGIC {
        return Err(KeyError::Magic { path });
    }
    let u32_at = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let format = u32_at(8);
    if format != FORMAT {
        return Err(KeyError::Format { path, found: format });
    }
    let found = u32_at(12);
    if found != version.number() {
        return Err(KeyError::CircuitVersion { path, found, want: version.number() });
    }
    let found = Shape { k: u32_at(16) as usize, d: u32_at(20) as usize };
    if found != want {
        return Err(KeyError::ShapeMismatch { path, found, want });
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&h[24..56]);
    Ok(hash)
}

/// Where tests and benchmarks cache parameters: `ZKPOW_TEST_PARAMS_DIR`, or
/// `target/zkpow-params` of this crate.
pub fn test_params_dir() -> PathBuf {
    std::env::var_os("ZKPOW_TEST_PARAMS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("zkpow-params"))
}

/// Keys for `shape` from the shared test cache, generated once per machine
/// and circuit version (a cache left by an older build is replaced).
pub fn cached_test_keys(shape: Shape) -> Result<Keys, KeyError> {
    Keys::cache(&test_params_dir(), shape, Version::CURRENT, &mut rand::rng(), Stale::Replace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_params_to(dir: &Path, as_shape: Shape) -> PathBuf {
        let keys_dir = test_params_dir();
        cached_test_keys(Shape::TEST).unwrap();
        let dst = params_path(dir, as_shape);
        fs::copy(params_path(&keys_dir, Shape::TEST), &dst).unwrap();
        dst
    }

    fn patch(path: &Path, offset: usize, bytes: &[u8]) {
        let mut data = fs::read(path).unwrap();
        data[offset..offset + bytes.len()].copy_from_slice(bytes);
        fs::write(path, data).unwrap();
    }

    #[test]
    fn cached_keys_load_and_match_vk_file() {
        let keys = cached_test_keys(Shape::TEST).unwrap();
        let vk = VerifierKey::load(&test_params_dir(), Shape::TEST).unwrap();
        assert_eq!(vk.vk_hash, keys.vk_hash);
        assert_eq!(keys.params.vk.ic.len(), 8);
    }

    #[test]
    fn refuses_wrong_shape() {
        let dir = tempfile::tempdir().unwrap();
        let other = Shape { k: 1, d: 4 };
        copy_params_to(dir.path(), other);
        let err = Keys::load(dir.path(), other).err().unwrap();
        assert!(
            matches!(err, KeyError::ShapeMismatch { found, want, .. } if found == Shape::TEST && want == other),
            "{err}"
        );
    }

    #[test]
    fn refuses_other_circuit_version_bad_magic_and_bad_hash() {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_params_to(dir.path(), Shape::TEST);
        patch(&path, 12, &(CIRCUIT_VERSION + 1).to_be_bytes());
        let err = Keys::load(dir.path(), Shape::TEST).err().unwrap();
        assert!(matches!(err, KeyError::CircuitVersion { found, .. } if found == CIRCUIT_VERSION + 1), "{err}");
        assert!(err.to_string().contains("zkpow setup"));

        let path = copy_params_to(dir.path(), Shape::TEST);
        patch(&path, 24, &[0xAB; 4]);
        let err = Keys::load(dir.path(), Shape::TEST).err().unwrap();
        assert!(matches!(err, KeyError::VkHash { .. }), "{err}");

        let path = copy_params_to(dir.path(), Shape::TEST);
        patch(&path, 0, b"NOTZKPOW");
        assert!(matches!(Keys::load(dir.path(), Shape::TEST), Err(KeyError::Magic { .. })));
    }

    #[test]
    fn vk_file_with_wrong_hash_or_shape_is_refused() {
        let dir = test_params_dir();
        cached_test_keys(Shape::TEST).unwrap();
        let text = fs::read_to_string(vk_path(&dir, Shape::TEST)).unwrap();
        let mut file: VkFile = serde_json::from_str(&text).unwrap();
        let p = Path::new("vk.json");
        assert!(VerifierKey::from_file(p, Shape::TEST, &file).is_ok());
        assert!(matches!(VerifierKey::from_file(p, Shape { k: 3, d: 4 }, &file), Err(KeyError::ShapeMismatch { .. })));
        for n in [1, 2] {
            let mut old = file.clone();
            old.circuit_version = n;
            assert!(
                matches!(VerifierKey::from_file(p, Shape::TEST, &old), Err(KeyError::CircuitVersion { found, .. }) if found == n)
            );
        }
        file.vk_hash = format!("0x{}", "00".repeat(32));
        assert!(matches!(VerifierKey::from_file(p, Shape::TEST, &file), Err(KeyError::VkHash { .. })));
    }

    #[test]
    fn older_versions_keys_are_refused_and_replaced_only_in_the_test_cache() {
        assert_eq!(CIRCUIT_VERSION, 3);
        for old in [Version::V1, Version::V2] {
            // Real parameters of the old version (a small shape keeps the
            // setup short). Depth 3: the version-2 and -3 trees have a 4-ary
            // level and a binary top level.
            let dir = tempfile::tempdir().unwrap();
            let shape = Shape { k: 1, d: 3 };
            let n = old.number();
            let keys = Keys::load_or_setup_version(dir.path(), shape, old, &mut rand::rng()).unwrap();
            assert_eq!(keys.version, old);
            let err = Keys::load(dir.path(), shape).err().unwrap();
            assert!(matches!(err, KeyError::CircuitVersion { found, want: 3, .. } if found == n), "{err}");
            let err = VerifierKey::load(dir.path(), shape).err().unwrap();
            assert!(matches!(err, KeyError::CircuitVersion { found, want: 3, .. } if found == n), "{err}");
            // A node or the devnet never replaces them: a deployed verifier
            // may still hold their key.
            let err = Keys::load_or_setup(dir.path(), shape, &mut rand::rng()).err().unwrap();
            assert!(matches!(err, KeyError::CircuitVersion { .. }), "{err}");
            let again = Keys::load_or_setup_version(dir.path(), shape, old, &mut rand::rng()).unwrap();
            assert_eq!(again.vk_hash, keys.vk_hash);
            // The test cache does.
            let current = Keys::cache(dir.path(), shape, Version::CURRENT, &mut rand::rng(), Stale::Replace).unwrap();
            assert_eq!(current.version, Version::CURRENT);
            assert_ne!(current.vk_hash, keys.vk_hash);
            assert_eq!(Keys::load(dir.path(), shape).unwrap().vk_hash, current.vk_hash);
            assert_eq!(VerifierKey::load(dir.path(), shape).unwrap().vk_hash, current.vk_hash);
        }
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = Keys::load(dir.path(), Shape::TEST).err().unwrap();
        assert!(err.to_string().contains("groth16-k2-d4.params"), "{err}");
    }
}
