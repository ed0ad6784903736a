//! The session-revocation statement in a permission set's inline policy.
//!
//! AWS's documented way to end the live role sessions of one IAM Identity Center user: an
//! explicit deny of everything for requests whose `identitystore:userId` is that user's (the
//! Identity Store user id is globally unique, unlike `aws:userid`, which changes with the user
//! name), in every permission set they could use, provisioned to its accounts. idc-guard keeps
//! one statement (`Sid` [`REVOKE_SID`]) listing every revoked user; the rest of the inline policy
//! is the policy file's (or a person's), which the reconciler compares without this statement
//! and never drops it when it writes the inline policy.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// The statement's `Sid`: idc-guard's own, never written by a person.
pub const REVOKE_SID: &str = "IdcGuardRevokedSessions";

/// An inline policy can hold at most this many characters (`PutInlinePolicyToPermissionSet`).
pub const MAX_INLINE_POLICY_CHARS: usize = 32_768;
/// The role IAM Identity Center provisions in each account holds the inline policy as an IAM
/// role policy: at most this many characters, whitespace excluded. Past it the put succeeds and
/// provisioning fails, account by account.
pub const MAX_ROLE_POLICY_CHARS: usize = 10_240;
/// An Identity Store user id as the deny lists it, for sizing (the longest form, quoted, comma).
const ID_COST: usize = r#""9067a1b2c3-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d","#.len();
/// `policy check` and `plan` warn when an inline policy leaves room for fewer denied users.
pub const MIN_ROOM_FOR_IDS: usize = 20;

/// Characters IAM counts against the role-policy quota: all but whitespace.
pub fn iam_size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

/// How many more users the deny statement can list before `inline` (with its current
/// revocations) reaches IAM's role-policy quota; 0 when it cannot take the statement at all.
pub fn room_for_ids(inline: Option<&str>) -> usize {
    let current = revoked_ids(inline);
    let mut probe = current.clone();
    probe.insert("9067a1b2c3-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d".into());
    let Ok(Some(with_one)) = with_revocations_unchecked(inline, &probe) else { return 0 };
    let size = iam_size(&with_one);
    if size > MAX_ROLE_POLICY_CHARS {
        return 0;
    }
    1 + (MAX_ROLE_POLICY_CHARS - size) / ID_COST
}

/// Why an inline policy cannot take the statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevokePolicyError {
    /// The current inline policy is not a JSON policy document.
    #[error("the inline policy is not a policy document: {0}")]
    NotAPolicy(String),
    /// With the statement the policy would exceed IdC's limit.
    #[error(
        "the inline policy would be {0} characters with the revocations, over the 32,768 limit"
    )]
    Full(usize),
    /// With the statement the role IdC provisions would exceed IAM's role-policy quota.
    #[error(
        "the inline policy would be {0} characters (whitespace excluded) with the revocations, over IAM's role-policy quota of 10,240: provisioning would fail in every account"
    )]
    RoleQuota(usize),
}

fn document(inline: Option<&str>) -> Result<Value, RevokePolicyError> {
    let Some(text) = inline.filter(|t| !t.trim().is_empty()) else {
        return Ok(json!({"Version": "2012-10-17", "Statement": []}));
    };
    let mut doc: Value =
        serde_json::from_str(text).map_err(|e| RevokePolicyError::NotAPolicy(e.to_string()))?;
    let statements = match doc.get_mut("Statement") {
        Some(Value::Array(_)) => None,
        Some(one @ Value::Object(_)) => Some(one.take()),
        _ => return Err(RevokePolicyError::NotAPolicy("no Statement".into())),
    };
    if let Some(one) = statements {
        doc["Statement"] = json!([one]);
    }
    Ok(doc)
}

fn is_ours(statement: &Value) -> bool {
    statement.get("Sid").and_then(Value::as_str) == Some(REVOKE_SID)
}

/// The user ids the statement denies now.
pub fn revoked_ids(inline: Option<&str>) -> BTreeSet<String> {
    let Ok(doc) = document(inline) else { return BTreeSet::new() };
    let Some(ours) = doc["Statement"].as_array().and_then(|s| s.iter().find(|s| is_ours(s))) else {
        return BTreeSet::new();
    };
    match ours.pointer("/Condition/StringEquals/identitystore:userId") {
        Some(Value::String(one)) => BTreeSet::from([one.clone()]),
        Some(Value::Array(ids)) => {
            ids.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        _ => BTreeSet::new(),
    }
}

/// The inline policy without idc-guard's statement (`None` when nothing else is left), as
/// compact JSON: what the policy file's inline policy is compared with.
pub fn without_revocations(inline: Option<&str>) -> Option<String> {
    let mut doc = document(inline).ok()?;
    let statements = doc["Statement"].as_array_mut()?;
    let had = statements.len();
    statements.retain(|s| !is_ours(s));
    if statements.is_empty() {
        return None;
    }
    if statements.len() == had {
        // Nothing of ours: the text as stored.
        return inline.map(str::to_owned);
    }
    Some(doc.to_string())
}

/// `inline` with idc-guard's statement denying exactly `user_ids` (removed when empty). `None`
/// when the result is empty (delete the inline policy).
pub fn with_revocations(
    inline: Option<&str>,
    user_ids: &BTreeSet<String>,
) -> Result<Option<String>, RevokePolicyError> {
    let text = with_revocations_unchecked(inline, user_ids)?;
    if let Some(text) = &text {
        let chars = text.chars().count();
        if chars > MAX_INLINE_POLICY_CHARS {
            return Err(RevokePolicyError::Full(chars));
        }
        let size = iam_size(text);
        // Growing past the quota is refused; a policy already past it (someone else's) is
        // failing provisioning anyway, and taking ids out only shrinks it.
        let before = inline.map_or(0, iam_size);
        if size > MAX_ROLE_POLICY_CHARS && size > before {
            return Err(RevokePolicyError::RoleQuota(size));
        }
    }
    Ok(text)
}

fn with_revocations_unchecked(
    inline: Option<&str>,
    user_ids: &BTreeSet<String>,
) -> Result<Option<String>, RevokePolicyError> {
    let mut doc = document(inline)?;
    let Some(statements) = doc["Statement"].as_array_mut() else {
        return Err(RevokePolicyError::NotAPolicy("no Statement list".into()));
    };
    statements.retain(|s| !is_ours(s));
    if !user_ids.is_empty() {
        statements.push(json!({
            "Sid": REVOKE_SID,
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"identitystore:userId": user_ids}},
        }));
    }
    if statements.is_empty() {
        return Ok(None);
    }
    Ok(Some(doc.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    const TEAM: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#;

    #[test]
    fn the_statement_is_added_merged_and_removed_and_the_rest_is_kept() {
        let one = with_revocations(Some(TEAM), &ids(&["u-1"])).unwrap().unwrap();
        assert_eq!(revoked_ids(Some(&one)), ids(&["u-1"]));
        assert!(one.contains("s3:GetObject"), "the team's statement is kept: {one}");
        let two = with_revocations(Some(&one), &ids(&["u-1", "u-2"])).unwrap().unwrap();
        assert_eq!(revoked_ids(Some(&two)), ids(&["u-1", "u-2"]));
        assert_eq!(two.matches(REVOKE_SID).count(), 1, "one statement");
        let back: Value = serde_json::from_str(&without_revocations(Some(&two)).unwrap()).unwrap();
        assert_eq!(back["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(back["Statement"][0]["Action"], "s3:GetObject");
        let released = with_revocations(Some(&two), &BTreeSet::new()).unwrap().unwrap();
        assert!(revoked_ids(Some(&released)).is_empty());
        // A permission set without an inline policy gets one holding the deny only, and loses it
        // again on release.
        let only = with_revocations(None, &ids(&["u-3"])).unwrap().unwrap();
        assert_eq!(without_revocations(Some(&only)), None);
        assert_eq!(with_revocations(Some(&only), &BTreeSet::new()).unwrap(), None);
        // The statement denies everything for those users, by identity-store id.
        let doc: Value = serde_json::from_str(&only).unwrap();
        let s = &doc["Statement"][0];
        assert_eq!((s["Effect"].as_str(), s["Action"].as_str()), (Some("Deny"), Some("*")));
        assert_eq!(s["Condition"]["StringEquals"]["identitystore:userId"], json!(["u-3"]));
        // Without a statement of ours, the text stays as stored.
        assert_eq!(without_revocations(Some(TEAM)).as_deref(), Some(TEAM));
    }

    #[test]
    fn the_size_limit_and_bad_documents_are_errors() {
        let many: BTreeSet<String> = (0..2000).map(|i| format!("9067a1b2c3-{i:08}-user")).collect();
        assert!(matches!(with_revocations(None, &many), Err(RevokePolicyError::Full(_))));
        assert!(matches!(
            with_revocations(Some("not json"), &ids(&["u"])),
            Err(RevokePolicyError::NotAPolicy(_))
        ));
        assert!(revoked_ids(Some("not json")).is_empty());
    }

    #[test]
    fn iams_role_policy_quota_counts_characters_without_whitespace() {
        // Defect: only IdC's 32,768-character limit was checked; a policy between 10,240 and
        // 32,768 characters was put, and provisioning then failed in every account.
        let uid = |i: usize| format!("9067a1b2c3-{i:08}-5e6f-7a8b-9c0d-1e2f3a4b5c6d");
        let fits: BTreeSet<String> = (0..150).map(uid).collect();
        let text = with_revocations(None, &fits).unwrap().unwrap();
        assert!(iam_size(&text) <= MAX_ROLE_POLICY_CHARS, "{}", iam_size(&text));
        let over: BTreeSet<String> = (0..400).map(uid).collect();
        match with_revocations(None, &over) {
            Err(RevokePolicyError::RoleQuota(n)) => {
                assert!(n > MAX_ROLE_POLICY_CHARS && n < MAX_INLINE_POLICY_CHARS, "{n}")
            }
            other => panic!("{other:?}"),
        }
        // Whitespace does not count: a pretty-printed policy of the same content fits as well.
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
        assert!(pretty.chars().count() > text.chars().count());
        assert_eq!(iam_size(&pretty), iam_size(&text));
        // Room: a big team policy leaves room for few ids; an empty one for many.
        assert!(room_for_ids(None) > 200, "{}", room_for_ids(None));
        let big = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
            (0..690).map(|i| format!("\"s3:Get{i:05}\"")).collect::<Vec<_>>().join(",")
        );
        let room = room_for_ids(Some(&big));
        assert!(room < MIN_ROOM_FOR_IDS, "{room} ids left, {} characters", iam_size(&big));
        // Taking an id out of a policy already over the quota is never refused.
        let two: BTreeSet<String> = (0..2).map(uid).collect();
        let huge = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
            (0..800).map(|i| format!("\"s3:Get{i:05}\"")).collect::<Vec<_>>().join(",")
        );
        let with_two = with_revocations_unchecked(Some(&huge), &two).unwrap().unwrap();
        let one: BTreeSet<String> = (0..1).map(uid).collect();
        assert!(with_revocations(Some(&with_two), &one).is_ok());
    }
}
