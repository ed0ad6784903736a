//! Okta's ports: the queue the event hook hands deliveries to, the Okta Management API calls
//! rotation makes, and the System Log where access-sync completes stub events. Adapters:
//! `adapters/sqs.rs` (queue) and `adapters/okta.rs` (Okta's HTTP API).

use std::future::Future;

use crate::error::AwsError;
use crate::secret::SecretString;

/// One message for a FIFO queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// The message body (the event's JSON).
    pub body: String,
    /// The FIFO message group: events of one group (or user) stay in order.
    pub group_id: String,
    /// The deduplication id (the event's uuid).
    pub deduplication_id: String,
    /// String message attributes (name, value).
    pub attributes: Vec<(&'static str, String)>,
}

/// A message the queue did not accept, by its index in the batch given to `send_batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedMessage {
    /// Its index in the batch.
    pub index: usize,
    /// SQS's error code.
    pub code: String,
    /// True when SQS blames the request (retrying the same message cannot succeed).
    pub sender_fault: bool,
}

/// SQS accepts at most 10 entries per `SendMessageBatch`...
pub const SQS_MAX_BATCH: usize = 10;
/// ... and at most 256 KiB of payload per batch, and so per message.
pub const SQS_MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// A FIFO queue.
pub trait EventQueue: Send + Sync {
    /// Sends up to [`SQS_MAX_BATCH`] messages in one call. `Ok` lists the messages that
    /// were not accepted (empty when all were); `Err` means the call as a whole failed.
    fn send_batch(
        &self,
        messages: &[QueueMessage],
    ) -> impl Future<Output = Result<Vec<RejectedMessage>, AwsError>> + Send;
}

/// An Okta API call that failed; never carries the credential.
#[derive(Debug, thiserror::Error)]
pub enum OktaError {
    /// Okta answered 4xx.
    #[error("Okta refused the request ({status}): {summary}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Okta's error summary.
        summary: String,
    },
    /// Okta's 429 persisted through every retry.
    #[error("Okta rate limit still exceeded after {attempts} attempts")]
    RateLimited {
        /// Attempts made.
        attempts: u32,
    },
    /// A 5xx answer.
    #[error("Okta answered {status} (server error)")]
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// Okta could not be reached.
    #[error("Okta could not be reached: {0}")]
    Transport(String),
    /// Okta answered something this client cannot read.
    #[error("Okta's reply was not understood: {0}")]
    BadReply(String),
    /// The Okta configuration (org URL, credential) is not usable.
    #[error("Okta configuration: {0}")]
    Config(String),
}

impl OktaError {
    /// Okta's HTTP status, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            OktaError::Refused { status, .. } | OktaError::Server { status } => Some(*status),
            _ => None,
        }
    }
    /// True when a later attempt may succeed (rate limit, 5xx, network).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            OktaError::RateLimited { .. } | OktaError::Server { .. } | OktaError::Transport(_)
        )
    }
}

/// What idc-guard asks of Okta.
pub trait OktaApi: Send + Sync {
    /// Sets the `Authorization` value Okta sends with the event hook's requests.
    fn set_event_hook_secret(
        &self,
        hook_id: &str,
        value: &SecretString,
    ) -> impl Future<Output = Result<(), OktaError>> + Send;
    /// Asks Okta to verify the event hook (Okta calls the endpoint); `true` when VERIFIED.
    fn verify_event_hook(
        &self,
        hook_id: &str,
    ) -> impl Future<Output = Result<bool, OktaError>> + Send;
    /// Sets the provisioning token of an app's default connection (may be refused for an app).
    fn set_app_provisioning_token(
        &self,
        app_id: &str,
        token: &SecretString,
    ) -> impl Future<Output = Result<(), OktaError>> + Send;
}

/// Okta's System Log, read by event uuid: where access-sync completes an event the hook could
/// only queue as a stub.
pub trait SystemLog: Send + Sync {
    /// The event with this uuid, published around `published`; `None` when the log has none.
    fn event_by_uuid(
        &self,
        uuid: &str,
        published: Option<chrono::DateTime<chrono::Utc>>,
    ) -> impl Future<Output = Result<Option<crate::okta::OktaEvent>, OktaError>> + Send;
}

/// Okta group memberships, for time-boxed elevation (scope `okta.groups.manage`; only groups
/// of type `OKTA_GROUP` can be changed).
pub trait OktaGroups: Send + Sync {
    /// The id of the Okta group with exactly this name.
    fn group_id(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, OktaError>> + Send;
    /// The id of the user with this login.
    fn user_id(
        &self,
        login: &str,
    ) -> impl Future<Output = Result<Option<String>, OktaError>> + Send;
    /// `PUT /api/v1/groups/{group}/users/{user}` (idempotent).
    fn add_member(
        &self,
        group_id: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<(), OktaError>> + Send;
    /// `DELETE /api/v1/groups/{group}/users/{user}` (a missing membership is fine).
    fn remove_member(
        &self,
        group_id: &str,
        user_id: &str,
    ) -> impl Future<Output = Result<(), OktaError>> + Send;
    /// The logins of a group's members.
    fn member_logins(
        &self,
        group_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, OktaError>> + Send;
    /// The user with this id or login (`GET /api/v1/users/{id}`); `None` when Okta has none.
    fn user(
        &self,
        id_or_login: &str,
    ) -> impl Future<Output = Result<Option<OktaUser>, OktaError>> + Send;
    /// Users whose primary e-mail is exactly this (`search=profile.email eq "…"`).
    fn users_by_email(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Vec<OktaUser>, OktaError>> + Send;
    /// The names of the groups a user is in (`GET /api/v1/users/{id}/groups`).
    fn user_group_names(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, OktaError>> + Send;
}

/// An Okta user as the grants see them: a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaUser {
    /// The Okta user id (`00u…`): what persons are compared by.
    pub id: String,
    /// `profile.login`.
    pub login: String,
    /// `profile.email`.
    pub email: String,
    /// `status` (`ACTIVE`, `SUSPENDED`, `DEPROVISIONED`, …).
    pub status: String,
}

impl OktaUser {
    /// Reads a user object of the Management API.
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        Some(Self {
            id: v["id"].as_str()?.to_owned(),
            login: v["profile"]["login"].as_str()?.to_owned(),
            email: v["profile"]["email"].as_str().unwrap_or_default().to_owned(),
            status: v["status"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// The user can sign in (`ACTIVE`, or `PASSWORD_EXPIRED`/`RECOVERY`/`LOCKED_OUT`, which are
    /// active users in a sign-in state); suspended and deprovisioned users are not.
    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "ACTIVE" | "PASSWORD_EXPIRED" | "RECOVERY" | "LOCKED_OUT")
    }
}

/// No System Log configured: stubs are processed as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSystemLog;

impl SystemLog for NoSystemLog {
    async fn event_by_uuid(
        &self,
        _: &str,
        _: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Option<crate::okta::OktaEvent>, OktaError> {
        Ok(None)
    }
}

const NO_OKTA: &str =
    "Okta is not configured (IDC_GUARD_OKTA_ORG_URL, IDC_GUARD_OKTA_API_SECRET_ARN)";

impl OktaGroups for NoSystemLog {
    async fn group_id(&self, _: &str) -> Result<Option<String>, OktaError> {
        Err(OktaError::Config(NO_OKTA.into()))
    }
    async fn user_id(&self, _: &str) -> Result<Option<String>, OktaError> {
        Err(OktaError::Config(NO_OKTA.into()))
    }
    async fn add_member(&self, _: &str, _: &str) -> Result<(), OktaError> {
        Err(OktaError::Config(NO_OKTA.into()))
    }
    async fn remove_member(&self, _: &str, _: &str) -> Result<(), OktaError> {
        Err(OktaError::Config(NO_OKTA.into()))
    }
    async fn member_logins(&self, _: &str) -> Result<Vec<String>, OktaError> {
        Err(OktaError::Config(NO_OKTA.into()))
    }
    async fn user(&self, _: &str) -> Result<Option<OktaUser>, OktaError> {
        Err(OktaError::Config(NO_OKTA.into()))
    }
    async fn users_by_email(&self, _: &str) -> Result<Vec<OktaUser>, OktaError> {
        Err(OktaError::Config(NO_OKTA.into()))
    }
    async fn user_group_names(&self, _: &str) -> Result<Vec<String>, OktaError> {
        Err(OktaError::Config(NO_OKTA.into()))
    }
}
