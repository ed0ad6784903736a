//! A synthetic organisation trail for benchmarks and scale tests: users in a few home countries
//! signing in through Okta, using the portal and the console, and making API calls in
//! `AWSReservedSSO_*` sessions, in CloudTrail's record shape, time-ordered — with a few planted
//! anomalies whose detection the tests check.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// Homes: (country, first three octets of a /24 the embedded table places there).
const HOMES: &[(&str, [u8; 3])] = &[
    ("DE", [5, 44, 46]),
    ("US", [5, 83, 131]),
    ("GB", [5, 133, 205]),
    ("AT", [46, 57, 0]),
    ("AU", [1, 0, 0]),
];
const PERMISSION_SETS: &[&str] = &["ReadOnly", "TeamDeveloper", "AdministratorAccess"];
const API_CALLS: &[(&str, &str)] = &[
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("s3.amazonaws.com", "ListBuckets"),
    ("logs.amazonaws.com", "FilterLogEvents"),
    ("lambda.amazonaws.com", "ListFunctions"),
    ("cloudformation.amazonaws.com", "DescribeStacks"),
];

/// An anomaly the generator put into the trail: the detector that should find it, and its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planted {
    /// The detector that should find it.
    pub detector: &'static str,
    /// The user.
    pub user: String,
}

/// A generator of realistic CloudTrail sign-in trails with planted anomalies (benchmarks,
/// demo, tests).
pub struct Synth {
    rng: fastrand::Rng,
    users: usize,
    start: DateTime<Utc>,
    step_ms: i64,
    n: u64,
}

fn user(i: usize) -> String {
    format!("user{i:05}@acme.example")
}

impl Synth {
    /// `events` spread over `days` for `users` users.
    pub fn new(seed: u64, users: usize, events: u64, days: i64) -> Self {
        let start = DateTime::parse_from_rfc3339("2026-11-02T00:00:00Z")
            .map(|t| t.to_utc())
            .unwrap_or_default();
        let step_ms = (days * 86_400_000 / events.max(1) as i64).max(1);
        Self { rng: fastrand::Rng::with_seed(seed), users: users.max(10), start, step_ms, n: 0 }
    }

    fn home(&self, u: usize) -> (&'static str, [u8; 3]) {
        HOMES[u % HOMES.len()]
    }

    /// The user's address on the day of `t`: one per user and day, in the home network and in
    /// the country of the user's first address (the embedded table splits some /24s).
    fn ip(&self, u: usize, t: DateTime<Utc>) -> String {
        let (_, p) = self.home(u);
        let at = |octet: usize| format!("{}.{}.{}.{}", p[0], p[1], p[2], 1 + (octet % 250));
        let country = |ip: &str| ip.parse().ok().and_then(crate::geo::country_of);
        let home = at(u);
        let day = (t - self.start).num_days().max(0) as usize;
        (0..16)
            .map(|k| at(u + day * 37 + k))
            .find(|ip| country(ip) == country(&home))
            .unwrap_or(home)
    }

    fn session(u: usize, t: DateTime<Utc>) -> String {
        // One portal session per user and day.
        format!("sess-{u}-{}", t.format("%Y%m%d"))
    }

    fn next_time(&mut self) -> DateTime<Utc> {
        self.n += 1;
        self.start + Duration::milliseconds(self.n as i64 * self.step_ms)
    }

    /// The next ordinary record.
    pub fn record(&mut self) -> Value {
        let t = self.next_time();
        let u = self.rng.usize(..self.users);
        let ip = self.ip(u, t);
        let roll = self.rng.u8(..100);
        // Administrators are few.
        let ps = if u.is_multiple_of(50) { PERMISSION_SETS[2] } else { PERMISSION_SETS[u % 2] };
        let id = format!("{:08x}-{:04x}-4000-8000-{:012x}", self.n, u, self.rng.u64(..1 << 48));
        match roll {
            0..10 => signin(&id, t, u, &ip),
            10..40 => portal(
                &id,
                t,
                u,
                &ip,
                ps,
                if roll < 30 { "GetRoleCredentials" } else { "ListAccounts" },
            ),
            40..45 => console(&id, t, u, &ip, ps),
            _ => {
                let (source, name) = API_CALLS[self.rng.usize(..API_CALLS.len())];
                api_call(&id, t, u, &ip, ps, source, name)
            }
        }
    }

    /// The next record of an organisation trail: machine traffic (services, pipelines, the
    /// trail's own KMS calls, role chains) with a person's record one time in `1 / person_share`
    /// (`person_share` of 50 makes a trail with 2 % sign-in, portal and IdC-session records).
    pub fn org_record(&mut self, person_share: u32) -> Value {
        if person_share > 0 && self.rng.u32(..person_share) == 0 {
            return self.record();
        }
        let t = self.next_time();
        let id = format!(
            "{:08x}-{:04x}-4000-9000-{:012x}",
            self.n,
            self.rng.u16(..),
            self.rng.u64(..1 << 48)
        );
        machine(&id, t, self.rng.u8(..100))
    }

    /// Planted anomalies (records inserted at the current time), and what should find them.
    pub fn plant(&mut self) -> (Vec<Value>, Vec<Planted>) {
        let mut out = Vec::new();
        let mut planted = Vec::new();
        // impossible-travel: a user of home DE signs in from AU ten minutes later.
        let u = 0;
        let t = self.next_time();
        let home_ip = self.ip(u, t);
        out.push(signin(&format!("plant-travel-a-{}", self.n), t, u, &home_ip));
        out.push(portal(
            &format!("plant-travel-b-{}", self.n),
            t + Duration::minutes(10),
            u,
            "1.0.0.77",
            "ReadOnly",
            "GetRoleCredentials",
        ));
        planted.push(Planted { detector: "impossible-travel", user: user(u) });
        // brute-force: twelve credential failures in three minutes for an IdC-directory user.
        let victim = 1;
        for i in 0..12 {
            let mut r = signin(
                &format!("plant-brute-{i}-{}", self.n),
                t + Duration::seconds(15 * i),
                victim,
                "203.0.113.9",
            );
            r["eventName"] = json!("CredentialVerification");
            r["serviceEventDetails"] = json!({"CredentialVerification": "Failure"});
            r["errorCode"] = json!("InvalidPassword");
            r["additionalEventData"]["CredentialType"] = json!("PASSWORD");
            out.push(r);
        }
        planted.push(Planted { detector: "brute-force", user: user(victim) });
        // root-signin.
        let mut root = console(&format!("plant-root-{}", self.n), t, 2, "5.83.131.200", "x");
        root["userIdentity"] = json!({"type": "Root", "principalId": "123456789012", "arn": "arn:aws:iam::123456789012:root", "accountId": "123456789012"});
        root["additionalEventData"]["MFAUsed"] = json!("No");
        out.push(root);
        planted.push(Planted { detector: "root-signin", user: "root".into() });
        (out, planted)
    }
}

fn base(id: &str, t: DateTime<Utc>, ip: &str, source: &str, name: &str, kind: &str) -> Value {
    json!({
        "eventVersion": "1.10",
        "eventTime": t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "requestParameters": null,
        "responseElements": null,
        "requestID": format!("req-{id}"),
        "eventID": id,
        "readOnly": true,
        "eventType": kind,
        "managementEvent": true,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
    })
}

/// A machine record of about 1.3 KB, in the shapes an organisation trail is mostly made of.
fn machine(id: &str, t: DateTime<Utc>, roll: u8) -> Value {
    let role = |name: &str, session: &str| {
        json!({"type": "AssumedRole", "principalId": format!("AROA4EXAMPLE7ROLE{:04}:{session}", roll),
            "arn": format!("arn:aws:sts::210987654321:assumed-role/{name}/{session}"), "accountId": "210987654321",
            "accessKeyId": "ASIA4EXAMPLEKEY00001",
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROA4EXAMPLE7ROLE0001",
                "arn": format!("arn:aws:iam::210987654321:role/{name}"), "accountId": "210987654321", "userName": name},
                "attributes": {"creationDate": "2026-11-02T00:00:00Z", "mfaAuthenticated": "false"}}})
    };
    let (source, name, identity, request) = match roll {
        0..30 => (
            "sts.amazonaws.com",
            "AssumeRole",
            json!({"type": "AWSService", "invokedBy": "lambda.amazonaws.com"}),
            json!({"roleArn": "arn:aws:iam::210987654321:role/orders-api-lambda", "roleSessionName": format!("orders-api-{roll}"), "durationSeconds": 3600}),
        ),
        30..50 => (
            "kms.amazonaws.com",
            "Decrypt",
            json!({"type": "AWSService", "invokedBy": "secretsmanager.amazonaws.com"}),
            json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": {"SecretARN": "arn:aws:secretsmanager:eu-central-1:210987654321:secret:orders/db-AbCdEf", "SecretVersionId": "5b2f1c8e-93a4-4a77-b5a1-0c2d9e8f7a61"}}),
        ),
        50..65 => (
            "ec2.amazonaws.com",
            "DescribeInstances",
            role("ci-deployer", "gha-run-8812731"),
            json!({"instancesSet": {}, "filterSet": {"items": [{"name": "tag:Service", "valueSet": {"items": [{"value": "orders"}]}}]}}),
        ),
        65..75 => (
            "s3.amazonaws.com",
            "GetBucketAcl",
            json!({"type": "AWSService", "invokedBy": "config.amazonaws.com"}),
            json!({"bucketName": "acme-orders-artifacts", "Host": "acme-orders-artifacts.s3.eu-central-1.amazonaws.com", "acl": ""}),
        ),
        75..85 => (
            "logs.amazonaws.com",
            "CreateLogStream",
            role("orders-api-lambda", "orders-api"),
            json!({"logGroupName": "/aws/lambda/orders-api", "logStreamName": "2026/11/20/[$LATEST]0f1e2d3c4b5a69788796a5b4c3d2e1f0"}),
        ),
        85..93 => (
            "dynamodb.amazonaws.com",
            "DescribeTable",
            role("ecs-orders-task", "3f9a1b7c2d8e4f60a1b2c3d4e5f60718"),
            json!({"tableName": "orders"}),
        ),
        _ => (
            "iam.amazonaws.com",
            "GetRole",
            role("OrganizationAccountAccessRole", "terraform-plan"),
            json!({"roleName": "orders-api-lambda"}),
        ),
    };
    let mut r = base(id, t, "10.20.30.40", source, name, "AwsApiCall");
    r["userIdentity"] = identity;
    r["sourceIPAddress"] =
        json!(format!("{}.amazonaws.com", source.split('.').next().unwrap_or("aws")));
    r["userAgent"] = json!(format!("{}.amazonaws.com", source.split('.').next().unwrap_or("aws")));
    r["requestParameters"] = request;
    if name == "AssumeRole" {
        r["responseElements"] = json!({"credentials": {"accessKeyId": "ASIA4EXAMPLEKEY00002", "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLEtokenIQoJb3JpZ2luX2VjEXAMPLEtokenIQoJb3JpZ2luX2VjEXAMPLEtoken", "expiration": "Nov 20, 2026, 11:00:00 AM"},
            "assumedRoleUser": {"assumedRoleId": "AROA4EXAMPLE7ROLE0001:orders-api", "arn": "arn:aws:sts::210987654321:assumed-role/orders-api-lambda/orders-api"}});
    }
    r["resources"] = json!([{"accountId": "210987654321", "type": "AWS::IAM::Role", "ARN": "arn:aws:iam::210987654321:role/orders-api-lambda"}]);
    r["recipientAccountId"] = json!("210987654321");
    r["sharedEventID"] = json!(format!("5e9c{id}"));
    r["tlsDetails"] = json!({"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": format!("{source}")});
    r
}

fn idc_user(u: usize, t: DateTime<Utc>) -> Value {
    json!({
        "type": "IdentityCenterUser",
        "accountId": "123456789012",
        "onBehalfOf": {"userId": format!("9448{u:04}-3041-7026-18f3-be45837cd0e4"), "identityStoreArn": "arn:aws:identitystore::123456789012:identitystore/d-9067642ac7"},
        "credentialId": Synth::session(u, t),
    })
}

fn signin(id: &str, t: DateTime<Utc>, u: usize, ip: &str) -> Value {
    let mut r = base(id, t, ip, "signin.amazonaws.com", "UserAuthentication", "AwsServiceEvent");
    r["userIdentity"] = idc_user(u, t);
    r["additionalEventData"] =
        json!({"AuthWorkflowID": id, "UserName": user(u), "CredentialType": "EXTERNAL_IDP"});
    r["serviceEventDetails"] = json!({"UserAuthentication": "Success"});
    r
}

fn portal(id: &str, t: DateTime<Utc>, u: usize, ip: &str, ps: &str, action: &str) -> Value {
    let mut r = base(id, t, ip, "sso.amazonaws.com", action, "AwsApiCall");
    r["userIdentity"] = idc_user(u, t);
    r["requestParameters"] = json!({"accountId": "111122223333", "roleName": ps});
    r
}

fn assumed(u: usize, ps: &str) -> Value {
    let role = format!("AWSReservedSSO_{ps}_0123456789abcdef");
    json!({
        "type": "AssumedRole",
        "principalId": format!("AROAEXAMPLEID:{}", user(u)),
        "arn": format!("arn:aws:sts::111122223333:assumed-role/{role}/{}", user(u)),
        "accountId": "111122223333",
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEID", "arn": format!("arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/{role}"), "accountId": "111122223333", "userName": role}, "attributes": {"mfaAuthenticated": "false"}},
    })
}

fn console(id: &str, t: DateTime<Utc>, u: usize, ip: &str, ps: &str) -> Value {
    let mut r = base(id, t, ip, "signin.amazonaws.com", "ConsoleLogin", "AwsConsoleSignIn");
    r["userIdentity"] = assumed(u, ps);
    r["responseElements"] = json!({"ConsoleLogin": "Success"});
    r["additionalEventData"] = json!({"MobileVersion": "No", "MFAUsed": "No"});
    r
}

fn api_call(
    id: &str,
    t: DateTime<Utc>,
    u: usize,
    ip: &str,
    ps: &str,
    source: &str,
    name: &str,
) -> Value {
    let mut r = base(id, t, ip, source, name, "AwsApiCall");
    r["userIdentity"] = assumed(u, ps);
    r["userAgent"] = json!(
        "aws-cli/2.22.10 md/awscrt#0.23.4 ua/2.0 os/macos#24.1.0 md/arch#arm64 lang/python#3.12.6"
    );
    r["recipientAccountId"] = json!("111122223333");
    r
}

/// A whole trail as JSON lines: `events` ordinary records with the planted ones in the middle.
pub fn trail(seed: u64, users: usize, events: u64) -> (Vec<String>, Vec<Planted>) {
    let mut s = Synth::new(seed, users, events, 7);
    let mut lines = Vec::with_capacity(events as usize + 16);
    let mut planted = Vec::new();
    for i in 0..events {
        if i == events / 2 {
            let (records, p) = s.plant();
            lines.extend(records.iter().map(Value::to_string));
            planted = p;
        }
        lines.push(s.record().to_string());
    }
    (lines, planted)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;
    use crate::geo::Geo;
    use crate::signin::engine::Engine;
    use crate::signin::settings::SigninSettings;
    use crate::signin::sources::parse;

    #[test]
    fn planted_anomalies_are_found_and_ordinary_traffic_stays_quiet() {
        let (lines, planted) = trail(7, 200, 20_000);
        let parsed = parse(lines.join("\n").as_bytes());
        assert_eq!(parsed.skipped, 0, "{:?}", parsed.reasons);
        let mut engine = Engine::new(
            Arc::new(SigninSettings::default()),
            BTreeSet::new(),
            Arc::new(Geo::default()),
        );
        let alerts: Vec<_> =
            parsed.activities.into_iter().flat_map(|a| engine.observe(a)).collect();
        for p in &planted {
            assert!(
                alerts
                    .iter()
                    .any(|a| a.detector == p.detector && a.user.as_deref() == Some(&p.user)),
                "{p:?} not found in {:#?}",
                alerts.iter().map(|a| (&a.detector, &a.user)).collect::<Vec<_>>()
            );
        }
        // Ordinary users stay at home: only the planted findings (and the travel victim's new
        // country) are raised.
        let unexpected: Vec<_> = alerts
            .iter()
            .filter(|a| !planted.iter().any(|p| a.user.as_deref() == Some(&p.user)))
            .map(|a| (&a.detector, &a.user))
            .collect();
        assert!(unexpected.is_empty(), "{unexpected:#?}");
    }
}
