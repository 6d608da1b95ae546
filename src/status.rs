//! `zkpow status`: reads an aggregator's `/v1/status` and prints it as
//! tables for people, or as the JSON itself for scripts.

use std::fmt::Write as _;

use anyhow::Context as _;
use serde_json::Value;

use crate::token::BearerToken;

pub async fn fetch(base_url: &str, token: Option<&BearerToken>) -> anyhow::Result<Value> {
    let url = format!("{}/v1/status", base_url.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build()?;
    let mut req = client.get(&url);
    if let Some(t) = token {
        req = req.header("authorization", t.header_value());
    }
    let resp = req.send().await.with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.with_context(|| format!("GET {url}: the answer is not JSON"))?;
    if !status.is_success() {
        let msg = body["error"]["message"].as_str().unwrap_or("no message");
        anyhow::bail!("GET {url}: {status}: {msg}");
    }
    Ok(body)
}

/// The status as tables: sequences by state per rollup, provers, the
/// sender's pending submissions, rewards.
pub fn render(s: &Value) -> String {
    let mut out = String::new();
    let paused = if s["paused"].as_bool() == Some(true) { "  [PAUSED]" } else { "" };
    let _ = writeln!(out, "zkpow aggregator {}{paused}", s["version"].as_str().unwrap_or("?"));
    let failover = &s["failover"];
    match failover["role"].as_str() {
        Some("standby") => {
            let active = &s["active"];
            let _ = writeln!(
                out,
                "role: STANDBY ({}); the active process is {} (lease epoch {})",
                failover["holder"].as_str().unwrap_or("?"),
                active["holder"].as_str().unwrap_or("unknown"),
                active["epoch"]
            );
            return out;
        }
        Some("active") => {
            let _ = writeln!(
                out,
                "role: active ({}, lease epoch {})",
                failover["holder"].as_str().unwrap_or("?"),
                failover["epoch"]
            );
        }
        Some(other) => {
            let _ = writeln!(out, "role: {other}");
        }
        None => {}
    }
    out.push('\n');
    let states = ["posted", "proving", "proven", "committed", "verified", "skipped", "failed"];
    let _ = write!(out, "{:<16}{:<10}", "ROLLUP", "CHAIN");
    for st in states {
        let _ = write!(out, "{st:>10}");
    }
    out.push('\n');
    for r in s["rollups"].as_array().into_iter().flatten() {
        let _ = write!(out, "{:<16}{:<10}", r["name"].as_str().unwrap_or("?"), r["chain"].as_str().unwrap_or("?"));
        for st in states {
            let _ = write!(out, "{:>10}", r["sequences"][st].as_u64().unwrap_or(0));
        }
        out.push('\n');
    }
    let p = &s["provers"];
    let _ = writeln!(
        out,
        "\nprovers: {} registered, {} connected, {} working, {} quarantined",
        p["registered"], p["connected"], p["working"], p["quarantined"]
    );
    let sender = &s["sender"];
    let pending = sender["pending"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "\nsender: {} pending submission(s)", pending.len());
    if !pending.is_empty() {
        let _ = writeln!(out, "{:<16}{:>10}{:>10}{:>8}  NOTE", "ROLLUP", "BATCHES", "WINDOW", "COMMITS");
        for p in &pending {
            let range = format!("{}-{}", p["init_batch"], p["final_batch"]);
            let _ = writeln!(
                out,
                "{:<16}{:>10}{:>10}{:>8}  {}",
                p["rollup"].as_str().unwrap_or("?"),
                range,
                p["window_id"],
                p["commits"],
                p["note"].as_str().unwrap_or("")
            );
        }
    }
    let _ = writeln!(
        out,
        "\nrewards: {} wei   penalties: {} wei",
        sender["reward_wei"].as_str().unwrap_or("0"),
        sender["penalty_wei"].as_str().unwrap_or("0")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_section() {
        let s = serde_json::json!({
            "version": "0.1.0", "paused": true,
            "rollups": [{"name": "r1", "chain": "l1", "sequences": {"posted": 2, "verified": 7}}],
            "provers": {"registered": 2, "connected": 1, "working": 1, "quarantined": 1},
            "sender": {"pending": [{"rollup": "r1", "init_batch": 8, "final_batch": 9, "window_id": 1,
                        "commits": 1, "note": "committed; the reveal phase starts after T1"}],
                       "reward_wei": "150", "penalty_wei": "0"},
        });
        let text = render(&s);
        assert!(text.contains("[PAUSED]"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("r1") && l.split_whitespace().nth(6) == Some("7")), "{text}");
        assert!(text.contains("1 quarantined"), "{text}");
        assert!(text.contains("8-9") && text.contains("reveal phase"), "{text}");
        assert!(text.contains("rewards: 150 wei"), "{text}");
        assert!(!text.contains("role:"), "no failover section, no role line: {text}");
    }

    #[test]
    fn names_the_role_and_for_a_standby_the_active_process() {
        let active = serde_json::json!({
            "version": "0.1.0", "failover": {"role": "active", "holder": "h1:7:ab", "epoch": 3},
            "rollups": [], "provers": {}, "sender": {},
        });
        assert!(render(&active).contains("role: active (h1:7:ab, lease epoch 3)"), "{}", render(&active));
        let standby = serde_json::json!({
            "version": "0.1.0", "failover": {"role": "standby", "holder": "h2:9:cd"},
            "active": {"holder": "h1:7:ab", "epoch": 3, "expires_in_ms": 4000},
        });
        let text = render(&standby);
        assert!(text.contains("STANDBY (h2:9:cd)") && text.contains("h1:7:ab (lease epoch 3)"), "{text}");
        assert!(!text.contains("ROLLUP"), "a standby has no tables: {text}");
    }
}
