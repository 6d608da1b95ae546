//! The dispatcher's task queue: which task a prover gets next, leases and
//! their expiry, attempts, and results. A plain struct without I/O; time is
//! passed in (`now_ms`) so every rule is unit-tested without a clock.
//!
//! Order:
//! * Between rollups, weighted fair share of leases: start-time fair queueing
//!   (stride scheduling with a virtual clock). Each lease advances the
//!   rollup's pass by `1/weight`; the rollup with the lowest pass among those
//!   with eligible work wins. A rollup with no work is skipped (its share is
//!   lent to the others) and, when it comes back, starts at the virtual clock
//!   instead of cashing in credit for the time it was idle.
//! * Within a rollup: lowest sequence height first, then the critical path
//!   (Final > Aggregate > Batch), then the lowest first batch.
//! * A task goes only to a prover that announced its shape and VK hash.
//!
//! A prover id holds at most one lease: `lease` first hands back the
//! prover's own unfinished task, which is how a prover that crashed and
//! reconnected (or lost a claim response) gets its work back.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::circuit::Shape;
use crate::wire::proof::ShapeKey;
use crate::wire::task::{normalize_vk_hash, NewTask, Task, TaskId, TaskKind, TaskStatus};

/// Queue settings. Serde-ready so it can hang under the daemon's config tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// How long a lease lasts without a heartbeat.
    pub lease_ms: u64,
    /// Leases that may end without a result (expired or failed) before the
    /// task is marked failed and surfaced.
    pub max_attempts: u32,
    /// Share of provers per rollup name; rollups not listed weigh 1.
    pub weights: BTreeMap<String, u32>,
    /// A task that reached `max_attempts` gets a fresh set of attempts
    /// after this long, doubling with every round it fails again.
    pub retry_failed_after_ms: u64,
    /// Cap of that doubling.
    pub retry_failed_max_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            lease_ms: 60_000,
            max_attempts: 5,
            weights: BTreeMap::new(),
            retry_failed_after_ms: 30_000,
            retry_failed_max_ms: 900_000,
        }
    }
}

impl QueueConfig {
    /// Takes each rollup's `weight` from the daemon's rollup list.
    pub fn with_rollup_weights(mut self, rollups: &[crate::config::RollupConfig]) -> Self {
        self.weights.extend(rollups.iter().map(|r| (r.name.clone(), r.weight.max(1))));
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("unknown task {0}")]
    UnknownTask(TaskId),
    #[error("task {task} is not leased to this prover")]
    NotHolder { task: TaskId },
    #[error("task {task} is not leased (it is {state})")]
    NotLeased { task: TaskId, state: &'static str },
    #[error("invalid task {task}: {reason}")]
    InvalidTask { task: TaskId, reason: String },
}

/// A task handed to a prover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub task: Task,
    pub expires_at_ms: u64,
    /// The prover already held this task (it reconnected or re-claimed).
    pub resumed: bool,
}

/// What happened to a task whose lease ended without a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requeued {
    /// Back in the queue after `attempts` unsuccessful leases.
    Queued { attempts: u32 },
    /// The attempt cap was reached; the task is failed and needs attention.
    Failed(Box<Task>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpireReport {
    pub requeued: Vec<TaskId>,
    /// Tasks that reached the attempt cap with this expiry.
    pub failed: Vec<Task>,
}

/// Number of tasks per kind and state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KindDepth {
    pub kind: TaskKind,
    pub queued: usize,
    pub leased: usize,
    pub failed: usize,
}

/// Sort key of a queued task within its rollup.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct QueueKey {
    seq_height: u64,
    rank: u8,
    first_batch: u64,
    id: TaskId,
}

impl QueueKey {
    fn of(t: &Task) -> Self {
        QueueKey {
            seq_height: t.seq_height,
            rank: t.kind.critical_rank(),
            first_batch: t.first_batch,
            id: t.id.clone(),
        }
    }
}

/// One lease of weight 1 advances a rollup's pass by this much. Large so
/// that integer division by any u32 weight keeps the ratio precise.
const STRIDE_ONE: u128 = 1 << 64;

#[derive(Debug)]
pub struct TaskQueue {
    cfg: QueueConfig,
    tasks: HashMap<TaskId, Task>,
    /// Queued tasks per rollup, in priority order.
    queued: BTreeMap<String, BTreeSet<QueueKey>>,
    /// The task each prover holds a lease on.
    held: HashMap<String, TaskId>,
    /// Fair-share pass per rollup.
    pass: HashMap<String, u128>,
    /// Start tag of the latest lease: the virtual clock idle rollups resume at.
    vtime: u128,
    /// Ids of tasks completed and dropped from `tasks`, newest last. A done
    /// task's witness or bundle is the largest thing the daemon holds, and
    /// its result is in the database; only the id is kept, for a while, so
    /// a late duplicate proof is answered "already done" and an enqueue
    /// racing the completion does not prove the task again.
    done: HashSet<TaskId>,
    done_order: VecDeque<TaskId>,
    /// Failed tasks: when they get their next round of attempts, and how
    /// many rounds failed so far (for the backoff).
    retries: HashMap<TaskId, Retry>,
}

/// How many finished task ids are remembered; at thousands of proofs per
/// second this still covers the seconds an enqueue can race a completion.
const REMEMBERED_DONE: usize = 16_384;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retry {
    at_ms: Option<u64>,
    rounds: u32,
}

impl TaskQueue {
    pub fn new(cfg: QueueConfig) -> Self {
        TaskQueue {
            cfg,
            tasks: HashMap::new(),
            queued: BTreeMap::new(),
            held: HashMap::new(),
            pass: HashMap::new(),
            vtime: 0,
            done: HashSet::new(),
            done_order: VecDeque::new(),
            retries: HashMap::new(),
        }
    }

    pub fn config(&self) -> &QueueConfig {
        &self.cfg
    }

    pub fn set_weight(&mut self, rollup: &str, weight: u32) {
        self.cfg.weights.insert(rollup.to_string(), weight.max(1));
    }

    fn weight(&self, rollup: &str) -> u32 {
        self.cfg.weights.get(rollup).copied().unwrap_or(1).max(1)
    }

    pub fn get(&self, id: &str) -> Option<&Task> {
        self.tasks.get(id)
    }

    /// The task a prover currently holds a lease on.
    pub fn held_by(&self, prover: &str) -> Option<&Task> {
        self.held.get(prover).and_then(|id| self.tasks.get(id))
    }

    /// Tasks held in memory, in any state (done ones are dropped).
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether `id` was completed (and dropped) recently.
    pub fn was_done(&self, id: &str) -> bool {
        self.done.contains(id)
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Adds a task. Returns `false` (and changes nothing) if a task with the
    /// same id is already known, whatever its state.
    pub fn enqueue(&mut self, new: NewTask) -> Result<bool, QueueError> {
        let id = new.id();
        let invalid = |reason: &str| Err(QueueError::InvalidTask { task: id.clone(), reason: reason.to_string() });
        if new.first_batch == 0 || new.first_batch > new.last_batch {
            return invalid("batches must satisfy 1 <= first <= last");
        }
        if new.seq_height > new.first_batch {
            return invalid("the sequence height is the sequence's first batch, not after the task's first");
        }
        if new.input.kind() == TaskKind::Batch && new.first_batch != new.last_batch {
            return invalid("a batch task covers exactly one batch");
        }
        if new.rollup.is_empty() || new.rollup.contains('/') {
            return invalid("rollup names are non-empty and contain no '/'");
        }
        if self.tasks.contains_key(&id) || self.done.contains(&id) {
            return Ok(false);
        }
        let task = Task {
            id: id.clone(),
            rollup: new.rollup,
            kind: new.input.kind(),
            seq_height: new.seq_height,
            first_batch: new.first_batch,
            last_batch: new.last_batch,
            shape: new.shape,
            vk_hash: normalize_vk_hash(&new.vk_hash),
            input: new.input,
            attempts: 0,
            status: TaskStatus::Queued,
        };
        self.queued.entry(task.rollup.clone()).or_default().insert(QueueKey::of(&task));
        self.tasks.insert(id, task);
        Ok(true)
    }

    /// Hands `prover` a task: its own unfinished lease if it has one
    /// (refreshed), else the best queued task it can prove.
    pub fn lease(&mut self, prover: &str, capabilities: &[ShapeKey], now_ms: u64) -> Option<Lease> {
        let expires_at_ms = now_ms.saturating_add(self.cfg.lease_ms);
        if let Some(id) = self.held.get(prover) {
            if let Some(task) = self.tasks.get_mut(id) {
                if let TaskStatus::Leased { holder, .. } = &task.status {
                    if holder == prover {
                        task.status = TaskStatus::Leased { holder: prover.to_string(), expires_at_ms };
                        return Some(Lease { task: task.clone(), expires_at_ms, resumed: true });
                    }
                }
            }
            // The index is kept in step with the task states; a stale entry
            // would be a bug, but it must not wedge the prover.
            self.held.remove(prover);
        }

        let caps: Vec<(Shape, String)> =
            capabilities.iter().map(|c| (c.shape, normalize_vk_hash(&c.vk_hash))).collect();
        let eligible = |t: &Task| caps.iter().any(|(s, vk)| *s == t.shape && *vk == t.vk_hash);

        // Best eligible task of every rollup, then the rollup whose fair-share
        // start tag is lowest (ties by name, so the order is deterministic).
        let mut best: Option<(u128, &str, &QueueKey)> = None;
        for (rollup, keys) in &self.queued {
            let Some(key) = keys.iter().find(|k| self.tasks.get(&k.id).is_some_and(eligible)) else {
                continue;
            };
            let start = self.pass.get(rollup).copied().unwrap_or(0).max(self.vtime);
            if best.as_ref().is_none_or(|(s, _, _)| start < *s) {
                best = Some((start, rollup, key));
            }
        }
        let (start, rollup, key) = best?;
        let (rollup, key) = (rollup.to_string(), key.clone());

        let stride = STRIDE_ONE / u128::from(self.weight(&rollup));
        self.pass.insert(rollup.clone(), start + stride);
        self.vtime = start;
        if let Some(keys) = self.queued.get_mut(&rollup) {
            keys.remove(&key);
            if keys.is_empty() {
                self.queued.remove(&rollup);
            }
        }
        let task = self.tasks.get_mut(&key.id)?;
        task.status = TaskStatus::Leased { holder: prover.to_string(), expires_at_ms };
        self.held.insert(prover.to_string(), key.id);
        Some(Lease { task: task.clone(), expires_at_ms, resumed: false })
    }

    /// Checks that `prover` holds `id` and returns the task mutably.
    fn held_task(&mut self, id: &str, prover: &str) -> Result<&mut Task, QueueError> {
        if self.done.contains(id) {
            return Err(QueueError::NotLeased { task: id.to_string(), state: "done" });
        }
        let task = self.tasks.get_mut(id).ok_or_else(|| QueueError::UnknownTask(id.to_string()))?;
        match &task.status {
            TaskStatus::Leased { holder, .. } if holder == prover => Ok(task),
            TaskStatus::Leased { .. } => Err(QueueError::NotHolder { task: id.to_string() }),
            other => Err(QueueError::NotLeased { task: id.to_string(), state: state_name(other) }),
        }
    }

    /// Extends the lease of `id` held by `prover`; returns the new expiry.
    pub fn heartbeat(&mut self, id: &str, prover: &str, now_ms: u64) -> Result<u64, QueueError> {
        let lease_ms = self.cfg.lease_ms;
        let task = self.held_task(id, prover)?;
        let expires_at_ms = now_ms.saturating_add(lease_ms);
        task.status = TaskStatus::Leased { holder: prover.to_string(), expires_at_ms };
        Ok(expires_at_ms)
    }

    /// Requeues every lease that expired before `now_ms`, counting an
    /// attempt; tasks that reach the cap are failed and returned.
    pub fn expire(&mut self, now_ms: u64) -> ExpireReport {
        let expired: Vec<(TaskId, String)> = self
            .tasks
            .values()
            .filter_map(|t| match &t.status {
                TaskStatus::Leased { holder, expires_at_ms } if *expires_at_ms <= now_ms => {
                    Some((t.id.clone(), holder.clone()))
                }
                _ => None,
            })
            .collect();
        let mut report = ExpireReport::default();
        for (id, holder) in expired {
            match self.end_lease(&id, &holder, true, "lease expired without a heartbeat") {
                Some(Requeued::Failed(task)) => report.failed.push(*task),
                Some(Requeued::Queued { .. }) => report.requeued.push(id),
                None => {}
            }
        }
        report.requeued.sort();
        report.failed.sort_by(|a, b| a.id.cmp(&b.id));
        report
    }

    /// Takes the lease of `holder` off `id` and puts the task back in the
    /// queue, or fails it when `count` brings it to the attempt cap.
    fn end_lease(&mut self, id: &str, holder: &str, count: bool, reason: &str) -> Option<Requeued> {
        if self.held.get(holder).is_some_and(|h| h == id) {
            self.held.remove(holder);
        }
        let max_attempts = self.cfg.max_attempts;
        let task = self.tasks.get_mut(id)?;
        if count {
            task.attempts = task.attempts.saturating_add(1);
        }
        if count && task.attempts >= max_attempts {
            task.status =
                TaskStatus::Failed { reason: format!("{reason} (attempt {} of {max_attempts})", task.attempts) };
            return Some(Requeued::Failed(Box::new(task.clone())));
        }
        task.status = TaskStatus::Queued;
        let attempts = task.attempts;
        let key = QueueKey::of(task);
        self.queued.entry(task.rollup.clone()).or_default().insert(key);
        Some(Requeued::Queued { attempts })
    }

    /// Records a result for `id` and drops the task, returning it when it
    /// was newly completed (`None`: it was done already). Accepted from any
    /// prover as long as the task is not done yet: a late proof (the lease
    /// expired, or the task was re-leased to someone else) is as good as a
    /// punctual one, and a failed task is rescued by it.
    pub fn complete(&mut self, id: &str, prover: &str) -> Result<Option<Task>, QueueError> {
        if self.done.contains(id) {
            return Ok(None);
        }
        let task = self.tasks.remove(id).ok_or_else(|| QueueError::UnknownTask(id.to_string()))?;
        if let TaskStatus::Leased { holder, .. } = &task.status {
            if holder != prover {
                tracing::debug!(task = id, prover, holder = %holder, "late result from a former holder");
            }
        }
        self.forget(&task);
        let mut task = task;
        task.status = TaskStatus::Done;
        Ok(Some(task))
    }

    fn remember_done(&mut self, id: &str) {
        if self.done.insert(id.to_string()) {
            self.done_order.push_back(id.to_string());
        }
        while self.done_order.len() > REMEMBERED_DONE {
            if let Some(old) = self.done_order.pop_front() {
                self.done.remove(&old);
            }
        }
    }

    /// The holder gives up on `id` (its proof failed): requeue, counting an
    /// attempt.
    pub fn fail(&mut self, id: &str, prover: &str, reason: &str) -> Result<Requeued, QueueError> {
        self.held_task(id, prover)?;
        let reason = format!("prover {prover} failed: {reason}");
        self.end_lease(id, prover, true, &reason).ok_or_else(|| QueueError::UnknownTask(id.to_string()))
    }

    /// The holder hands `id` back without having failed at it (graceful
    /// shutdown): requeue without counting an attempt.
    pub fn release(&mut self, id: &str, prover: &str) -> Result<(), QueueError> {
        self.held_task(id, prover)?;
        self.end_lease(id, prover, false, "released").map(|_| ()).ok_or_else(|| QueueError::UnknownTask(id.to_string()))
    }

    /// Gives a failed task a fresh set of attempts (an operator's "resend",
    /// or the backoff of [`retry_due`](Self::retry_due)).
    pub fn retry_failed(&mut self, id: &str) -> Result<(), QueueError> {
        let task = self.tasks.get_mut(id).ok_or_else(|| QueueError::UnknownTask(id.to_string()))?;
        if !matches!(task.status, TaskStatus::Failed { .. }) {
            return Err(QueueError::InvalidTask {
                task: id.to_string(),
                reason: "only a failed task is retried".into(),
            });
        }
        task.attempts = 0;
        task.status = TaskStatus::Queued;
        let key = QueueKey::of(task);
        self.queued.entry(task.rollup.clone()).or_default().insert(key);
        if let Some(r) = self.retries.get_mut(id) {
            r.at_ms = None;
        }
        Ok(())
    }

    /// Failed tasks get another round of attempts once their backoff ran
    /// out: `retry_failed_after_ms`, doubling per failed round up to
    /// `retry_failed_max_ms`. A task fails for a reason that may pass (all
    /// provers of its shape down, a bad prover build being rolled back);
    /// leaving it failed until a restart would stall its sequence for good.
    /// Returns the ids requeued now.
    pub fn retry_due(&mut self, now_ms: u64) -> Vec<TaskId> {
        let (base, max) = (self.cfg.retry_failed_after_ms.max(1), self.cfg.retry_failed_max_ms.max(1));
        let mut due = Vec::new();
        for t in self.tasks.values() {
            if !matches!(t.status, TaskStatus::Failed { .. }) {
                continue;
            }
            let r = self.retries.entry(t.id.clone()).or_insert(Retry { at_ms: None, rounds: 0 });
            match r.at_ms {
                None => {
                    let backoff = base.saturating_mul(1u64 << r.rounds.min(32)).min(max);
                    r.at_ms = Some(now_ms.saturating_add(backoff));
                }
                Some(at) if at <= now_ms => {
                    r.rounds = r.rounds.saturating_add(1);
                    due.push(t.id.clone());
                }
                Some(_) => {}
            }
        }
        due.sort();
        for id in &due {
            // Only failed tasks were picked, so this cannot refuse.
            let _ = self.retry_failed(id);
        }
        due
    }

    /// When failed task `id` gets its next round of attempts, if scheduled.
    pub fn retry_at(&self, id: &str) -> Option<u64> {
        self.retries.get(id).and_then(|r| r.at_ms)
    }

    /// Forgets a done or failed task (once its result is persisted), so the
    /// queue does not grow forever. Queued and leased tasks are kept.
    pub fn remove_finished(&mut self, id: &str) -> Option<Task> {
        if matches!(self.tasks.get(id)?.status, TaskStatus::Done | TaskStatus::Failed { .. }) {
            self.retries.remove(id);
            self.tasks.remove(id)
        } else {
            None
        }
    }

    /// Drops a task nobody needs any more (its sequence was verified, by
    /// anyone), whatever its state. It is remembered like a done task, so
    /// its holder's next heartbeat or submission is told "already done" and
    /// the prover moves on. Returns whether the task was held.
    pub fn cancel(&mut self, id: &str) -> bool {
        let Some(task) = self.tasks.remove(id) else { return false };
        self.forget(&task);
        true
    }

    /// After `task` left `tasks` for good: takes it off its holder or out of
    /// the queue, drops its retry schedule and remembers it as done.
    fn forget(&mut self, task: &Task) {
        match &task.status {
            TaskStatus::Leased { holder, .. } => {
                if self.held.get(holder).is_some_and(|h| *h == task.id) {
                    self.held.remove(holder);
                }
            }
            TaskStatus::Queued => {
                if let Some(keys) = self.queued.get_mut(&task.rollup) {
                    keys.remove(&QueueKey::of(task));
                    if keys.is_empty() {
                        self.queued.remove(&task.rollup);
                    }
                }
            }
            TaskStatus::Done | TaskStatus::Failed { .. } => {}
        }
        self.retries.remove(&task.id);
        self.remember_done(&task.id);
    }

    /// Whether some queued task could go to a prover with these capabilities.
    pub fn has_work_for(&self, capabilities: &[ShapeKey]) -> bool {
        let caps: Vec<(Shape, String)> =
            capabilities.iter().map(|c| (c.shape, normalize_vk_hash(&c.vk_hash))).collect();
        self.queued
            .values()
            .flatten()
            .filter_map(|k| self.tasks.get(&k.id))
            .any(|t| caps.iter().any(|(s, vk)| *s == t.shape && *vk == t.vk_hash))
    }

    /// Task counts per kind and state (done tasks are not held), one entry per kind in the order of
    /// [`TaskKind::ALL`].
    pub fn depth(&self) -> Vec<KindDepth> {
        let mut out: Vec<KindDepth> =
            TaskKind::ALL.iter().map(|&kind| KindDepth { kind, ..Default::default() }).collect();
        for t in self.tasks.values() {
            let Some(d) = out.iter_mut().find(|d| d.kind == t.kind) else { continue };
            match t.status {
                TaskStatus::Queued => d.queued += 1,
                TaskStatus::Leased { .. } => d.leased += 1,
                // Done tasks are dropped by `complete`; none is left to count.
                TaskStatus::Done => {}
                TaskStatus::Failed { .. } => d.failed += 1,
            }
        }
        out
    }
}

impl Default for KindDepth {
    fn default() -> Self {
        KindDepth { kind: TaskKind::Batch, queued: 0, leased: 0, failed: 0 }
    }
}

pub(crate) fn state_name(s: &TaskStatus) -> &'static str {
    match s {
        TaskStatus::Queued => "queued",
        TaskStatus::Leased { .. } => "leased",
        TaskStatus::Done => "done",
        TaskStatus::Failed { .. } => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::task::test_support::{aggregate, batch, final_, VK};

    const LEASE: u64 = 1_000;

    fn queue() -> TaskQueue {
        TaskQueue::new(QueueConfig { lease_ms: LEASE, max_attempts: 3, ..QueueConfig::default() })
    }

    fn caps() -> Vec<ShapeKey> {
        vec![ShapeKey { shape: Shape::TEST, vk_hash: VK.into() }]
    }

    fn lease_id(q: &mut TaskQueue, prover: &str, now: u64) -> Option<TaskId> {
        q.lease(prover, &caps(), now).map(|l| l.task.id)
    }

    #[test]
    fn orders_by_height_then_critical_path_then_first_batch() {
        let mut q = queue();
        // Sequence at height 5: batches 5..=8, aggregates and its final.
        for n in [8, 6, 5, 7] {
            q.enqueue(batch("r", 5, n)).unwrap();
        }
        q.enqueue(aggregate("r", 5, 7, 7, 8)).unwrap();
        q.enqueue(aggregate("r", 5, 5, 5, 6)).unwrap();
        q.enqueue(final_("r", 5, 5, 8)).unwrap();
        // An older sequence enqueued last still goes first.
        q.enqueue(batch("r", 1, 1)).unwrap();
        q.enqueue(final_("r", 2, 2, 4)).unwrap();

        let mut order = Vec::new();
        for i in 0..9 {
            let p = format!("p{i}");
            order.push(lease_id(&mut q, &p, 0).unwrap());
        }
        assert_eq!(
            order,
            vec![
                "r/batch/1-1",
                "r/final/2-4",
                "r/final/5-8",
                "r/aggregate/5-6",
                "r/aggregate/7-8",
                "r/batch/5-5",
                "r/batch/6-6",
                "r/batch/7-7",
                "r/batch/8-8",
            ]
        );
        assert_eq!(lease_id(&mut q, "p9", 0), None);
    }

    #[test]
    fn weighted_fair_share_between_backlogged_rollups() {
        let mut q = queue();
        q.set_weight("a", 3);
        q.set_weight("b", 1);
        for n in 1..=1000 {
            q.enqueue(batch("a", 1, n)).unwrap();
            q.enqueue(batch("b", 1, n)).unwrap();
        }
        let (mut a, mut b) = (0, 0);
        for _ in 0..400 {
            let id = lease_id(&mut q, "p", 0).unwrap();
            if id.starts_with("a/") {
                a += 1;
            } else {
                b += 1;
            }
            assert!(q.complete(&id, "p").unwrap().is_some());
        }
        assert_eq!((a, b), (300, 100));
    }

    #[test]
    fn idle_rollup_lends_its_share_and_does_not_bank_it() {
        let mut q = queue();
        for n in 1..=200 {
            q.enqueue(batch("a", 1, n)).unwrap();
        }
        // Only "a" has work: it gets every lease.
        for _ in 0..100 {
            let id = lease_id(&mut q, "p", 0).unwrap();
            assert!(id.starts_with("a/"));
            q.complete(&id, "p").unwrap();
        }
        // "b" arrives with equal weight: it gets half from now on, not the
        // next hundred leases as catch-up.
        for n in 1..=100 {
            q.enqueue(batch("b", 1, n)).unwrap();
        }
        let mut b = 0;
        for _ in 0..40 {
            let id = lease_id(&mut q, "p", 0).unwrap();
            if id.starts_with("b/") {
                b += 1;
            }
            q.complete(&id, "p").unwrap();
        }
        assert!((19..=21).contains(&b), "b got {b} of 40");
    }

    #[test]
    fn rollup_without_eligible_work_lends_its_share() {
        let mut q = queue();
        q.set_weight("big", 10);
        q.enqueue(batch("small", 1, 1)).unwrap();
        let mut other_shape = batch("big", 1, 1);
        other_shape.shape = Shape { k: 4, d: 8 };
        q.enqueue(other_shape).unwrap();
        // The prover cannot prove "big"'s shape, so "small" is served.
        assert_eq!(lease_id(&mut q, "p", 0).as_deref(), Some("small/batch/1-1"));
    }

    #[test]
    fn enqueue_is_idempotent_and_validates() {
        let mut q = queue();
        assert_eq!(q.enqueue(batch("r", 1, 1)), Ok(true));
        let id = lease_id(&mut q, "p", 0).unwrap();
        // Same id again, even in another state, changes nothing.
        assert_eq!(q.enqueue(batch("r", 1, 1)), Ok(false));
        assert!(matches!(q.get(&id).unwrap().status, TaskStatus::Leased { .. }));
        assert_eq!(q.len(), 1);
        q.complete(&id, "p").unwrap();
        assert_eq!(q.enqueue(batch("r", 1, 1)), Ok(false), "not after it is done either");
        assert!(q.get(&id).is_none() && q.was_done(&id));

        let mut bad = batch("r", 1, 2);
        bad.last_batch = 3;
        assert!(matches!(q.enqueue(bad), Err(QueueError::InvalidTask { .. })));
        let mut bad = batch("r", 1, 2);
        bad.seq_height = 3;
        assert!(matches!(q.enqueue(bad), Err(QueueError::InvalidTask { .. })));
        assert!(matches!(q.enqueue(batch("a/b", 1, 1)), Err(QueueError::InvalidTask { .. })));
    }

    #[test]
    fn reconnecting_prover_gets_its_own_task_back() {
        let mut q = queue();
        q.enqueue(batch("r", 1, 1)).unwrap();
        q.enqueue(final_("r", 1, 1, 1)).unwrap();
        let first = q.lease("p", &caps(), 0).unwrap();
        assert!(!first.resumed);
        assert_eq!(first.task.id, "r/final/1-1");
        // The prover crashed and claims again: same task, lease refreshed,
        // not the other queued one.
        let again = q.lease("p", &caps(), 500).unwrap();
        assert!(again.resumed);
        assert_eq!(again.task.id, "r/final/1-1");
        assert_eq!(again.expires_at_ms, 500 + LEASE);
        assert_eq!(q.held_by("p").map(|t| t.id.as_str()), Some("r/final/1-1"));
        // Someone else gets the other task.
        assert_eq!(lease_id(&mut q, "other", 500).as_deref(), Some("r/batch/1-1"));
    }

    #[test]
    fn heartbeat_extends_and_checks_holder() {
        let mut q = queue();
        q.enqueue(batch("r", 1, 1)).unwrap();
        let id = lease_id(&mut q, "p", 0).unwrap();
        assert_eq!(q.heartbeat(&id, "p", 900), Ok(900 + LEASE));
        // Not expired at the original deadline any more.
        assert!(q.expire(1_500).requeued.is_empty());
        assert_eq!(q.heartbeat(&id, "intruder", 1_000), Err(QueueError::NotHolder { task: id.clone() }));
        assert_eq!(q.heartbeat("r/batch/9-9", "p", 1_000), Err(QueueError::UnknownTask("r/batch/9-9".into())));
        q.complete(&id, "p").unwrap();
        assert_eq!(q.heartbeat(&id, "p", 1_000), Err(QueueError::NotLeased { task: id.clone(), state: "done" }));
    }

    #[test]
    fn expiry_requeues_then_fails_at_the_cap() {
        let mut q = queue();
        q.enqueue(batch("r", 1, 1)).unwrap();
        let mut now = 0;
        for attempt in 1..=2 {
            let id = lease_id(&mut q, &format!("p{attempt}"), now).unwrap();
            assert!(q.expire(now + LEASE - 1).requeued.is_empty(), "not yet expired");
            now += LEASE;
            let report = q.expire(now);
            assert_eq!(report.requeued, vec![id.clone()]);
            assert!(report.failed.is_empty());
            assert_eq!(q.get(&id).unwrap().attempts, attempt);
            assert_eq!(q.get(&id).unwrap().status, TaskStatus::Queued);
            // The old holder no longer holds it.
            assert!(q.held_by(&format!("p{attempt}")).is_none());
        }
        let id = lease_id(&mut q, "p3", now).unwrap();
        now += LEASE;
        let report = q.expire(now);
        assert!(report.requeued.is_empty());
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].id, id);
        assert!(matches!(&q.get(&id).unwrap().status, TaskStatus::Failed { reason } if reason.contains("expired")));
        assert_eq!(lease_id(&mut q, "p4", now), None, "a failed task is not leased again");

        q.retry_failed(&id).unwrap();
        assert_eq!(q.get(&id).unwrap().attempts, 0);
        assert_eq!(lease_id(&mut q, "p4", now), Some(id));
    }

    #[test]
    fn late_completion_is_accepted_once() {
        let mut q = queue();
        q.enqueue(batch("r", 1, 1)).unwrap();
        let id = lease_id(&mut q, "slow", 0).unwrap();
        q.expire(LEASE);
        let re = lease_id(&mut q, "fast", LEASE).unwrap();
        assert_eq!(re, id);
        // The first prover's late result is still good.
        assert!(q.complete(&id, "slow").unwrap().is_some());
        assert!(q.held_by("fast").is_none(), "the new holder's lease is gone with the task");
        assert_eq!(q.complete(&id, "fast"), Ok(None));
        assert_eq!(q.heartbeat(&id, "fast", LEASE + 1), Err(QueueError::NotLeased { task: id.clone(), state: "done" }));
        // A late result for a queued or failed task completes it too.
        q.enqueue(batch("r", 1, 2)).unwrap();
        assert!(q.complete("r/batch/2-2", "anyone").unwrap().is_some());
        assert_eq!(lease_id(&mut q, "p", LEASE), None);
        assert_eq!(q.complete("r/batch/9-9", "p"), Err(QueueError::UnknownTask("r/batch/9-9".into())));
    }

    #[test]
    fn fail_counts_release_does_not() {
        let mut q = queue();
        q.enqueue(batch("r", 1, 1)).unwrap();
        let id = lease_id(&mut q, "p", 0).unwrap();
        assert_eq!(q.fail(&id, "other", "x"), Err(QueueError::NotHolder { task: id.clone() }));
        assert_eq!(q.release(&id, "other"), Err(QueueError::NotHolder { task: id.clone() }));
        assert_eq!(q.release(&id, "p"), Ok(()));
        assert_eq!(q.get(&id).unwrap().attempts, 0);
        assert_eq!(q.release(&id, "p"), Err(QueueError::NotLeased { task: id.clone(), state: "queued" }));

        for n in 1..=2 {
            lease_id(&mut q, "p", 0).unwrap();
            assert_eq!(q.fail(&id, "p", "out of memory"), Ok(Requeued::Queued { attempts: n }));
        }
        lease_id(&mut q, "p", 0).unwrap();
        match q.fail(&id, "p", "out of memory") {
            Ok(Requeued::Failed(t)) => {
                assert!(matches!(&t.status, TaskStatus::Failed { reason } if reason.contains("out of memory")))
            }
            other => panic!("expected failure, got {other:?}"),
        }
    }

    #[test]
    fn tasks_go_only_to_provers_with_the_shape_and_vk() {
        let mut q = queue();
        q.enqueue(batch("r", 1, 1)).unwrap();
        let wrong_vk = vec![ShapeKey { shape: Shape::TEST, vk_hash: "0x1234".into() }];
        let wrong_shape = vec![ShapeKey { shape: Shape { k: 4, d: 8 }, vk_hash: VK.into() }];
        assert!(q.lease("a", &wrong_vk, 0).is_none());
        assert!(q.lease("b", &wrong_shape, 0).is_none());
        assert!(q.lease("c", &[], 0).is_none());
        assert!(!q.has_work_for(&wrong_vk));
        assert!(q.has_work_for(&caps()));
        // VK hashes match whatever their case or prefix.
        let shouting = vec![ShapeKey { shape: Shape::TEST, vk_hash: VK.trim_start_matches("0x").to_uppercase() }];
        assert_eq!(q.lease("d", &shouting, 0).map(|l| l.task.id).as_deref(), Some("r/batch/1-1"));
    }

    #[test]
    fn depth_counts_by_kind_and_state() {
        let mut q = queue();
        q.enqueue(batch("r", 1, 1)).unwrap();
        q.enqueue(batch("r", 1, 2)).unwrap();
        q.enqueue(aggregate("r", 1, 1, 1, 2)).unwrap();
        let id = lease_id(&mut q, "p", 0).unwrap();
        assert_eq!(id, "r/aggregate/1-2");
        let d = q.depth();
        assert_eq!(d[0], KindDepth { kind: TaskKind::Batch, queued: 2, leased: 0, failed: 0 });
        assert_eq!(d[1], KindDepth { kind: TaskKind::Aggregate, queued: 0, leased: 1, failed: 0 });
        assert_eq!(d[2], KindDepth { kind: TaskKind::Final, queued: 0, leased: 0, failed: 0 });
        q.complete(&id, "p").unwrap();
        assert_eq!(q.depth()[1], KindDepth { kind: TaskKind::Aggregate, ..Default::default() });
        assert!(q.remove_finished("r/batch/1-1").is_none(), "queued tasks stay");
    }

    #[test]
    fn done_tasks_leave_memory_but_are_remembered() {
        let mut q = queue();
        for n in 1..=3 {
            q.enqueue(batch("r", 1, n)).unwrap();
        }
        let id = lease_id(&mut q, "p", 0).unwrap();
        let done = q.complete(&id, "p").unwrap().expect("newly completed");
        assert_eq!(done.status, TaskStatus::Done);
        assert_eq!(q.len(), 2, "the done task and its input are dropped");
        assert!(q.get(&id).is_none());
        assert!(q.was_done(&id));
        // An enqueue that raced the completion does not bring it back.
        assert_eq!(q.enqueue(batch("r", 1, 1)), Ok(false));
        assert_eq!(q.len(), 2);
        assert_eq!(q.heartbeat(&id, "p", 10), Err(QueueError::NotLeased { task: id.clone(), state: "done" }));
        assert_eq!(q.complete(&id, "late"), Ok(None));
        // Completing everything leaves nothing behind.
        while let Some(id) = lease_id(&mut q, "p", 0) {
            q.complete(&id, "p").unwrap();
        }
        assert!(q.is_empty());
        assert!(q.held.is_empty() && q.queued.is_empty() && q.retries.is_empty());
    }

    #[test]
    fn cancel_drops_a_task_in_any_state() {
        let mut q = queue();
        for n in 1..=3 {
            q.enqueue(batch("r", 1, n)).unwrap();
        }
        let leased = lease_id(&mut q, "p", 0).unwrap();
        assert!(q.cancel(&leased));
        assert!(q.held_by("p").is_none());
        assert_eq!(q.heartbeat(&leased, "p", 1), Err(QueueError::NotLeased { task: leased.clone(), state: "done" }));
        assert!(q.cancel("r/batch/2-2"), "a queued task");
        assert!(!q.cancel("r/batch/2-2"), "only once");
        assert_eq!(lease_id(&mut q, "p", 0).as_deref(), Some("r/batch/3-3"), "the cancelled one is never leased");
        assert_eq!(lease_id(&mut q, "other", 0), None);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn remembered_done_ids_are_bounded() {
        let mut q = queue();
        let total = REMEMBERED_DONE as u64 + 10;
        for n in 1..=total {
            q.enqueue(batch("r", n, n)).unwrap();
            q.complete(&format!("r/batch/{n}-{n}"), "p").unwrap();
        }
        assert_eq!(q.done.len(), REMEMBERED_DONE);
        assert_eq!(q.done_order.len(), REMEMBERED_DONE);
        assert!(!q.was_done("r/batch/1-1"), "the oldest ids are forgotten");
        assert!(q.was_done(&format!("r/batch/{total}-{total}")));
        assert!(q.is_empty());
    }

    #[test]
    fn failed_tasks_are_retried_with_doubling_backoff() {
        let mut q = TaskQueue::new(QueueConfig {
            lease_ms: LEASE,
            max_attempts: 1,
            retry_failed_after_ms: 100,
            retry_failed_max_ms: 250,
            ..QueueConfig::default()
        });
        q.enqueue(batch("r", 1, 1)).unwrap();
        let fail_once = |q: &mut TaskQueue, now: u64| {
            let id = lease_id(q, "p", now).expect("claimable");
            assert!(matches!(q.fail(&id, "p", "boom"), Ok(Requeued::Failed(_))));
            id
        };
        let id = fail_once(&mut q, 0);
        // The first sweep after the failure schedules the retry.
        assert!(q.retry_due(1_000).is_empty());
        assert_eq!(q.retry_at(&id), Some(1_100));
        assert!(q.retry_due(1_099).is_empty());
        assert_eq!(lease_id(&mut q, "p", 1_099), None, "still failed");
        assert_eq!(q.retry_due(1_100), vec![id.clone()]);
        assert_eq!(q.get(&id).unwrap().status, TaskStatus::Queued);
        assert_eq!(q.get(&id).unwrap().attempts, 0);

        // Second round: 200 ms; third: capped at 250 ms.
        fail_once(&mut q, 1_100);
        q.retry_due(2_000);
        assert_eq!(q.retry_at(&id), Some(2_200));
        assert_eq!(q.retry_due(2_200), vec![id.clone()]);
        fail_once(&mut q, 2_200);
        q.retry_due(3_000);
        assert_eq!(q.retry_at(&id), Some(3_250));

        // A late proof rescues it and clears the schedule.
        assert!(q.complete(&id, "late").unwrap().is_some());
        assert!(q.retries.is_empty());
        assert!(q.retry_due(10_000).is_empty());
    }
}
