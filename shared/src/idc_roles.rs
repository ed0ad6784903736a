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
}
