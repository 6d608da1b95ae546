//! The proof tree of a sequence and what is ready to run next.
//!
//! A sequence `[init, fin]` is proven bottom-up: one Batch task per batch,
//! Aggregate tasks over a balanced binary tree of adjacent ranges, and one
//! Final task over the whole range. With one batch the tree is Batch → Final.
//! Everything here is pure: the supervisor feeds it the ranges whose
//! results exist and gets back the ranges to create next.

use std::collections::BTreeSet;

use crate::wire::task::TaskKind;

/// Inclusive batch range.
pub type Range = (u64, u64);

/// The two halves of an internal node; `None` for a single batch.
pub fn children((first, last): Range) -> Option<(Range, Range)> {
    if first >= last {
        return None;
    }
    let mid = first + (last - first) / 2;
    Some(((first, mid), (mid + 1, last)))
}

/// Every node of the tree over `root`, leaves first.
pub fn nodes(root: Range) -> Vec<Range> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(r) = stack.pop() {
        out.push(r);
        if let Some((l, rr)) = children(r) {
            stack.push(l);
            stack.push(rr);
        }
    }
    out.sort_by_key(|(f, l)| (l - f, *f));
    out
}

/// What to create next for a sequence, given which results exist.
///
/// `done` holds the ranges with a stored result of the tree (Batch or
/// Aggregate), `final_done` whether the Final task has its result, and
/// `created` the (kind, range) pairs already created. Returns the tasks whose
/// inputs are all available and that do not exist yet.
pub fn ready(
    root: Range,
    done: &BTreeSet<Range>,
    final_done: bool,
    created: &BTreeSet<(TaskKind, Range)>,
) -> Vec<(TaskKind, Range)> {
    let mut out = Vec::new();
    for node in nodes(root) {
        let kind = if node.0 == node.1 { TaskKind::Batch } else { TaskKind::Aggregate };
        if done.contains(&node) || created.contains(&(kind, node)) {
            continue;
        }
        let inputs_ready = match children(node) {
            None => true,
            Some((l, r)) => done.contains(&l) && done.contains(&r),
        };
        if inputs_ready {
            out.push((kind, node));
        }
    }
    if !final_done && done.contains(&root) && !created.contains(&(TaskKind::Final, root)) {
        out.push((TaskKind::Final, root));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_of_four_and_of_one() {
        assert_eq!(nodes((5, 5)), vec![(5, 5)]);
        let n = nodes((1, 4));
        assert_eq!(n, vec![(1, 1), (2, 2), (3, 3), (4, 4), (1, 2), (3, 4), (1, 4)]);
        let n = nodes((1, 5));
        assert_eq!(n.len(), 9, "5 leaves, 4 internal nodes");
        assert!(n.contains(&(1, 3)) && n.contains(&(4, 5)));
    }

    #[test]
    fn readiness_walks_up_the_tree() {
        let root = (1, 4);
        let mut done = BTreeSet::new();
        let mut created = BTreeSet::new();
        let first = ready(root, &done, false, &created);
        assert_eq!(first, (1..=4).map(|b| (TaskKind::Batch, (b, b))).collect::<Vec<_>>(), "all batches in parallel");
        created.extend(first);
        assert!(ready(root, &done, false, &created).is_empty(), "nothing twice");
        done.insert((1, 1));
        done.insert((2, 2));
        done.insert((4, 4));
        assert_eq!(ready(root, &done, false, &created), vec![(TaskKind::Aggregate, (1, 2))]);
        created.insert((TaskKind::Aggregate, (1, 2)));
        done.insert((3, 3));
        done.insert((1, 2));
        assert_eq!(ready(root, &done, false, &created), vec![(TaskKind::Aggregate, (3, 4))]);
        created.insert((TaskKind::Aggregate, (3, 4)));
        done.insert((3, 4));
        assert_eq!(ready(root, &done, false, &created), vec![(TaskKind::Aggregate, (1, 4))]);
        created.insert((TaskKind::Aggregate, (1, 4)));
        done.insert((1, 4));
        assert_eq!(ready(root, &done, false, &created), vec![(TaskKind::Final, (1, 4))]);
        created.insert((TaskKind::Final, (1, 4)));
        assert!(ready(root, &done, true, &created).is_empty());
    }

    #[test]
    fn single_batch_goes_straight_to_final() {
        let root = (9, 9);
        let created = BTreeSet::new();
        assert_eq!(ready(root, &BTreeSet::new(), false, &created), vec![(TaskKind::Batch, root)]);
        let done: BTreeSet<Range> = [root].into();
        let created: BTreeSet<_> = [(TaskKind::Batch, root)].into();
        assert_eq!(ready(root, &done, false, &created), vec![(TaskKind::Final, root)]);
    }
}
