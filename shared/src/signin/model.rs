//! CloudTrail records, parsed tolerantly, and their normalised sign-in meaning.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The CloudTrail fields the sign-in checks read, parsed straight from JSON (no intermediate
/// tree: this is the scan's hot path). Unknown fields are ignored and a field of the wrong JSON
/// type reads as absent, so one odd field never loses a record.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record<'a> {
    /// `eventTime`: when the call was made, as written (read in [`Record::activity`], so that a
    /// present but unreadable time is told apart from a missing one).
    #[serde(default, borrow, deserialize_with = "lenient::scalar")]
    pub event_time: Option<Cow<'a, str>>,
    /// `eventSource`, e.g. `signin.amazonaws.com`.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub event_source: Option<Cow<'a, str>>,
    /// `eventName`, e.g. `ConsoleLogin`.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub event_name: Option<Cow<'a, str>>,
    /// `eventType`, e.g. `AwsConsoleSignIn` or `AwsServiceEvent`.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub event_type: Option<Cow<'a, str>>,
    /// `eventID`: CloudTrail's id of the record.
    #[serde(rename = "eventID", default, borrow, deserialize_with = "lenient::string")]
    pub event_id: Option<Cow<'a, str>>,
    /// `awsRegion`.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub aws_region: Option<Cow<'a, str>>,
    /// `sourceIPAddress`: an address, or an AWS service's name when AWS made the call.
    #[serde(rename = "sourceIPAddress", default, borrow, deserialize_with = "lenient::string")]
    pub source_ip_address: Option<Cow<'a, str>>,
    /// `userAgent`.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub user_agent: Option<Cow<'a, str>>,
    /// `userIdentity`: who made the call.
    #[serde(default, borrow, deserialize_with = "lenient::object")]
    pub user_identity: UserIdentity<'a>,
    /// `additionalEventData` (`MFAUsed`, `CredentialType`, …).
    #[serde(default, borrow, deserialize_with = "lenient::object")]
    pub additional_event_data: AdditionalEventData<'a>,
    /// `serviceEventDetails` (IdC sign-in outcomes, portal role requests).
    #[serde(default, borrow, deserialize_with = "lenient::object")]
    pub service_event_details: ServiceEventDetails<'a>,
    /// `responseElements` (`ConsoleLogin`'s `Success`/`Failure`).
    #[serde(default, borrow, deserialize_with = "lenient::object")]
    pub response_elements: ResponseElements<'a>,
    /// `requestParameters` (portal `accountId`/`roleName`).
    #[serde(default, borrow, deserialize_with = "lenient::object")]
    pub request_parameters: RequestParameters<'a>,
    /// `errorCode` when the call failed.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub error_code: Option<Cow<'a, str>>,
    /// `errorMessage` (a failed console sign-in: `Failed authentication`).
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub error_message: Option<Cow<'a, str>>,
    /// `recipientAccountId`: the account the record belongs to.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub recipient_account_id: Option<Cow<'a, str>>,
    /// Envelope fields, so one pass tells a record from a container of records: an S3 log
    /// file's `Records`, LookupEvents output's `Events`, an EventBridge event's `detail`.
    #[serde(rename = "Records", default, borrow)]
    pub records: Option<Vec<&'a RawValue>>,
    /// LookupEvents output's `Events`.
    #[serde(rename = "Events", default, borrow)]
    pub events: Option<Vec<&'a RawValue>>,
    /// An EventBridge event's `detail-type`.
    #[serde(rename = "detail-type", default, borrow, deserialize_with = "lenient::string")]
    pub detail_type: Option<Cow<'a, str>>,
    /// An EventBridge event's `detail` (the record itself).
    #[serde(default, borrow)]
    pub detail: Option<&'a RawValue>,
}

/// `userIdentity`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity<'a> {
    /// `type`: `Root`, `IAMUser`, `AssumedRole`, `IdentityCenterUser`, `Unknown`, …
    #[serde(rename = "type", default, borrow, deserialize_with = "lenient::string")]
    pub kind: Option<Cow<'a, str>>,
    /// `userName` (IAM user, or the IdC user name in older records).
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub user_name: Option<Cow<'a, str>>,
    /// `principalId`.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub principal_id: Option<Cow<'a, str>>,
    /// `arn`: the caller's principal.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub arn: Option<Cow<'a, str>>,
    /// `accountId`: the caller's account.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub account_id: Option<Cow<'a, str>>,
    /// `credentialId`: the portal session, for token-replay checks.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub credential_id: Option<Cow<'a, str>>,
    /// `onBehalfOf` (2025 shape): the identity store user.
    #[serde(default, borrow, deserialize_with = "lenient::object")]
    pub on_behalf_of: OnBehalfOf<'a>,
    /// `sessionContext`: the role session's issuer.
    #[serde(default, borrow, deserialize_with = "lenient::object")]
    pub session_context: SessionContext<'a>,
}

/// `userIdentity.onBehalfOf`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnBehalfOf<'a> {
    /// `userId`: the identity store user id.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub user_id: Option<Cow<'a, str>>,
    /// `identityStoreArn`.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub identity_store_arn: Option<Cow<'a, str>>,
}

/// `userIdentity.sessionContext`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext<'a> {
    /// `sessionIssuer`.
    #[serde(default, borrow, deserialize_with = "lenient::object")]
    pub session_issuer: SessionIssuer<'a>,
}

/// `userIdentity.sessionContext.sessionIssuer`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer<'a> {
    /// `userName`: the role's name (`AWSReservedSSO_<permission set>_<suffix>` for IdC).
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub user_name: Option<Cow<'a, str>>,
    /// `arn`: the role's ARN (`arn:aws:iam::<account>:role/<path><name>`).
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub arn: Option<Cow<'a, str>>,
}

/// `additionalEventData`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AdditionalEventData<'a> {
    /// `CredentialType` (IdC sign-ins).
    #[serde(rename = "CredentialType", default, borrow, deserialize_with = "lenient::string")]
    pub credential_type: Option<Cow<'a, str>>,
    /// `UserName` (IdC sign-ins, older records).
    #[serde(rename = "UserName", default, borrow, deserialize_with = "lenient::string")]
    pub user_name: Option<Cow<'a, str>>,
    /// `MFAUsed`: `Yes` or `No` (console sign-ins).
    #[serde(rename = "MFAUsed", default, borrow, deserialize_with = "lenient::string")]
    pub mfa_used: Option<Cow<'a, str>>,
    /// `SamlProviderArn`: the console sign-in was federated through this SAML provider.
    #[serde(rename = "SamlProviderArn", default, borrow, deserialize_with = "lenient::string")]
    pub saml_provider_arn: Option<Cow<'a, str>>,
}

/// `serviceEventDetails`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServiceEventDetails<'a> {
    /// `UserAuthentication`: `Success` or `Failure`.
    #[serde(rename = "UserAuthentication", default, borrow, deserialize_with = "lenient::string")]
    pub user_authentication: Option<Cow<'a, str>>,
    /// `CredentialChallenge`: `Success` or `Failure`.
    #[serde(rename = "CredentialChallenge", default, borrow, deserialize_with = "lenient::string")]
    pub credential_challenge: Option<Cow<'a, str>>,
    /// `CredentialVerification`: `Success` or `Failure`.
    #[serde(
        rename = "CredentialVerification",
        default,
        borrow,
        deserialize_with = "lenient::string"
    )]
    pub credential_verification: Option<Cow<'a, str>>,
    /// `account_id` of a portal role request.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub account_id: Option<Cow<'a, str>>,
    /// `role_name` of a portal role request.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub role_name: Option<Cow<'a, str>>,
}

/// `responseElements`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseElements<'a> {
    /// `ConsoleLogin`: `Success` or `Failure`.
    #[serde(rename = "ConsoleLogin", default, borrow, deserialize_with = "lenient::string")]
    pub console_login: Option<Cow<'a, str>>,
}

/// `requestParameters`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestParameters<'a> {
    /// `accountId` of a portal call.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub account_id: Option<Cow<'a, str>>,
    /// `roleName` of a portal call.
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub role_name: Option<Cow<'a, str>>,
    /// `principalId` of an account assignment change (a group or user id).
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub principal_id: Option<Cow<'a, str>>,
    /// `grantType` of an OIDC `CreateToken` (`urn:ietf:params:oauth:grant-type:device_code`).
    #[serde(default, borrow, deserialize_with = "lenient::string")]
    pub grant_type: Option<Cow<'a, str>>,
}

/// Field deserializers that read a value of the wrong JSON type as absent instead of failing.
mod lenient {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

    struct StringOrNothing;

    impl<'de> Visitor<'de> for StringOrNothing {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok((!v.is_empty()).then_some(Cow::Borrowed(v)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok((!v.is_empty()).then(|| Cow::Owned(v.to_owned())))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok((!v.is_empty()).then_some(Cow::Owned(v)))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
        d.deserialize_any(StringOrNothing)
    }

    /// A string, or a number as its text (an epoch time); anything else is absent.
    pub fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
        d.deserialize_any(ScalarText)
    }

    struct ScalarText;

    impl<'de> Visitor<'de> for ScalarText {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            StringOrNothing.visit_borrowed_str(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            StringOrNothing.visit_str(v)
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            StringOrNothing.visit_string(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(format!("{}", v as i64))))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            StringOrNothing.visit_seq(seq)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            StringOrNothing.visit_map(map)
        }
    }

    struct ObjectOrDefault<T>(std::marker::PhantomData<T>);

    impl<'de, T: de::Deserialize<'de> + Default> Visitor<'de> for ObjectOrDefault<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(T::default())
        }
        /// Exports (Athena, CloudTrail Lake, SIEMs) write nested objects as JSON text: decoded
        /// when it is an object, otherwise unknown (the default), never an error.
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            if !v.trim_start().starts_with('{') {
                return Ok(T::default());
            }
            Ok(serde_json::from_str::<serde_json::Value>(v)
                .ok()
                .and_then(|value| T::deserialize(value).ok())
                .unwrap_or_default())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<T, E> {
            Ok(T::default())
        }
    }

    pub fn object<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: de::Deserialize<'de> + Default,
    {
        d.deserialize_any(ObjectOrDefault(std::marker::PhantomData))
    }
}

/// What a record means for sign-in analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Kind {
    /// `signin.amazonaws.com` `UserAuthentication`: an IAM Identity Center sign-in.
    IdcSignIn {
        /// The sign-in succeeded.
        success: bool,
        /// The credential used (`PASSWORD`, `EXTERNAL_IDP`, …).
        credential_type: Option<Text>,
    },
    /// `CredentialChallenge` / `CredentialVerification` (IdC directory or AD users only).
    Credential {
        /// `CredentialChallenge` or `CredentialVerification`.
        step: Text,
        /// The step succeeded.
        success: bool,
    },
    /// `sso.amazonaws.com`: portal and CLI use (`Authenticate`, `Federate`, `GetRoleCredentials`, …).
    Portal {
        /// The portal action (`Federate`, `GetRoleCredentials`, …).
        action: Text,
        /// The account of a role request.
        account_id: Option<Text>,
        /// The role (permission set) of a role request.
        role_name: Option<Text>,
    },
    /// `ConsoleLogin`.
    ConsoleLogin {
        /// The sign-in succeeded.
        success: bool,
        /// MFA was used (`MFAUsed = Yes`).
        mfa_used: bool,
        /// The record says whether MFA was used (`MFAUsed` readable): when it does not, no
        /// finding says "without MFA".
        mfa_known: bool,
        /// The root user signed in.
        root: bool,
        /// An IAM user signed in.
        iam_user: bool,
        /// An IdC role session signed in to the console (`AWSReservedSSO_*`).
        identity_center_role: bool,
        /// Federated through a SAML provider (the identity provider does the MFA).
        federated: bool,
    },
    /// `sts:AssumeRoleWithSAML` made by IdC on the user's behalf: its source IP is AWS's.
    AssumeRoleWithSaml,
    /// `identitystore-scim.amazonaws.com`: a call to IdC's SCIM endpoint with the SCIM token
    /// (Okta's provisioning, or someone else holding the token).
    ScimCall {
        /// The SCIM operation (`CreateUser`, `PatchGroup`, …).
        operation: Text,
        /// The call succeeded (no `errorCode`).
        success: bool,
    },
    /// A change to IAM Identity Center itself: its admin API (`sso.amazonaws.com`: account
    /// assignments, permission sets and their policies, provisioning) or its directory
    /// (`sso-directory.amazonaws.com`: identity source, external IdP, SCIM, MFA).
    /// Boxed: rare, and large; every activity in the order window carries a `Kind`.
    IdcChange(Box<IdcChange>),
    /// `sso-oauth.amazonaws.com` `CreateToken` with the device authorization grant: a device
    /// (the CLI, or whoever started the flow) redeeming a code a person approved in a browser.
    DeviceToken {
        /// The token was issued (no `errorCode`).
        success: bool,
    },
    /// Anything else: kept for `diagnose`, ignored by the detectors.
    Other,
}

/// A change to IAM Identity Center itself (see [`Kind::IdcChange`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdcChange {
    /// `sso.amazonaws.com` or `sso-directory.amazonaws.com`.
    pub source: Text,
    /// The API action (`CreateAccountAssignment`, `DeleteMfaDeviceForUser`, …).
    pub action: Text,
    /// It succeeded (no `errorCode`).
    pub success: bool,
    /// The role the caller's session belongs to (`sessionIssuer.userName`), when a role.
    pub caller_role: Option<Text>,
    /// That role's ARN (`sessionIssuer.arn`).
    pub caller_role_arn: Option<Text>,
    /// The caller's principal ARN (`userIdentity.arn`).
    pub caller_arn: Option<Text>,
    /// The group or user an account assignment change is for.
    pub principal: Option<Text>,
}

/// The IAM Identity Center admin API's changes (`sso.amazonaws.com`): every other action of
/// that source is the access portal's.
pub const IDC_ADMIN_CHANGES: &[&str] = &[
    "CreateAccountAssignment",
    "DeleteAccountAssignment",
    "CreatePermissionSet",
    "UpdatePermissionSet",
    "DeletePermissionSet",
    "AttachManagedPolicyToPermissionSet",
    "DetachManagedPolicyFromPermissionSet",
    "AttachCustomerManagedPolicyReferenceToPermissionSet",
    "DetachCustomerManagedPolicyReferenceFromPermissionSet",
    "PutInlinePolicyToPermissionSet",
    "DeleteInlinePolicyFromPermissionSet",
    "PutPermissionsBoundaryToPermissionSet",
    "DeletePermissionsBoundaryFromPermissionSet",
    "ProvisionPermissionSet",
    "AssociateDirectory",
    "DisassociateDirectory",
    "UpdateInstanceAccessControlAttributeConfiguration",
    "DeleteInstanceAccessControlAttributeConfiguration",
];

/// Text an [`Activity`] carries. Shared, because most of it repeats from event to event (the
/// account, identity store, user, session, permission set, event name): a scan stores each
/// value once and an activity holds pointers, not copies.
pub type Text = Arc<str>;

/// Hands out one shared [`Text`] per distinct value, for the activities of one input stream.
#[derive(Debug, Default)]
pub struct Interner {
    known: HashSet<Text, foldhash::fast::RandomState>,
}

impl Interner {
    /// Distinct values kept before starting over: bounds memory on a stream of unique values
    /// (a value dropped here stays valid wherever it is held).
    const LIMIT: usize = 1 << 20;

    /// The shared text for `value`.
    pub fn text(&mut self, value: &str) -> Text {
        if let Some(t) = self.known.get(value) {
            return Arc::clone(t);
        }
        if self.known.len() >= Self::LIMIT {
            self.known.clear();
        }
        let t: Text = Arc::from(value);
        self.known.insert(Arc::clone(&t));
        t
    }

    fn own(&mut self, value: &Option<Cow<'_, str>>) -> Option<Text> {
        value.as_deref().map(|v| self.text(v))
    }
}

/// A normalised sign-in event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// When.
    pub time: DateTime<Utc>,
    /// CloudTrail's event id.
    pub event_id: String,
    /// What it means.
    pub kind: Kind,
    /// User name (the SAML NameID for Okta users) when the record carries one.
    pub user_name: Option<Text>,
    /// Identity store user id (2025 shape) when present.
    pub user_id: Option<Text>,
    /// The portal session (`credentialId`), for token-replay checks.
    pub session_id: Option<Text>,
    /// The caller's address; `None` when AWS made the call (never geolocate those).
    pub source_ip: Option<IpAddr>,
    /// `sourceIPAddress` as written when it is not an address (a service name, `AWS Internal`,
    /// an export's placeholder): kept for the evidence, never geolocated.
    pub source_text: Option<Text>,
    /// The caller's user agent (console sign-ins only: the findings that show it).
    pub user_agent: Option<Text>,
    /// The account the event belongs to.
    pub account_id: Option<Text>,
    /// Identity store of the user (2025 shape), for resolving `user_id` to a user name.
    pub identity_store_id: Option<Text>,
    /// The IdC permission set in use (portal role credentials, or an `AWSReservedSSO_*` console
    /// session).
    pub permission_set: Option<Text>,
    /// `eventSource`/`eventName`, and the call's `errorCode` when it failed (for `diagnose`).
    pub event_source: Option<Text>,
    /// `eventName`.
    pub event_name: Option<Text>,
    /// `errorCode` when the call failed.
    pub error_code: Option<Text>,
}

impl Activity {
    /// The order activities are processed in: time, then the event id's first 16 bytes, then the
    /// address. Cheap to compute (no allocation or hashing) and the same in every run, so ties
    /// are broken alike (event ids are UUIDs: their first 16 bytes tell them apart).
    pub fn order_key(&self) -> (DateTime<Utc>, u128, Option<IpAddr>) {
        let mut prefix = [0u8; 16];
        let id = self.event_id.as_bytes();
        let n = id.len().min(16);
        prefix[..n].copy_from_slice(&id[..n]);
        (self.time, u128::from_be_bytes(prefix), self.source_ip)
    }

    /// Whether `other` is this same event read again: the same id, time and address (the parts
    /// of [`Activity::identity`]).
    pub fn same_event(&self, other: &Activity) -> bool {
        self.time == other.time
            && self.event_id == other.event_id
            && self.source_ip == other.source_ip
    }

    /// What identifies this event for a finding made of it alone: its id, time and address, so
    /// an export that repeats an `eventID` for different events never merges their findings,
    /// while the same event read again keeps its finding's id.
    pub fn identity(&self) -> String {
        let ip = self.source_ip.map(|i| i.to_string()).unwrap_or_default();
        // The event and the user too: an export that gives two different events one id, time
        // and address must not merge them.
        format!(
            "{}\n{}\n{ip}\n{}\n{}",
            self.event_id,
            self.time.timestamp_millis(),
            self.event_name.as_deref().unwrap_or_default(),
            self.user_name.as_deref().or(self.user_id.as_deref()).unwrap_or_default()
        )
    }
}

/// A sign-in's outcome from what the record says: `Success`/`Failure` when written, else
/// (the field is absent, `null` or unreadable) a failure only when the record carries an error.
/// An unreadable outcome is never read as a failure.
fn outcome(written: Option<&str>, failed: bool) -> bool {
    match written {
        Some(v) if v.eq_ignore_ascii_case("success") => true,
        Some(v) if v.eq_ignore_ascii_case("failure") => false,
        _ => !failed,
    }
}

/// Why a record was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// Not JSON, or not an object.
    #[error("not a CloudTrail record: {0}")]
    Malformed(String),
    /// The record has no `eventTime`.
    #[error("no eventTime")]
    NoTime,
    /// The record's `eventTime` is no time in any form read (see [`crate::time_forms`]).
    #[error("unreadable eventTime {0:?}")]
    BadTime(String),
}

/// The permission set of the role a session was issued by
/// ([`crate::idc_roles::session_permission_set`]).
fn issuer_permission_set<'s>(ui: &'s UserIdentity<'_>) -> Option<&'s str> {
    let issuer = &ui.session_context.session_issuer;
    crate::idc_roles::session_permission_set(
        issuer.user_name.as_deref(),
        issuer.arn.as_deref(),
        ui.arn.as_deref(),
    )
}

impl<'a> Record<'a> {
    /// Parses one record from its JSON text.
    pub fn from_json(text: &'a str) -> Result<Record<'a>, Skip> {
        if !text.trim_start().starts_with('{') {
            return Err(Skip::Malformed("not a JSON object".into()));
        }
        serde_json::from_str(text).map_err(|e| Skip::Malformed(e.to_string()))
    }

    /// An id from what the record says, for records without an `eventID` (hand-made or SIEM
    /// exports): the same record always gets the same id, distinct records distinct ones.
    fn content_id(&self, time: &str) -> String {
        use sha2::{Digest, Sha256};
        let ui = &self.user_identity;
        let mut h = Sha256::new();
        for part in [
            Some(time),
            self.event_source.as_deref(),
            self.event_name.as_deref(),
            ui.kind.as_deref(),
            ui.user_name.as_deref(),
            ui.principal_id.as_deref(),
            ui.credential_id.as_deref(),
            self.source_ip_address.as_deref(),
            self.user_agent.as_deref(),
            self.error_code.as_deref(),
            self.recipient_account_id.as_deref(),
            self.response_elements.console_login.as_deref(),
        ] {
            h.update(part.unwrap_or("\u{0}").as_bytes());
            h.update([0x1f]);
        }
        format!("content-{}", hex::encode(&h.finalize()[..12]))
    }

    /// A change to IAM Identity Center itself, with who made it.
    fn idc_change(&self, texts: &mut Interner, source: &str, action: &str) -> Kind {
        let ui = &self.user_identity;
        Kind::IdcChange(Box::new(IdcChange {
            source: texts.text(source),
            action: texts.text(action),
            success: !self.failed(),
            caller_role: texts.own(&ui.session_context.session_issuer.user_name),
            caller_role_arn: texts.own(&ui.session_context.session_issuer.arn),
            caller_arn: texts.own(&ui.arn),
            principal: texts.own(&self.request_parameters.principal_id),
        }))
    }

    /// The record says the call failed (an error code or message).
    fn failed(&self) -> bool {
        self.error_code.is_some() || self.error_message.is_some()
    }

    /// Normalises the record. Every record with a time becomes an [`Activity`] (`Kind::Other`
    /// for those that are not sign-in related). A record without an `eventID` gets one from
    /// its content.
    pub fn activity(self) -> Result<Activity, Skip> {
        self.activity_in(&mut Interner::default())
    }

    /// [`Record::activity`], with its text shared through `texts` (see [`Text`]).
    pub fn activity_in(self, texts: &mut Interner) -> Result<Activity, Skip> {
        let written = self.event_time.as_deref().ok_or(Skip::NoTime)?;
        // RFC 3339 as CloudTrail writes it, or an export's rewriting (space, nanoseconds, no
        // zone, epoch): the same forms the Okta side reads.
        let time = crate::time_forms::parse_time_text(written)
            .ok_or_else(|| Skip::BadTime(written.chars().take(40).collect()))?;
        let source = self.event_source.as_deref().unwrap_or_default();
        let name = self.event_name.as_deref().unwrap_or_default();
        let ui = &self.user_identity;
        let extra = &self.additional_event_data;
        let details = &self.service_event_details;
        let identity_type = ui.kind.as_deref().unwrap_or_default();
        let kind = match (source, name) {
            ("signin.amazonaws.com", "UserAuthentication") => Kind::IdcSignIn {
                success: outcome(details.user_authentication.as_deref(), self.failed()),
                credential_type: texts.own(&extra.credential_type),
            },
            ("signin.amazonaws.com", step @ ("CredentialChallenge" | "CredentialVerification")) => {
                let outcome = if step == "CredentialChallenge" {
                    &details.credential_challenge
                } else {
                    &details.credential_verification
                };
                Kind::Credential {
                    step: texts.text(step),
                    success: self.error_code.is_none()
                        && outcome.as_deref().is_none_or(|v| v == "Success"),
                }
            }
            ("signin.amazonaws.com", "ConsoleLogin") => {
                let idc_set = issuer_permission_set(ui);
                let mfa = extra.mfa_used.as_deref().map(|m| m.eq_ignore_ascii_case("yes"));
                Kind::ConsoleLogin {
                    success: outcome(
                        self.response_elements.console_login.as_deref(),
                        self.failed(),
                    ),
                    mfa_used: mfa.unwrap_or(false),
                    mfa_known: mfa.is_some(),
                    root: identity_type == "Root",
                    iam_user: identity_type == "IAMUser",
                    identity_center_role: idc_set.is_some(),
                    federated: extra.saml_provider_arn.as_deref().is_some_and(|a| !a.is_empty()),
                }
            }
            ("sso.amazonaws.com", action) if IDC_ADMIN_CHANGES.contains(&action) => {
                self.idc_change(texts, source, action)
            }
            ("sso-directory.amazonaws.com", action) => self.idc_change(texts, source, action),
            ("sso-oauth.amazonaws.com", "CreateToken")
                if self
                    .request_parameters
                    .grant_type
                    .as_deref()
                    .is_some_and(|g| g.ends_with("device_code")) =>
            {
                Kind::DeviceToken { success: !self.failed() }
            }
            ("sso.amazonaws.com", action) => Kind::Portal {
                action: texts.text(action),
                account_id: texts
                    .own(&details.account_id)
                    .or_else(|| texts.own(&self.request_parameters.account_id)),
                role_name: texts
                    .own(&details.role_name)
                    .or_else(|| texts.own(&self.request_parameters.role_name)),
            },
            ("sts.amazonaws.com", "AssumeRoleWithSAML") => Kind::AssumeRoleWithSaml,
            ("identitystore-scim.amazonaws.com", operation) => Kind::ScimCall {
                operation: texts.text(operation),
                success: self.error_code.is_none(),
            },
            _ => Kind::Other,
        };
        // The permission set behind an IdC console session: AWSReservedSSO_<name>_<hash>.
        let permission_set = match &kind {
            Kind::Portal { role_name, .. } => role_name.clone(),
            Kind::ConsoleLogin { identity_center_role: true, .. }
            | Kind::IdcChange(_)
            | Kind::Other => issuer_permission_set(ui).map(|set| texts.text(set)),
            _ => None,
        };
        // The user: the 2025 shape names the identity-store user; sign-ins carry the user name.
        // With no name at all, the principal id (an IAM user's `AIDA…`) is the user: evidence
        // keeps what the record says.
        let user_name =
            texts.own(&extra.user_name).or_else(|| texts.own(&ui.user_name)).or_else(|| {
                let principal = ui.principal_id.as_deref()?;
                match principal.split_once(':') {
                    Some((_, n)) => Some(texts.text(n)),
                    None if identity_type != "Root" => Some(texts.text(principal)),
                    None => None,
                }
            });
        // AWS-made calls: the SAML role assumption (source is the IdC service) and any record
        // whose source is a service name rather than an address.
        let source_ip = match kind {
            Kind::AssumeRoleWithSaml => None,
            _ => self.source_ip_address.as_deref().and_then(|ip| ip.parse().ok()),
        };
        let source_text = match (source_ip, &kind) {
            (
                None,
                Kind::IdcSignIn { .. } | Kind::ConsoleLogin { .. } | Kind::Credential { .. },
            ) => texts.own(&self.source_ip_address),
            _ => None,
        };
        // Kept only where a finding uses it (console sign-ins, SCIM calls): most records are API
        // calls, and their user agents are long.
        let user_agent = matches!(kind, Kind::ConsoleLogin { .. } | Kind::ScimCall { .. })
            .then(|| texts.own(&self.user_agent))
            .flatten();
        let event_id = match self.event_id.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
            Some(id) => id.to_owned(),
            None => self.content_id(written),
        };
        Ok(Activity {
            time,
            event_id,
            kind,
            user_name,
            user_id: texts.own(&ui.on_behalf_of.user_id),
            identity_store_id: ui
                .on_behalf_of
                .identity_store_arn
                .as_deref()
                .and_then(|a| a.rsplit_once('/'))
                .map(|(_, id)| texts.text(id)),
            session_id: texts.own(&ui.credential_id),
            source_ip,
            source_text,
            user_agent,
            // The account the record belongs to; exports without recipientAccountId still
            // name the caller's account.
            account_id: texts.own(&self.recipient_account_id).or_else(|| texts.own(&ui.account_id)),
            permission_set,
            event_source: texts.own(&self.event_source),
            event_name: texts.own(&self.event_name),
            error_code: texts.own(&self.error_code),
        })
    }
}
