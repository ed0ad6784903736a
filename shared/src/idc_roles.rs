//! Which IAM role is an IAM Identity Center permission set's: the one home of the rule the
//! sign-in checks (a session's person and permission set, the ledger's last use) and the grants'
//! activity summaries share.

/// IdC's reserved path for the roles it provisions in each account.
pub const RESERVED_PATH: &str = "/aws-reserved/sso.amazonaws.com/";

/// The permission set of an IAM Identity Center role (`AWSReservedSSO_<permission set>_<hex>`)
/// from the role's name and, where the record gives it, its ARN, which must lie under
/// [`RESERVED_PATH`]: anyone who may create roles can name one like that elsewhere and call with a
/// person's name as the session name, so the name alone would let their calls pass for that
/// person's use of the permission set. A record without the ARN (a trimmed export) is judged by
/// the name.
pub fn permission_set<'s>(role_name: &'s str, role_arn: Option<&str>) -> Option<&'s str> {
    let reserved = role_arn.is_none_or(|arn| {
        arn.split_once(":role/").is_some_and(|(_, path)| path.starts_with(&RESERVED_PATH[1..]))
    });
    let rest = role_name.strip_prefix("AWSReservedSSO_").filter(|_| reserved)?;
    Some(rest.rsplit_once('_').map_or(rest, |(set, _)| set))
}

/// [`permission_set`] of a role session: the session issuer's role name and ARN, or, in a record
/// without them (a trimmed export; CloudTrail writes them for every role session), the role in the
/// session's ARN (`…:assumed-role/<role>/<session>`), judged by its name.
pub fn session_permission_set<'s>(
    issuer_name: Option<&'s str>,
    issuer_arn: Option<&str>,
    session_arn: Option<&'s str>,
) -> Option<&'s str> {
    let role = match issuer_name {
        Some(name) => name,
        None => session_arn?.split_once(":assumed-role/")?.1.split('/').next()?,
    };
    permission_set(role, issuer_arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_role_under_idcs_path_is_a_permission_sets() {
        let name = "AWSReservedSSO_TeamDeveloper_0123456789abcdef";
        let arn = |path: &str| format!("arn:aws:iam::111122223333:role{path}{name}");
        assert_eq!(permission_set(name, Some(&arn(RESERVED_PATH))), Some("TeamDeveloper"));
        assert_eq!(permission_set(name, None), Some("TeamDeveloper"), "a trimmed record");
        // An instance outside us-east-1 puts its region in the path.
        let regional = arn("/aws-reserved/sso.amazonaws.com/eu-west-1/");
        assert_eq!(permission_set(name, Some(&regional)), Some("TeamDeveloper"));
        for path in ["/", "/team/", "/x/aws-reserved/sso.amazonaws.com/", "/aws-reserved/"] {
            assert_eq!(permission_set(name, Some(&arn(path))), None, "{path}");
        }
        assert_eq!(permission_set("TeamDeveloper", Some(&arn(RESERVED_PATH))), None);
        // A permission set whose own name has underscores keeps them.
        assert_eq!(permission_set("AWSReservedSSO_Team_Dev_0a1b", None), Some("Team_Dev"));
    }

    #[test]
    fn a_session_without_its_issuer_is_judged_by_the_role_in_its_arn() {
        let session = "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0a1b/alice";
        assert_eq!(session_permission_set(None, None, Some(session)), Some("Admin"));
        // The issuer, when there, decides: here a look-alike outside IdC's path.
        let forged = "arn:aws:iam::111122223333:role/AWSReservedSSO_Admin_0a1b";
        let issuer = Some("AWSReservedSSO_Admin_0a1b");
        assert_eq!(session_permission_set(issuer, Some(forged), Some(session)), None);
        // An IAM user's ARN names no role.
        let user = "arn:aws:iam::111122223333:user/AWSReservedSSO_Admin_0a1b";
        assert_eq!(session_permission_set(None, None, Some(user)), None);
    }
}
