//! The dispatcher's registry of prover workers: who they are, what they can
//! prove, when they were last seen, and the invalid-proof record that puts a
//! misbehaving prover in quarantine. A plain struct; time is passed in.
//!
//! A prover's identity is its registered name: registering again under the
//! same name returns the same prover id. That is what lets a worker that
//! crashed and restarted get its unfinished lease back, and what keeps a
//! quarantined prover from escaping by re-registering. Names must therefore
//! be unique per worker slot (the worker uses `host-slot` by default).

use std::collections::{HashMap, VecDeque};

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::wire::proof::ShapeKey;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Invalid proofs within `invalid_window_ms` that quarantine a prover.
    pub max_invalid: u32,
    pub invalid_window_ms: u64,
    /// How long a quarantined prover gets no tasks.
    pub quarantine_ms: u64,
    /// A prover not seen for this long counts as disconnected.
    pub connected_timeout_ms: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            max_invalid: 3,
            invalid_window_ms: 60 * 60 * 1000,
            quarantine_ms: 10 * 60 * 1000,
            connected_timeout_ms: 90_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("unknown prover {0}")]
    UnknownProver(String),
    #[error("invalid registration: {0}")]
    InvalidRegistration(String),
}

/// What the registry knows about one prover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProverInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    pub shapes: Vec<ShapeKey>,
    pub threads: u32,
    pub registered_at_ms: u64,
    pub last_seen_ms: u64,
    pub valid_proofs: u64,
    pub invalid_proofs: u64,
    /// Times of the current streak of invalid proofs inside the window.
    #[serde(skip)]
    recent_invalid: VecDeque<u64>,
    pub quarantined_until_ms: Option<u64>,
}

/// Result of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub prover_id: String,
    /// The name was known: same id, announcement updated.
    pub renewed: bool,
}

/// Result of recording an invalid proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidOutcome {
    /// Counted; `streak` invalid proofs inside the window so far.
    Counted { streak: u32 },
    /// This proof reached the limit: no tasks until the given time.
    Quarantined { until_ms: u64 },
}

const MAX_NAME_LEN: usize = 128;
const MAX_VERSION_LEN: usize = 64;
const MAX_SHAPES: usize = 64;

#[derive(Debug, Default)]
pub struct ProverRegistry {
    cfg: RegistryConfig,
    provers: HashMap<String, ProverInfo>,
    by_name: HashMap<String, String>,
}

impl ProverRegistry {
    pub fn new(cfg: RegistryConfig) -> Self {
        ProverRegistry { cfg, provers: HashMap::new(), by_name: HashMap::new() }
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.cfg
    }

    pub fn register(
        &mut self,
        name: &str,
        version: &str,
        shapes: Vec<ShapeKey>,
        threads: u32,
        now_ms: u64,
    ) -> Result<Registered, RegistryError> {
        let invalid = |msg: &str| Err(RegistryError::InvalidRegistration(msg.to_string()));
        let printable = |s: &str| s.chars().all(|c| !c.is_control());
        if name.trim().is_empty() || name.len() > MAX_NAME_LEN || !printable(name) {
            return invalid("name must be 1 to 128 printable characters");
        }
        if version.len() > MAX_VERSION_LEN || !printable(version) {
            return invalid("version must be at most 64 printable characters");
        }
        if shapes.is_empty() || shapes.len() > MAX_SHAPES {
            return invalid("announce between 1 and 64 shapes");
        }
        if shapes.iter().any(|s| !is_vk_hash(&s.vk_hash)) {
            return invalid("vk_hash must be 32 bytes of 0x-prefixed hex");
        }
        if threads == 0 {
            return invalid("threads must be at least 1");
        }
        if let Some(id) = self.by_name.get(name) {
            if let Some(p) = self.provers.get_mut(id) {
                p.version = version.to_string();
                p.shapes = shapes;
                p.threads = threads;
                p.last_seen_ms = now_ms;
                return Ok(Registered { prover_id: id.clone(), renewed: true });
            }
        }
        let id = loop {
            let bytes: [u8; 16] = rand::rng().random();
            let id = format!("prv_{}", hex::encode(bytes));
            if !self.provers.contains_key(&id) {
                break id;
            }
        };
        self.provers.insert(
            id.clone(),
            ProverInfo {
                id: id.clone(),
                name: name.to_string(),
                version: version.to_string(),
                shapes,
                threads,
                registered_at_ms: now_ms,
                last_seen_ms: now_ms,
                valid_proofs: 0,
                invalid_proofs: 0,
                recent_invalid: VecDeque::new(),
                quarantined_until_ms: None,
            },
        );
        self.by_name.insert(name.to_string(), id.clone());
        Ok(Registered { prover_id: id, renewed: false })
    }

    pub fn get(&self, id: &str) -> Option<&ProverInfo> {
        self.provers.get(id)
    }

    /// Notes that the prover called in; returns what is known about it.
    pub fn touch(&mut self, id: &str, now_ms: u64) -> Result<&ProverInfo, RegistryError> {
        let p = self.provers.get_mut(id).ok_or_else(|| RegistryError::UnknownProver(id.to_string()))?;
        p.last_seen_ms = p.last_seen_ms.max(now_ms);
        Ok(p)
    }

    /// A valid proof ends the prover's invalid streak.
    pub fn record_valid(&mut self, id: &str) -> Result<(), RegistryError> {
        let p = self.provers.get_mut(id).ok_or_else(|| RegistryError::UnknownProver(id.to_string()))?;
        p.valid_proofs += 1;
        p.recent_invalid.clear();
        Ok(())
    }

    /// Counts an invalid proof; the `max_invalid`-th within the window
    /// quarantines the prover.
    pub fn record_invalid(&mut self, id: &str, now_ms: u64) -> Result<InvalidOutcome, RegistryError> {
        let cfg = self.cfg.clone();
        let p = self.provers.get_mut(id).ok_or_else(|| RegistryError::UnknownProver(id.to_string()))?;
        p.invalid_proofs += 1;
        let window_start = now_ms.saturating_sub(cfg.invalid_window_ms);
        while p.recent_invalid.front().is_some_and(|&t| t < window_start) {
            p.recent_invalid.pop_front();
        }
        p.recent_invalid.push_back(now_ms);
        let streak = u32::try_from(p.recent_invalid.len()).unwrap_or(u32::MAX);
        if streak >= cfg.max_invalid.max(1) {
            let until_ms = now_ms.saturating_add(cfg.quarantine_ms);
            p.quarantined_until_ms = Some(until_ms);
            // A fresh streak after the quarantine ends.
            p.recent_invalid.clear();
            return Ok(InvalidOutcome::Quarantined { until_ms });
        }
        Ok(InvalidOutcome::Counted { streak })
    }

    /// When the prover's quarantine ends, if it is quarantined at `now_ms`.
    pub fn quarantined_until(&self, id: &str, now_ms: u64) -> Option<u64> {
        self.provers.get(id)?.quarantined_until_ms.filter(|&until| until > now_ms)
    }

    pub fn is_connected(&self, id: &str, now_ms: u64) -> bool {
        self.provers.get(id).is_some_and(|p| now_ms.saturating_sub(p.last_seen_ms) <= self.cfg.connected_timeout_ms)
    }

    pub fn connected_count(&self, now_ms: u64) -> usize {
        self.provers.keys().filter(|id| self.is_connected(id, now_ms)).count()
    }

    pub fn quarantined_count(&self, now_ms: u64) -> usize {
        self.provers.keys().filter(|id| self.quarantined_until(id, now_ms).is_some()).count()
    }

    pub fn list(&self) -> impl Iterator<Item = &ProverInfo> {
        self.provers.values()
    }
}

fn is_vk_hash(s: &str) -> bool {
    s.strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::Shape;

    pub const VK: &str = "0x00000000000000000000000000000000000000000000000000000000feedface";

    fn shapes() -> Vec<ShapeKey> {
        vec![ShapeKey { shape: Shape::TEST, vk_hash: VK.into() }]
    }

    fn registry() -> ProverRegistry {
        ProverRegistry::new(RegistryConfig {
            max_invalid: 3,
            invalid_window_ms: 1_000,
            quarantine_ms: 10_000,
            connected_timeout_ms: 500,
        })
    }

    #[test]
    fn register_gives_random_ids_and_renews_by_name() {
        let mut r = registry();
        let a = r.register("host-0", "0.1.0", shapes(), 8, 0).unwrap();
        let b = r.register("host-1", "0.1.0", shapes(), 8, 0).unwrap();
        assert!(!a.renewed && !b.renewed);
        assert_ne!(a.prover_id, b.prover_id);
        assert!(a.prover_id.starts_with("prv_") && a.prover_id.len() == 4 + 32);
        let again = r.register("host-0", "0.2.0", shapes(), 16, 5).unwrap();
        assert_eq!(again, Registered { prover_id: a.prover_id.clone(), renewed: true });
        let p = r.get(&a.prover_id).unwrap();
        assert_eq!((p.version.as_str(), p.threads, p.last_seen_ms), ("0.2.0", 16, 5));
    }

    #[test]
    fn register_validates() {
        let mut r = registry();
        let bad = |res: Result<Registered, RegistryError>| matches!(res, Err(RegistryError::InvalidRegistration(_)));
        assert!(bad(r.register("", "1", shapes(), 1, 0)));
        assert!(bad(r.register("a\nb", "1", shapes(), 1, 0)));
        assert!(bad(r.register(&"x".repeat(129), "1", shapes(), 1, 0)));
        assert!(bad(r.register("a", "1", vec![], 1, 0)));
        assert!(bad(r.register("a", "1", shapes(), 0, 0)));
        let short_vk = vec![ShapeKey { shape: Shape::TEST, vk_hash: "0x1234".into() }];
        assert!(bad(r.register("a", "1", short_vk, 1, 0)));
    }

    #[test]
    fn touch_and_connected() {
        let mut r = registry();
        let id = r.register("a", "1", shapes(), 1, 0).unwrap().prover_id;
        assert!(r.is_connected(&id, 500));
        assert!(!r.is_connected(&id, 501));
        r.touch(&id, 1_000).unwrap();
        assert!(r.is_connected(&id, 1_200));
        assert_eq!(r.connected_count(1_200), 1);
        assert_eq!(r.touch("nope", 0), Err(RegistryError::UnknownProver("nope".into())));
        assert!(!r.is_connected("nope", 0));
    }

    #[test]
    fn invalid_proofs_quarantine_within_the_window() {
        let mut r = registry();
        let id = r.register("a", "1", shapes(), 1, 0).unwrap().prover_id;
        assert_eq!(r.record_invalid(&id, 0), Ok(InvalidOutcome::Counted { streak: 1 }));
        assert_eq!(r.record_invalid(&id, 100), Ok(InvalidOutcome::Counted { streak: 2 }));
        // The first one leaves the 1 s window.
        assert_eq!(r.record_invalid(&id, 1_050), Ok(InvalidOutcome::Counted { streak: 2 }));
        assert_eq!(r.record_invalid(&id, 1_060), Ok(InvalidOutcome::Quarantined { until_ms: 11_060 }));
        assert_eq!(r.quarantined_until(&id, 5_000), Some(11_060));
        assert_eq!(r.quarantined_count(5_000), 1);
        assert_eq!(r.quarantined_until(&id, 11_060), None);
        // Re-registering does not lift it.
        r.register("a", "1", shapes(), 1, 6_000).unwrap();
        assert_eq!(r.quarantined_until(&id, 6_000), Some(11_060));
        assert_eq!(r.get(&id).unwrap().invalid_proofs, 4);
    }

    #[test]
    fn valid_proof_resets_the_streak() {
        let mut r = registry();
        let id = r.register("a", "1", shapes(), 1, 0).unwrap().prover_id;
        r.record_invalid(&id, 0).unwrap();
        r.record_invalid(&id, 1).unwrap();
        r.record_valid(&id).unwrap();
        assert_eq!(r.record_invalid(&id, 2), Ok(InvalidOutcome::Counted { streak: 1 }));
        assert_eq!(r.quarantined_until(&id, 2), None);
        assert_eq!(r.get(&id).unwrap().valid_proofs, 1);
        assert_eq!(r.record_valid("nope"), Err(RegistryError::UnknownProver("nope".into())));
    }
}
