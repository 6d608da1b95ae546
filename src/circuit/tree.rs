//! The rollup state: a sparse Merkle tree of accounts hashed with Poseidon.
//!
//! A leaf is the account packed into one field element,
//! `balance + 2^64 * nonce`, rather than a hash of it: the circuit range-checks
//! the balance to 64 bits, which makes the packing injective at a cost of 65
//! constraints instead of a 243-constraint leaf hash. The empty account
//! (balance 0, nonce 0) packs to 0, so an untouched subtree of height h has
//! the root `Z_h` with `Z_0 = 0`, `Z_{h+1} = H(Z_h, Z_h)`.

use std::collections::{BTreeMap, HashMap};

use ff::Field;
use serde::{Deserialize, Serialize};

use super::poseidon::hash2;
use super::Fr;

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
}

pub fn two_pow_64() -> Fr {
    Fr::from(1u64 << 32).square()
}

/// Roots of empty subtrees by height, `0..=depth`.
pub fn empty_roots(depth: usize) -> Vec<Fr> {
    let mut z = Vec::with_capacity(depth + 1);
    z.push(Fr::ZERO);
    for h in 0..depth {
        z.push(hash2(z[h], z[h]));
    }
    z
}

/// Sparse Merkle tree over `2^depth` accounts. Only non-empty nodes are
/// stored, so memory is proportional to `accounts * depth`.
#[derive(Clone, Debug)]
pub struct StateTree {
    depth: usize,
    accounts: BTreeMap<u64, Account>,
    /// (height, index at that height) -> node; height 0 holds leaves.
    nodes: HashMap<(usize, u64), Fr>,
    empty: Vec<Fr>,
}

impl StateTree {
    pub fn new(depth: usize) -> Self {
        StateTree { depth, accounts: BTreeMap::new(), nodes: HashMap::new(), empty: empty_roots(depth) }
    }

    pub fn with_accounts(depth: usize, accounts: impl IntoIterator<Item = (u64, Account)>) -> Self {
        let mut t = StateTree::new(depth);
        for (i, a) in accounts {
            t.set(i, a);
        }
        t
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    pub fn capacity(&self) -> u64 {
        1u64 << self.depth
    }

    pub fn root(&self) -> Fr {
        self.node(self.depth, 0)
    }

    pub fn get(&self, index: u64) -> Account {
        self.accounts.get(&index).copied().unwrap_or_default()
    }

    /// Non-empty accounts in index order (what a snapshot persists).
    pub fn accounts(&self) -> impl Iterator<Item = (u64, Account)> + '_ {
        self.accounts.iter().map(|(i, a)| (*i, *a))
    }

    fn node(&self, height: usize, index: u64) -> Fr {
        self.nodes.get(&(height, index)).copied().unwrap_or(self.empty[height])
    }

    /// Sibling hashes from the leaf level up to just below the root.
    pub fn siblings(&self, index: u64) -> Vec<Fr> {
        assert!(index < self.capacity(), "account index {index} outside a depth-{} tree", self.depth);
        (0..self.depth).map(|h| self.node(h, (index >> h) ^ 1)).collect()
    }

    pub fn set(&mut self, index: u64, account: Account) {
        assert!(index < self.capacity(), "account index {index} outside a depth-{} tree", self.depth);
        if account.is_empty() {
            self.accounts.remove(&index);
        } else {
            self.accounts.insert(index, account);
        }
        let mut cur = account.leaf();
        let mut idx = index;
        for h in 0..=self.depth {
            if cur == self.empty[h] {
                self.nodes.remove(&(h, idx));
            } else {
                self.nodes.insert((h, idx), cur);
            }
            if h == self.depth {
                break;
            }
            let sib = self.node(h, idx ^ 1);
            cur = if idx & 1 == 0 { hash2(cur, sib) } else { hash2(sib, cur) };
            idx >>= 1;
        }
    }
}

/// Recomputes a root from a leaf, its index and its siblings (the executor's
/// self-check and the tests' reference for the circuit).
pub fn root_from_path(leaf: Fr, index: u64, siblings: &[Fr]) -> Fr {
    let mut cur = leaf;
    for (h, sib) in siblings.iter().enumerate() {
        cur = if (index >> h) & 1 == 0 { hash2(cur, *sib) } else { hash2(*sib, cur) };
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tree_root_is_empty_root() {
        let t = StateTree::new(4);
        assert_eq!(t.root(), empty_roots(4)[4]);
    }

    #[test]
    fn paths_match_root_and_clearing_restores_empty() {
        let mut t = StateTree::new(5);
        t.set(3, Account { balance: 10, nonce: 0 });
        t.set(17, Account { balance: 5, nonce: 2 });
        t.set(31, Account { balance: 1, nonce: 1 });
        for i in [0u64, 3, 17, 30, 31] {
            assert_eq!(root_from_path(t.get(i).leaf(), i, &t.siblings(i)), t.root(), "index {i}");
        }
        for i in [3u64, 17, 31] {
            t.set(i, Account::default());
        }
        assert_eq!(t.root(), empty_roots(5)[5]);
        assert!(t.nodes.is_empty());
    }

    #[test]
    fn packing_is_injective_on_range() {
        let a = Account { balance: u64::MAX, nonce: 0 };
        let b = Account { balance: 0, nonce: 1 };
        assert_ne!(a.leaf(), b.leaf());
        assert_eq!(b.leaf(), two_pow_64());
    }
}
