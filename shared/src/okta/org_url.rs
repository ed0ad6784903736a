//! Okta org URLs: which URLs idc-guard sends an Okta credential to.

use super::ports::OktaError;

/// The domains Okta serves orgs from. A custom URL domain is not accepted: the credential would
/// be sent to whatever host the URL names, so use the org's own URL (e.g. `acme.okta.com`).
pub const OKTA_DOMAINS: &[&str] =
    &["okta.com", "oktapreview.com", "okta-emea.com", "okta-gov.com", "okta.mil"];

/// True for the loopback hosts plain http is accepted on (tests, local mocks).
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Okta org URLs are parsed, not matched by prefix: `https://<org>.<Okta domain>` with nothing
/// but an optional `/` after the host, no user info, query or fragment; plain http only on a
/// loopback host. Returns the origin (`https://acme.okta.com`, with a port when given).
pub fn validate_org_url(url: &str) -> Result<String, OktaError> {
    let bad = || {
        OktaError::Config(format!("{url:?} is not an https Okta org URL (https://<org>.okta.com)"))
    };
    let parsed = url::Url::parse(url.trim()).map_err(|_| bad())?;
    let host = parsed.host_str().ok_or_else(bad)?.to_ascii_lowercase();
    let okta_host = parsed.scheme() == "https"
        && matches!(parsed.host(), Some(url::Host::Domain(_)))
        && OKTA_DOMAINS.iter().any(|d| {
            host.strip_suffix(d)
                .and_then(|org| org.strip_suffix('.'))
                .is_some_and(|org| !org.is_empty() && !org.contains('.'))
        });
    let loopback = parsed.scheme() == "http" && is_loopback_host(&parsed);
    if !(okta_host || loopback)
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || !(parsed.path() == "/" || parsed.path().is_empty())
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(bad());
    }
    Ok(parsed.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_urls_must_be_https_except_on_loopback() {
        assert_eq!(validate_org_url("https://acme.okta.com/").unwrap(), "https://acme.okta.com");
        assert_eq!(
            validate_org_url("https://ACME.oktapreview.com").unwrap(),
            "https://acme.oktapreview.com"
        );
        assert_eq!(validate_org_url("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert!(validate_org_url("http://localhost:9").is_ok());
        for bad in [
            "http://acme.okta.com",
            "https://acme.okta.com.evil/",
            "https://acme.okta.com.evil",
            "http://localhost.evil.com",
            "http://127.0.0.1.evil.com",
            "https://evil.com/acme.okta.com",
            "https://evil.com?.okta.com",
            "https://acme.okta.com@evil.com",
            "https://user@acme.okta.com",
            "https://okta.com",
            "https://a.b.okta.com",
            "https://acme.okta.com/api/v1",
            "https://acme.okta.com#x",
            "acme.okta.com",
            "",
        ] {
            assert!(validate_org_url(bad).is_err(), "{bad} accepted");
        }
    }
}
