//! Secret values never reach a log, an error message, a `Debug` print or an HTTP body.
//!
//! [`SecretString`] comes from the `secrecy` crate: its `Debug` prints `[REDACTED]`, it has no
//! `Display`, and the value is zeroised on drop. Reading it needs an explicit `expose_secret()`.

pub use secrecy::{ExposeSecret, SecretString};

/// SHA-256 digest of a secret, for constant-time comparison without keeping the value itself.
///
/// Comparing digests rather than raw bytes also hides the secret's length from a timing observer
/// (`subtle`'s slice comparison returns early on a length mismatch).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    pub fn of(value: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        Self(Sha256::digest(value).into())
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &SecretDigest) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretDigest(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_by_value_and_never_print_it() {
        let a = SecretDigest::of(b"Bearer s3cret-value");
        let b = SecretDigest::of(b"Bearer s3cret-value");
        let c = SecretDigest::of(b"Bearer s3cret-valuE");
        assert!(a.ct_eq(&b));
        assert!(!a.ct_eq(&c));
        assert!(!a.ct_eq(&SecretDigest::of(b"")));
        assert_eq!(format!("{a:?}"), "SecretDigest(***)");
    }

    #[test]
    fn secret_string_debug_is_redacted() {
        let s = SecretString::from("Bearer top-secret".to_owned());
        let printed = format!("{s:?}");
        assert!(!printed.contains("top-secret"), "{printed}");
    }
}
