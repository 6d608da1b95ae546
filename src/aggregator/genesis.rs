//! A rollup's genesis file: the accounts its state tree starts from.

use anyhow::Context as _;

use crate::circuit::Account;

/// Reads a genesis file: `[[index, {"balance": .., "nonce": ..}], ...]`.
pub fn load_genesis(path: &std::path::Path) -> anyhow::Result<Vec<(u64, Account)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading genesis file {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing genesis file {}", path.display()))
}

/// Checks that genesis accounts fit a tree of `depth` levels and name each
/// index once (a tree would silently keep the last of two entries).
pub fn check_genesis(genesis: &[(u64, Account)], depth: usize) -> anyhow::Result<()> {
    let fits = |i: u64| depth >= 64 || i >> depth == 0;
    let mut seen = std::collections::BTreeSet::new();
    for (i, _) in genesis {
        anyhow::ensure!(
            fits(*i),
            "account index {i} does not fit the shape's tree of depth {depth} (indices below 2^{depth})"
        );
        anyhow::ensure!(seen.insert(*i), "account index {i} appears twice");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_accounts_must_fit_the_tree_and_be_unique() {
        let a = Account { balance: 5, nonce: 0 };
        check_genesis(&[(0, a), (15, a)], 4).unwrap();
        let err = format!("{:#}", check_genesis(&[(16, a)], 4).unwrap_err());
        assert!(err.contains("index 16") && err.contains("depth 4"), "{err}");
        let err = format!("{:#}", check_genesis(&[(3, a), (3, a)], 4).unwrap_err());
        assert!(err.contains("twice"), "{err}");
        check_genesis(&[(u64::MAX, a)], 64).unwrap();
    }
}
