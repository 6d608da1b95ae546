//! Bearer tokens: loading one from a file or an environment variable and
//! checking a presented `Authorization` header in constant time. Shared by
//! the HTTP server (the middleware in `api::auth`) and the prover worker
//! (its client side). A token is never printed: its `Debug` is redacted and
//! errors name only where it came from.

use std::path::Path;
use std::sync::Arc;

use actix_web::http::header::HeaderValue;
use sha3::{Digest, Keccak256};

/// Shortest token accepted: anything shorter is guessable over the network.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Clone)]
pub struct BearerToken(Arc<str>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token must be at least {MIN_TOKEN_LEN} characters")]
    TooShort,
    #[error("the token must be printable ASCII without spaces")]
    BadCharacters,
    #[error("reading the token file {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
}

impl BearerToken {
    pub fn new(token: &str) -> Result<Self, TokenError> {
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::BadCharacters);
        }
        if token.len() < MIN_TOKEN_LEN {
            return Err(TokenError::TooShort);
        }
        Ok(BearerToken(token.into()))
    }

    /// Reads a token file; surrounding whitespace (a trailing newline) is
    /// not part of the token.
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| TokenError::File { path: path.display().to_string(), source })?;
        BearerToken::new(text.trim())
    }

    pub fn from_env(var: &str) -> Result<Self, TokenError> {
        let v = std::env::var(var).map_err(|_| TokenError::MissingEnv(var.to_string()))?;
        BearerToken::new(v.trim())
    }

    /// The token from exactly one of a file or an environment variable, as
    /// the configuration names them; `what` prefixes errors (the config
    /// section).
    pub fn from_file_or_env(file: Option<&Path>, env: Option<&str>, what: &str) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        match (file, env) {
            (Some(f), None) => BearerToken::from_file(f).with_context(|| format!("{what}: token file {}", f.display())),
            (None, Some(v)) => BearerToken::from_env(v).with_context(|| format!("{what}: token variable {v}")),
            _ => anyhow::bail!("{what}: set exactly one of the token file and the token environment variable"),
        }
    }

    /// The `Authorization` header value for a client.
    pub fn header_value(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Whether a request's `Authorization` header carries this token. The
    /// comparison is of keccak digests, byte by byte without early exit, so
    /// its time says nothing about how much of a guess was right (nor about
    /// the token's length).
    pub fn matches(&self, header: Option<&HeaderValue>) -> bool {
        let Some(presented) = header.and_then(|h| h.to_str().ok()).and_then(strip_bearer) else {
            return false;
        };
        let want = Keccak256::digest(self.0.as_bytes());
        let got = Keccak256::digest(presented.as_bytes());
        let diff = want.iter().zip(got.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

fn strip_bearer(v: &str) -> Option<&str> {
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_and_redacts() {
        assert!(matches!(BearerToken::new("short"), Err(TokenError::TooShort)));
        assert!(matches!(BearerToken::new("with a space in it!!"), Err(TokenError::BadCharacters)));
        let t = BearerToken::new("0123456789abcdef").unwrap();
        assert_eq!(format!("{t:?}"), "BearerToken(<redacted>)");
    }

    #[test]
    fn matches_only_the_exact_token() {
        let t = BearerToken::new("0123456789abcdef").unwrap();
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(t.matches(Some(&h("Bearer 0123456789abcdef"))));
        assert!(t.matches(Some(&h("bearer 0123456789abcdef"))));
        assert!(!t.matches(Some(&h("Bearer 0123456789abcdeg"))));
        assert!(!t.matches(Some(&h("Bearer 0123456789abcdef0"))));
        assert!(!t.matches(Some(&h("Basic 0123456789abcdef"))));
        assert!(!t.matches(Some(&h("0123456789abcdef"))));
        assert!(!t.matches(None));
    }

    #[test]
    fn loads_from_file_and_env() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "0123456789abcdef\n").unwrap();
        assert!(BearerToken::from_file(f.path())
            .unwrap()
            .matches(Some(&HeaderValue::from_static("Bearer 0123456789abcdef"))));
        assert!(matches!(BearerToken::from_file(Path::new("/nonexistent/token")), Err(TokenError::File { .. })));
        assert!(matches!(BearerToken::from_env("ZKPOW_TEST_SURELY_UNSET_TOKEN"), Err(TokenError::MissingEnv(_))));
    }
}
