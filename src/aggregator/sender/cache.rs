//! The sender's three priority caches (the seed's finalProofMsgCache,
//! monitPHTxCache and ProofHashCache) and the index that keeps a sequence
//! in at most one of them.
//!
//! A cache is a set of sequences ordered by height, lowest first, each with
//! the block from which its actor should look at it again (its window
//! timer). Pushing a sequence that is already there changes nothing, so the
//! proof manager, the resend sweep and the other stages can all offer the
//! same sequence without coordinating.
//!
//! The caches hold no state that matters after a restart: the proof
//! manager rebuilds them from the database and the chain.

use std::collections::BTreeMap;
use std::sync::Mutex;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use tokio::sync::Notify;

use super::stage::Stage;
use crate::metrics;

/// A sequence, ordered by height: `init_batch` first, then the rollup. On
/// one chain, rollups' batch numbers grow at similar rates, so ordering by
/// `init_batch` first lets no rollup starve behind another's backlog.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqKey {
    pub init_batch: u64,
    pub rollup: String,
}

impl SeqKey {
    pub fn new(rollup: &str, init_batch: u64) -> Self {
        SeqKey { init_batch, rollup: rollup.to_string() }
    }
}

impl std::fmt::Display for SeqKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.rollup, self.init_batch)
    }
}

/// One thread-safe, deduplicated priority cache, consumed by one actor.
pub struct PriorityCache {
    stage: Stage,
    chain: String,
    /// Sequence → the first head at which it is due again. A std mutex:
    /// it is never held across an await.
    entries: Mutex<BTreeMap<SeqKey, u64>>,
    wake: Notify,
}

impl PriorityCache {
    pub fn new(chain: &str, stage: Stage) -> Self {
        let c = PriorityCache { stage, chain: chain.to_string(), entries: Mutex::default(), wake: Notify::new() };
        c.gauge(0);
        c
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SeqKey, u64>> {
        // A panic elsewhere cannot leave the map half-written (every update
        // is one call on it), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn gauge(&self, depth: usize) {
        metrics::sender_cache_depth(&self.chain, self.stage.cache(), depth);
    }

    /// Adds `key`, due at once; a no-op (false) when it is already here.
    pub fn push(&self, key: SeqKey) -> bool {
        let depth = {
            let mut m = self.lock();
            if m.contains_key(&key) {
                return false;
            }
            m.insert(key, 0);
            m.len()
        };
        self.gauge(depth);
        self.wake.notify_one();
        true
    }

    pub fn remove(&self, key: &SeqKey) -> bool {
        let (removed, depth) = {
            let mut m = self.lock();
            (m.remove(key).is_some(), m.len())
        };
        self.gauge(depth);
        removed
    }

    pub fn contains(&self, key: &SeqKey) -> bool {
        self.lock().contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every sequence due at `head`, lowest first. A snapshot: the actor
    /// works through it without holding the lock, so others may push
    /// meanwhile.
    pub fn due(&self, head: u64) -> Vec<SeqKey> {
        self.lock().iter().filter(|(_, due)| **due <= head).map(|(k, _)| k.clone()).collect()
    }

    /// Re-arms `key`'s timer: it is not due before block `at`.
    pub fn defer(&self, key: &SeqKey, at: u64) {
        if let Some(due) = self.lock().get_mut(key) {
            *due = at;
        }
    }

    /// Makes `key` due at once and wakes the actor (something happened that
    /// the block timer does not know about, such as a receipt).
    pub fn nudge(&self, key: &SeqKey) -> bool {
        let found = match self.lock().get_mut(key) {
            Some(due) => {
                *due = 0;
                true
            }
            None => false,
        };
        if found {
            self.wake.notify_one();
        }
        found
    }

    /// Resolves after a push or a nudge (one stored permit, so a push while
    /// the actor is busy is not lost).
    pub async fn pushed(&self) {
        self.wake.notified().await
    }
}

/// The three caches of one chain, and which one holds each sequence. The
/// index makes "in at most one cache" hold across caches: only the actor
/// whose cache holds a sequence acts on it, so two stages never send for
/// the same sequence at once.
pub struct Caches {
    commit: PriorityCache,
    monitor: PriorityCache,
    reveal: PriorityCache,
    index: DashMap<SeqKey, Stage>,
}

impl Caches {
    pub fn new(chain: &str) -> Self {
        Caches {
            commit: PriorityCache::new(chain, Stage::Commit),
            monitor: PriorityCache::new(chain, Stage::Monitor),
            reveal: PriorityCache::new(chain, Stage::Reveal),
            index: DashMap::new(),
        }
    }

    pub fn get(&self, stage: Stage) -> &PriorityCache {
        match stage {
            Stage::Commit => &self.commit,
            Stage::Monitor => &self.monitor,
            Stage::Reveal => &self.reveal,
        }
    }

    /// Where `key` is, if anywhere.
    pub fn stage_of(&self, key: &SeqKey) -> Option<Stage> {
        self.index.get(key).map(|s| *s)
    }

    /// Puts `key` into `stage`'s cache unless some cache holds it already.
    pub fn admit(&self, key: SeqKey, stage: Stage) -> bool {
        // The index entry stays locked while the cache changes, so a
        // concurrent admit or move of the same key waits for this one.
        match self.index.entry(key.clone()) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v) => {
                self.get(stage).push(key);
                v.insert(stage);
                true
            }
        }
    }

    /// Hands `key` from `from`'s cache to `to`'s. False (and nothing moves)
    /// when `from` does not hold it.
    pub fn hand_over(&self, key: &SeqKey, from: Stage, to: Stage) -> bool {
        let Some(mut at) = self.index.get_mut(key) else { return false };
        if *at != from {
            return false;
        }
        if from != to {
            self.get(from).remove(key);
            self.get(to).push(key.clone());
            *at = to;
        }
        true
    }

    /// Forgets `key` if `from` holds it (the submission is done).
    pub fn drop_from(&self, key: &SeqKey, from: Stage) -> bool {
        match self.index.entry(key.clone()) {
            Entry::Occupied(o) if *o.get() == from => {
                self.get(from).remove(key);
                o.remove();
                true
            }
            _ => false,
        }
    }

    /// Makes `key` due at once in whichever cache holds it.
    pub fn nudge(&self, key: &SeqKey) {
        if let Some(stage) = self.stage_of(key) {
            self.get(stage).nudge(key);
        }
    }

    /// Sequences held, by stage (for logs and tests).
    pub fn depths(&self) -> [(Stage, usize); 3] {
        Stage::ALL.map(|s| (s, self.get(s).len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn k(rollup: &str, init: u64) -> SeqKey {
        SeqKey::new(rollup, init)
    }

    #[test]
    fn lowest_sequence_first_across_rollups() {
        let c = PriorityCache::new("cache-test", Stage::Commit);
        for key in [k("b", 9), k("a", 3), k("b", 3), k("a", 12), k("a", 1)] {
            assert!(c.push(key));
        }
        assert_eq!(c.due(0), vec![k("a", 1), k("a", 3), k("b", 3), k("b", 9), k("a", 12)]);
    }

    #[test]
    fn pushing_a_present_sequence_is_a_no_op() {
        let c = PriorityCache::new("cache-test", Stage::Monitor);
        assert!(c.push(k("a", 5)));
        c.defer(&k("a", 5), 40);
        assert!(!c.push(k("a", 5)), "deduplicated");
        assert_eq!(c.len(), 1);
        // And the duplicate did not reset the timer.
        assert!(c.due(39).is_empty());
        assert_eq!(c.due(40), vec![k("a", 5)]);
    }

    #[test]
    fn timers_count_blocks_and_a_nudge_makes_a_sequence_due_at_once() {
        let c = PriorityCache::new("cache-test", Stage::Monitor);
        c.push(k("a", 1));
        c.push(k("a", 2));
        c.defer(&k("a", 1), 120);
        c.defer(&k("a", 2), 101);
        assert!(c.due(100).is_empty());
        assert_eq!(c.due(101), vec![k("a", 2)]);
        assert_eq!(c.due(120), vec![k("a", 1), k("a", 2)]);
        assert!(c.nudge(&k("a", 1)));
        assert_eq!(c.due(100), vec![k("a", 1)]);
        assert!(!c.nudge(&k("a", 7)), "not held");
    }

    #[tokio::test]
    async fn a_push_while_the_consumer_is_busy_still_wakes_it() {
        let c = PriorityCache::new("cache-test", Stage::Commit);
        c.push(k("a", 1));
        // The consumer starts waiting only now; the permit was stored.
        tokio::time::timeout(std::time::Duration::from_secs(1), c.pushed()).await.expect("woken");
    }

    #[test]
    fn concurrent_pushes_keep_one_entry_per_sequence() {
        let c = Arc::new(PriorityCache::new("cache-test", Stage::Reveal));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let mut fresh = 0;
                    for i in 0..200u64 {
                        // Every thread pushes every sequence, in its own order.
                        let n = (i * 7 + t * 13) % 200;
                        if c.push(k(if n % 2 == 0 { "a" } else { "b" }, n / 2)) {
                            fresh += 1;
                        }
                    }
                    fresh
                })
            })
            .collect();
        let fresh: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(fresh, 200, "each sequence was new to exactly one push");
        let due = c.due(0);
        assert_eq!(due.len(), 200);
        assert!(due.windows(2).all(|w| w[0] < w[1]), "ordered and distinct");
    }

    #[test]
    fn a_sequence_is_in_at_most_one_cache() {
        let caches = Caches::new("cache-test");
        assert!(caches.admit(k("a", 1), Stage::Commit));
        assert!(!caches.admit(k("a", 1), Stage::Reveal), "already held by the committer");
        assert_eq!(caches.stage_of(&k("a", 1)), Some(Stage::Commit));
        assert!(!caches.hand_over(&k("a", 1), Stage::Monitor, Stage::Reveal), "only the holder hands over");
        assert!(caches.hand_over(&k("a", 1), Stage::Commit, Stage::Monitor));
        assert!(!caches.get(Stage::Commit).contains(&k("a", 1)));
        assert!(caches.get(Stage::Monitor).contains(&k("a", 1)));
        assert!(!caches.drop_from(&k("a", 1), Stage::Commit));
        assert!(caches.drop_from(&k("a", 1), Stage::Monitor));
        assert_eq!(caches.depths().map(|(_, n)| n), [0, 0, 0]);
        assert!(caches.admit(k("a", 1), Stage::Reveal), "a finished sequence may come back (a resend)");
    }

    #[test]
    fn concurrent_admits_and_hand_overs_never_duplicate() {
        let caches = Arc::new(Caches::new("cache-test"));
        let threads: Vec<_> = (0..6)
            .map(|t| {
                let caches = caches.clone();
                std::thread::spawn(move || {
                    for i in 0..300u64 {
                        let key = k("a", i % 50);
                        match (i + t) % 3 {
                            0 => {
                                caches.admit(key, Stage::Commit);
                            }
                            1 => {
                                caches.hand_over(&key, Stage::Commit, Stage::Monitor);
                            }
                            _ => {
                                caches.hand_over(&key, Stage::Monitor, Stage::Reveal);
                            }
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let total: usize = caches.depths().iter().map(|(_, n)| n).sum();
        assert_eq!(total, 50, "every sequence in exactly one cache");
        for i in 0..50 {
            let key = k("a", i);
            let held: Vec<Stage> = Stage::ALL.into_iter().filter(|s| caches.get(*s).contains(&key)).collect();
            assert_eq!(held, vec![caches.stage_of(&key).unwrap()]);
        }
    }
}
