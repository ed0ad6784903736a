//! Secret values never reach a log, an error message, a `Debug` print or an HTTP body.
//!
//! [`SecretString`] comes from the `secrecy` crate: its `Debug` prints `[REDACTED]`, it has no
//! `Display`, and the value is zeroised on drop. Reading it needs an explicit `expose_secret()`.

use std::future::Future;

pub use secrecy::{ExposeSecret, SecretString};

use crate::error::AwsError;

/// SHA-256 digest of a secret, for constant-time comparison without keeping the value itself.
///
/// Comparing digests rather than raw bytes also hides the secret's length from a timing observer
/// (`subtle`'s slice comparison returns early on a length mismatch).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    /// The digest of a value.
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

// ---------------------------------------------------------------------------------------------
// Ports: where secrets are kept (Secrets Manager in production).

/// Secrets Manager staging labels.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The staging label of a version being rotated in.
pub const AWSPENDING: &str = "AWSPENDING";
/// The staging label of the version before AWSCURRENT.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// Read access to secrets by staging label.
pub trait SecretStore: Send + Sync {
    /// The secret string of the version carrying `stage`, or `None` when no version carries
    /// that label (for example no rotation is in progress, so there is no `AWSPENDING`).
    fn secret_string(
        &self,
        secret_id: &str,
        stage: &str,
    ) -> impl Future<Output = Result<Option<SecretString>, AwsError>> + Send;
}

/// What a rotation step needs to know about a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretDescription {
    /// The secret's ARN.
    pub arn: String,
    /// Rotation is enabled.
    pub rotation_enabled: bool,
    /// Version id → staging labels.
    pub versions: std::collections::BTreeMap<String, Vec<String>>,
    /// The secret's tags (its kind).
    pub tags: std::collections::BTreeMap<String, String>,
}

impl SecretDescription {
    /// The version carrying `stage`, if any.
    pub fn version_with(&self, stage: &str) -> Option<&str> {
        self.versions.iter().find(|(_, s)| s.iter().any(|l| l == stage)).map(|(v, _)| v.as_str())
    }
}

/// Reads a secret version by version: which version carries which label (`DescribeSecret`,
/// cheap, no secret value), and one version's value. The hook uses it to know that its cached
/// view is the latest one before it refuses a value; rotation builds on it.
pub trait SecretVersions: Send + Sync {
    /// `DescribeSecret`.
    fn describe(
        &self,
        secret_id: &str,
    ) -> impl std::future::Future<Output = Result<SecretDescription, AwsError>> + Send;
    /// The value of one version, or `None` when no such version exists.
    fn version_value(
        &self,
        secret_id: &str,
        version_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<SecretString>, AwsError>> + Send;
}

/// Secrets Manager operations used by rotation and by `idc-guard scim-token`.
pub trait SecretAdmin: SecretStore + SecretVersions {
    /// `PutSecretValue(ClientRequestToken = version_id, VersionStages = [AWSPENDING])`.
    fn put_pending(
        &self,
        secret_id: &str,
        version_id: &str,
        value: &SecretString,
    ) -> impl std::future::Future<Output = Result<(), AwsError>> + Send;
    /// Moves AWSCURRENT to `to_version` (AWSPREVIOUS then labels `from_version`).
    fn promote(
        &self,
        secret_id: &str,
        to_version: &str,
        from_version: Option<&str>,
    ) -> impl std::future::Future<Output = Result<(), AwsError>> + Send;
    /// `GetRandomPassword`: letters and digits only (a header value and a URL-safe token).
    fn random_password(
        &self,
        length: i64,
    ) -> impl std::future::Future<Output = Result<SecretString, AwsError>> + Send;
    /// `RotateSecret` with a client request token (the version a person staged).
    fn start_rotation(
        &self,
        secret_id: &str,
        version_id: &str,
    ) -> impl std::future::Future<Output = Result<(), AwsError>> + Send;
}
