//! The rollup state: a sparse Merkle tree of accounts, its level layout per
//! arity, its node hash per circuit version, and the native path
//! computations the circuit is checked against.
//!
//! A leaf is the account packed into one field element,
//! `balance + 2^64 * nonce`, rather than a hash of it: the circuit decomposes
//! the balance and the nonce into 64 bits each, which makes the packing
//! injective at a cost of 128 constraints instead of a Poseidon leaf hash. The
//! empty account (balance 0, nonce 0) packs to 0.
//!
//! # Levels
//!
//! A tree of depth D addresses `2^D` accounts. With [`Arity::Four`] (circuit
//! versions 2 and 3) every level but possibly the top one is 4-ary: it
//! consumes two index bits, least significant first from the leaves, and
//! hashes a node's four children. For an odd D the top level is binary, on
//! the last index bit. With [`Arity::Two`] (version 1) every level is binary.
//!
//! # Node hashes
//!
//! [`hash_children`] picks the version's hash for a node's arity:
//!
//! | version | four children | two children |
//! |---|---|---|
//! | 1 | (none) | [`hash2`], width-3 Poseidon |
//! | 2 | [`hash4`], width-5 Poseidon | [`hash2`] |
//! | 3 | [`jive4`], Anemoi `l = 2`, 21 rounds | [`jive2`], Anemoi `l = 1`, 32 rounds |
//!
//! The binary level of an odd depth sits at the top rather than the bottom so
//! that a depth-D tree is exactly two depth-(D-1) trees joined by one
//! [`hash2`]: the 4-ary part, its empty-subtree roots and the positions of an
//! account within it are the same for D and D-1, and the leaf level always
//! hashes four accounts. Either placement costs the circuit the same (one
//! two-to-one hash and one swap per path).
//!
//! A path lists the siblings level by level from the leaves up; within a
//! 4-ary level, the three other children in increasing position order.
//! An untouched subtree at level l has the root `Z_l` with `Z_0 = 0` and
//! `Z_{l+1}` the level's hash of `Z_l` in every child.

use std::collections::{BTreeMap, HashMap};

use ff::Field;
use serde::{Deserialize, Serialize};

use super::anemoi::{jive2, jive4};
use super::poseidon::{hash2, hash4};
use super::{Fr, NodeHash, Version};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub balance: u64,
    pub nonce: u64,
}

impl Account {
    pub fn is_empty(&self) -> bool {
        self.balance == 0 && self.nonce == 0
    }

    pub fn leaf(&self) -> Fr {
        Fr::from(self.balance) + Fr::from(self.nonce) * two_pow_64()
    }

    /// The leaf as an integer, `balance + 2^64 * nonce` (the bits the circuit
    /// allocates).
    pub fn packed(&self) -> u128 {
        u128::from(self.balance) | (u128::from(self.nonce) << 64)
    }
}

pub fn two_pow_64() -> Fr {
    Fr::from(1u64 << 32).square()
}

/// How many children a node of the tree has (the top level of an odd-depth
/// 4-ary tree excepted, see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arity {
    Two,
    Four,
}

/// One level of a tree, counted from the leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Children per node: 2 or 4.
    pub arity: usize,
    /// Index bits consumed by the levels below this one.
    pub shift: usize,
}

impl Level {
    /// Index bits this level consumes: 1 or 2.
    pub fn bits(&self) -> usize {
        self.arity.trailing_zeros() as usize
    }

    /// Siblings a path lists for this level.
    pub fn siblings(&self) -> usize {
        self.arity - 1
    }

    /// Which child of its parent the node of `index`'s path at this level is.
    pub fn position(&self, index: u64) -> usize {
        ((index >> self.shift) & (self.arity as u64 - 1)) as usize
    }

    /// The node of `index`'s path at this level, numbered within the level.
    fn node_index(&self, index: u64) -> u64 {
        index >> self.shift
    }
}

/// The levels of a depth-`depth` tree, from the leaves up.
pub fn levels(arity: Arity, depth: usize) -> Vec<Level> {
    let mut out = Vec::with_capacity(depth);
    let mut shift = 0;
    while shift < depth {
        let level_arity = match arity {
            Arity::Four if depth - shift >= 2 => 4,
            _ => 2,
        };
        let level = Level { arity: level_arity, shift };
        shift += level.bits();
        out.push(level);
    }
    out
}

/// Siblings in a path of a depth-`depth` tree.
pub fn path_len(arity: Arity, depth: usize) -> usize {
    levels(arity, depth).iter().map(Level::siblings).sum()
}

/// The parent of `children` (two or four of them) in the tree of `version`.
pub fn hash_children(version: Version, children: &[Fr]) -> Fr {
    match (version.node_hash(), children) {
        (NodeHash::Poseidon, &[a, b]) => hash2(a, b),
        (NodeHash::Poseidon, &[a, b, c, d]) => hash4([a, b, c, d]),
        (NodeHash::Anemoi, &[a, b]) => jive2(a, b),
        (NodeHash::Anemoi, &[a, b, c, d]) => jive4([a, b, c, d]),
        _ => unreachable!("a tree level has 2 or 4 children, not {}", children.len()),
    }
}

/// Roots of empty subtrees by level, `0..=levels.len()`.
pub fn empty_roots(version: Version, levels: &[Level]) -> Vec<Fr> {
    let mut z = Vec::with_capacity(levels.len() + 1);
    z.push(Fr::ZERO);
    for (l, level) in levels.iter().enumerate() {
        z.push(hash_children(version, &vec![z[l]; level.arity]));
    }
    z
}

/// Sparse Merkle tree over `2^depth` accounts. Only non-empty nodes are
/// stored, so memory is proportional to `accounts * levels`.
#[derive(Clone, Debug)]
pub struct StateTree {
    version: Version,
    depth: usize,
    levels: Vec<Level>,
    accounts: BTreeMap<u64, Account>,
    /// (level, node index within the level) -> node; level 0 holds leaves.
    nodes: HashMap<(usize, u64), Fr>,
    empty: Vec<Fr>,
}

impl StateTree {
    /// An empty tree of the current circuit version.
    pub fn new(depth: usize) -> Self {
        StateTree::of_version(Version::CURRENT, depth)
    }

    /// An empty tree laid out and hashed as circuit `version` reads it.
    pub fn of_version(version: Version, depth: usize) -> Self {
        let levels = levels(version.arity(), depth);
        let empty = empty_roots(version, &levels);
        StateTree { version, depth, levels, accounts: BTreeMap::new(), nodes: HashMap::new(), empty }
    }

    pub fn with_accounts(depth: usize, accounts: impl IntoIterator<Item = (u64, Account)>) -> Self {
        StateTree::of_version_with_accounts(Version::CURRENT, depth, accounts)
    }

    pub fn of_version_with_accounts(
        version: Version,
        depth: usize,
        accounts: impl IntoIterator<Item = (u64, Account)>,
    ) -> Self {
        let mut t = StateTree::of_version(version, depth);
        for (i, a) in accounts {
            t.set(i, a);
        }
        t
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn arity(&self) -> Arity {
        self.version.arity()
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    pub fn capacity(&self) -> u64 {
        1u64 << self.depth
    }

    pub fn root(&self) -> Fr {
        self.node(self.levels.len(), 0)
    }

    pub fn get(&self, index: u64) -> Account {
        self.accounts.get(&index).copied().unwrap_or_default()
    }

    /// Non-empty accounts in index order (what a snapshot persists).
    pub fn accounts(&self) -> impl Iterator<Item = (u64, Account)> + '_ {
        self.accounts.iter().map(|(i, a)| (*i, *a))
    }

    fn node(&self, level: usize, index: u64) -> Fr {
        self.nodes.get(&(level, index)).copied().unwrap_or(self.empty[level])
    }

    /// The children of the node above `index`'s path at `level`, with `own`
    /// in the path's position.
    fn children(&self, l: usize, index: u64, own: Fr) -> Vec<Fr> {
        let level = self.levels[l];
        let first = level.node_index(index) & !(level.arity as u64 - 1);
        let position = level.position(index);
        (0..level.arity).map(|q| if q == position { own } else { self.node(l, first + q as u64) }).collect()
    }

    /// Sibling hashes from the leaf level up to just below the root,
    /// [`path_len`] of them.
    pub fn siblings(&self, index: u64) -> Vec<Fr> {
        assert!(index < self.capacity(), "account index {index} outside a depth-{} tree", self.depth);
        let mut out = Vec::with_capacity(path_len(self.arity(), self.depth));
        for (l, level) in self.levels.iter().enumerate() {
            let position = level.position(index);
            let children = self.children(l, index, Fr::ZERO);
            out.extend(children.iter().enumerate().filter(|(q, _)| *q != position).map(|(_, c)| *c));
        }
        out
    }

    pub fn set(&mut self, index: u64, account: Account) {
        assert!(index < self.capacity(), "account index {index} outside a depth-{} tree", self.depth);
        if account.is_empty() {
            self.accounts.remove(&index);
        } else {
            self.accounts.insert(index, account);
        }
        let mut cur = account.leaf();
        for l in 0..=self.levels.len() {
            let at = match self.levels.get(l) {
                Some(level) => level.node_index(index),
                None => 0,
            };
            if cur == self.empty[l] {
                self.nodes.remove(&(l, at));
            } else {
                self.nodes.insert((l, at), cur);
            }
            if l == self.levels.len() {
                break;
            }
            cur = hash_children(self.version, &self.children(l, index, cur));
        }
    }
}

/// Recomputes a root from a leaf, its index and its siblings in the tree of
/// `version` (the executor's self-check and the tests' reference for the
/// circuit). `None` when the path has the wrong length for the tree.
pub fn root_from_path(version: Version, depth: usize, leaf: Fr, index: u64, siblings: &[Fr]) -> Option<Fr> {
    if siblings.len() != path_len(version.arity(), depth) {
        return None;
    }
    let mut cur = leaf;
    let mut rest = siblings;
    for level in levels(version.arity(), depth) {
        let (sibs, tail) = rest.split_at(level.siblings());
        rest = tail;
        let mut children = sibs.to_vec();
        children.insert(level.position(index), cur);
        cur = hash_children(version, &children);
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ff::PrimeField;

    #[test]
    fn level_layouts() {
        let shape = |arity, depth| levels(arity, depth).iter().map(|l| (l.arity, l.shift)).collect::<Vec<_>>();
        assert_eq!(shape(Arity::Four, 4), vec![(4, 0), (4, 2)]);
        assert_eq!(shape(Arity::Four, 5), vec![(4, 0), (4, 2), (2, 4)]);
        assert_eq!(shape(Arity::Four, 1), vec![(2, 0)]);
        assert_eq!(shape(Arity::Two, 3), vec![(2, 0), (2, 1), (2, 2)]);
        assert_eq!(path_len(Arity::Four, 20), 30);
        assert_eq!(path_len(Arity::Four, 21), 31);
        assert_eq!(path_len(Arity::Two, 20), 20);
        for depth in 1..=32 {
            assert_eq!(levels(Arity::Four, depth).iter().map(Level::bits).sum::<usize>(), depth);
        }
    }

    #[test]
    fn empty_tree_root_is_empty_root() {
        for version in Version::ALL {
            for depth in [1, 4, 5] {
                let t = StateTree::of_version(version, depth);
                let empty = empty_roots(version, &levels(version.arity(), depth));
                assert_eq!(t.root(), *empty.last().unwrap(), "{version:?} {depth}");
            }
        }
    }

    #[test]
    fn versions_hash_differently() {
        // Same accounts, same depth: each version has its own root, so a
        // state (or genesis) of one version never passes for another's.
        let accounts = [(3u64, Account { balance: 10, nonce: 0 })];
        let roots: Vec<Fr> =
            Version::ALL.iter().map(|v| StateTree::of_version_with_accounts(*v, 4, accounts).root()).collect();
        assert_ne!(roots[0], roots[1]);
        assert_ne!(roots[1], roots[2]);
        assert_ne!(roots[0], roots[2]);
    }

    #[test]
    fn paths_match_root_and_clearing_restores_empty() {
        for version in Version::ALL {
            for depth in [4, 5] {
                let mut t = StateTree::of_version(version, depth);
                t.set(3, Account { balance: 10, nonce: 0 });
                t.set(13, Account { balance: 5, nonce: 2 });
                t.set(15, Account { balance: 1, nonce: 1 });
                for i in [0u64, 3, 12, 13, 14, 15] {
                    let path = t.siblings(i);
                    assert_eq!(path.len(), path_len(version.arity(), depth));
                    let root = root_from_path(version, depth, t.get(i).leaf(), i, &path);
                    assert_eq!(root, Some(t.root()), "{version:?} depth {depth} index {i}");
                }
                for i in [3u64, 13, 15] {
                    t.set(i, Account::default());
                }
                assert_eq!(t.root(), StateTree::of_version(version, depth).root());
                assert!(t.nodes.is_empty());
            }
        }
    }

    #[test]
    fn four_ary_node_is_the_versions_hash_of_its_children_in_position_order() {
        let accounts: Vec<(u64, Account)> = (0..4).map(|i| (i, Account { balance: 100 + i, nonce: i })).collect();
        let leaves: Vec<Fr> = accounts.iter().map(|(_, a)| a.leaf()).collect();
        let four = [leaves[0], leaves[1], leaves[2], leaves[3]];
        for (version, root) in [(Version::V2, hash4(four)), (Version::V3, jive4(four))] {
            let t = StateTree::of_version_with_accounts(version, 2, accounts.clone());
            assert_eq!(t.root(), root, "{version:?}");
            // Each position's path is the other three children, in order.
            for p in 0..4 {
                let mut others = leaves.clone();
                others.remove(p);
                assert_eq!(t.siblings(p as u64), others, "{version:?} position {p}");
            }
        }
    }

    #[test]
    fn odd_depth_is_two_halves_joined_by_the_binary_hash() {
        // The depth-5 tree is the depth-4 trees of its low and high halves
        // under one binary top level.
        let low = [(1u64, Account { balance: 7, nonce: 1 }), (14, Account { balance: 9, nonce: 0 })];
        let high = [(3u64, Account { balance: 2, nonce: 5 })];
        type Hash2 = fn(Fr, Fr) -> Fr;
        let binary: [(Version, Hash2); 2] = [(Version::V2, hash2), (Version::V3, jive2)];
        for (version, h2) in binary {
            let whole = StateTree::of_version_with_accounts(
                version,
                5,
                low.iter().copied().chain(high.iter().map(|(i, a)| (i + 16, *a))),
            );
            let l = StateTree::of_version_with_accounts(version, 4, low);
            let h = StateTree::of_version_with_accounts(version, 4, high);
            assert_eq!(whole.root(), h2(l.root(), h.root()), "{version:?}");
            // An account's path in the whole tree is its path in its half,
            // then the other half's root.
            let mut path = h.siblings(3);
            path.push(l.root());
            assert_eq!(whole.siblings(19), path, "{version:?}");
        }
    }

    #[test]
    fn wrong_path_length_is_none() {
        let t = StateTree::new(4);
        let mut path = t.siblings(5);
        path.pop();
        assert_eq!(root_from_path(Version::CURRENT, 4, Fr::ZERO, 5, &path), None);
    }

    #[test]
    fn packing_is_injective_on_range() {
        let a = Account { balance: u64::MAX, nonce: 0 };
        let b = Account { balance: 0, nonce: 1 };
        assert_ne!(a.leaf(), b.leaf());
        assert_eq!(b.leaf(), two_pow_64());
        let c = Account { balance: 0x1234, nonce: u64::MAX };
        assert_eq!(Fr::from_u128(c.packed()), c.leaf());
    }
}
