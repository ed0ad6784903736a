#!/usr/bin/env python3
"""IAM policy lint for template.yaml: every policy a function's role gets, checked by parliament.

moto does not evaluate IAM, so a policy that AWS would deny passes every local test. This script
translates the SAM template into plain CloudFormation (samtranslator, as `sam deploy` does),
resolves the intrinsics (!Ref, !Sub, !GetAtt, !If, !Join, !Select) with realistic values, and
hands every policy document to parliament, which knows each action's resource types (e.g. that
sso:ListInstances has none and must be granted on "*").

It also checks the state table's split (`dynamodb:LeadingKeys`): every role or policy that may
write to the table does so only under a condition listing exactly the partitions that the record
table in shared/src/records.rs gives its writer (a function's binary name, `idc-guard` for the
CLI's managed policy), plus `alert#<writer>`; reads carry no write action.

Findings listed in ALLOWED below are kept on purpose, each with its reason; any other finding
fails the run. Usage: iam_lint.py [TEMPLATE]   (exit 0: clean, 1: findings, 2: cannot lint)
"""

import copy
import json
import os
import sys

import yaml
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"

# (role logical id prefix, finding issue, detail substring) -> why it is kept.
ALLOWED = {
    ("AccessSyncFunctionRole", "UNKNOWN_PREFIX", "account-access"):
        "AWS's account access manager (API reference of 2026-08-25) is newer than parliament's "
        "IAM database; access-sync only lists its applications and entitlements (read only), "
        "on '*' until its resource types are published",
    ("GrantsFunctionRole", "UNKNOWN_PREFIX", "account-access"):
        "the same read-only account access manager listing, for the session deny at a grant's "
        "end (what it cannot cover is reported)",
}

# The defect this lint exists for: sso:ListInstances scoped to instance ARNs (AccessDenied in AWS).
SELF_TEST_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CodeUri: .
      Policies:
        - Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Action: [sso:ListInstances, sso:ListPermissionSets]
              Resource: !Sub arn:${AWS::Partition}:sso:::instance/*
"""

# The defect the state-split check exists for: signin-anomaly allowed to write access-sync's
# alert records (it could pre-write one to silence a revocation alert) and revocations.
SELF_TEST_SPLIT_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  StateTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
  SigninFn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: signin-anomaly
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      CodeUri: .
      Policies:
        - Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Action: dynamodb:PutItem
              Resource: !GetAtt StateTable.Arn
              Condition:
                ForAllValues:StringLike:
                  dynamodb:LeadingKeys: ["signin-user#*", "alert#access-sync", "revoked-sessions"]
"""

# Realistic values for parameters (optional features switched on, so every conditional policy
# is linted too).
PARAMETER_VALUES = {
    "AlertWebhookSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:idc-guard/webhook-AbCdEf",
    "CloudTrailBucketName": "acme-cloudtrail-logs",
    "CloudTrailKmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "OktaOrgUrl": "https://acme.okta.com",
    "OktaAccessSyncApiSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:idc-guard/okta-sync-AbCdEf",
    "OktaHealthApiSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:idc-guard/okta-health-AbCdEf",
    "OktaRotationApiSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:idc-guard/okta-rotation-AbCdEf",
    "OktaGrantsApiSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:idc-guard/okta-grants-AbCdEf",
    "OktaOidcClientId": "0oa9idcguardcli0h8i9",
    "SlackSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:idc-guard/slack-AbCdEf",
    "OktaAwsAppId": "0oa1b2c3d4e5f6g7h8i9",
    "OktaEventHookId": "who1b2c3d4e5f6g7h8i9",
    "SecurityHubFindings": "true",
    "ScimEndpoint": "https://scim.us-east-1.amazonaws.com/a1b2c3d4-5678/scim/v2",
}


class NoManagedPolicies(ManagedPolicyLoader):
    """The template names no AWS managed policies by name; fail loudly if it starts to."""

    def __init__(self):
        pass

    def load(self):
        return {}


def cfn_loader():
    """A YAML loader that turns CloudFormation short tags (!Ref, !Sub, ...) into Fn:: maps."""

    class Loader(yaml.SafeLoader):
        pass

    def construct(tag):
        name = "Ref" if tag == "Ref" else f"Fn::{tag}"

        def f(loader, node):
            if isinstance(node, yaml.ScalarNode):
                value = loader.construct_scalar(node)
                if tag == "GetAtt":
                    value = value.split(".", 1)
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)
            if tag == "Condition":
                return {"Condition": value}
            return {name: value}

        return f

    for tag in ["Ref", "Sub", "GetAtt", "If", "Not", "Equals", "And", "Or", "Join", "Select",
                "Split", "FindInMap", "Base64", "GetAZs", "ImportValue", "Condition"]:
        Loader.add_constructor(f"!{tag}", construct(tag))
    return Loader


def resource_values(resources):
    """What !Ref and !GetAtt of each resource resolve to in a real stack."""
    refs, atts = {}, {}
    for lid, res in resources.items():
        t = res.get("Type", "")
        name = f"idc-guard-{lid}"
        if t == "AWS::SecretsManager::Secret":
            arn = f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"
            refs[lid], atts[(lid, "Arn")] = arn, arn
        elif t == "AWS::SQS::Queue":
            q = name + (".fifo" if res.get("Properties", {}).get("FifoQueue") else "")
            refs[lid] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{q}"
            atts[(lid, "Arn")] = f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{q}"
            atts[(lid, "QueueName")] = q
        elif t == "AWS::DynamoDB::Table":
            refs[lid] = name
            atts[(lid, "Arn")] = f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        elif t == "AWS::SNS::Topic":
            refs[lid] = f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{name}"
            atts[(lid, "TopicArn")] = refs[lid]
        elif t == "AWS::Lambda::Function":
            refs[lid] = name
            atts[(lid, "Arn")] = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}"
        elif t == "AWS::IAM::Role":
            refs[lid] = name
            atts[(lid, "Arn")] = f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"
        elif t == "AWS::Lambda::LayerVersion":
            refs[lid] = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:layer:{name}:1"
        elif t == "AWS::Logs::LogGroup":
            refs[lid] = f"/aws/lambda/{name}"
            atts[(lid, "Arn")] = f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{refs[lid]}:*"
        elif t == "AWS::KMS::Key":
            key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
            refs[lid] = key_id
            atts[(lid, "Arn")] = f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{key_id}"
            atts[(lid, "KeyId")] = key_id
        elif t == "AWS::CloudWatch::Alarm":
            refs[lid] = name
            atts[(lid, "Arn")] = f"arn:{PARTITION}:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
        else:
            refs[lid] = name
            atts[(lid, "Arn")] = f"arn:{PARTITION}:unknown:{REGION}:{ACCOUNT}:{name}"
    return refs, atts


class Resolver:
    def __init__(self, template, params):
        self.params = dict(params)
        self.params.update({
            "AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION,
            "AWS::StackName": "idc-guard", "AWS::URLSuffix": "amazonaws.com",
        })
        for name, spec in template.get("Parameters", {}).items():
            self.params.setdefault(name, spec.get("Default", ""))
        self.refs, self.atts = resource_values(template.get("Resources", {}))
        self.conditions_raw = template.get("Conditions", {})
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.conditions_raw[name]))
        return self.conditions[name]

    def ref(self, name):
        if name in self.params:
            return self.params[name]
        if name in self.refs:
            return self.refs[name]
        if name == "AWS::NoValue":
            return None
        raise KeyError(f"unresolved Ref {name}")

    def resolve(self, v):
        if isinstance(v, list):
            out = [self.resolve(x) for x in v]
            return [x for x in out if x is not None]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, arg), = v.items()
            if k == "Ref":
                return self.ref(arg)
            if k == "Fn::GetAtt":
                lid, att = arg if isinstance(arg, list) else arg.split(".", 1)
                if (lid, att) in self.atts:
                    return self.atts[(lid, att)]
                raise KeyError(f"unresolved GetAtt {lid}.{att}")
            if k == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                extra = {n: self.resolve(x) for n, x in extra.items()}
                out, i = "", 0
                while i < len(text):
                    j = text.find("${", i)
                    if j < 0:
                        out += text[i:]
                        break
                    out += text[i:j]
                    end = text.index("}", j)
                    name = text[j + 2:end]
                    if name.startswith("!"):
                        out += "${" + name[1:] + "}"
                    elif name in extra:
                        out += str(extra[name])
                    elif "." in name:
                        lid, att = name.split(".", 1)
                        out += str(self.atts[(lid, att)])
                    else:
                        out += str(self.ref(name))
                    i = end + 1
                return out
            if k == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if k == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return a == b
            if k == "Fn::Not":
                return not self.resolve(arg[0])
            if k == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if k == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if k == "Condition":
                return self.condition(arg)
            if k == "Fn::Join":
                sep, items = arg
                return sep.join(str(x) for x in self.resolve(items))
            if k == "Fn::Select":
                idx, items = arg
                return self.resolve(items)[int(self.resolve(idx))]
        out = {}
        for k, x in v.items():
            r = self.resolve(x)
            if r is not None:
                out[k] = r
        return out


def policies_of(cfn, resolver):
    """(role, policy name, resolved document) for every inline policy of every role."""
    for lid, res in cfn.get("Resources", {}).items():
        if res.get("Type") == "AWS::IAM::Role":
            for p in resolver.resolve(res.get("Properties", {}).get("Policies", [])):
                yield lid, p.get("PolicyName", "?"), p["PolicyDocument"]
        elif res.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield lid, lid, resolver.resolve(res["Properties"]["PolicyDocument"])


def lint(path=None, text=None):
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)  # samtranslator asks for one
    from parliament import analyze_policy_string

    if text is None:
        with open(path) as f:
            text = f.read()
    sam = yaml.load(text, Loader=cfn_loader())
    # As `sam package` does: local code folders become S3 locations before the transform.
    for res in sam.get("Resources", {}).values():
        props = res.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = "s3://idc-guard-artifacts/code.zip"
    cfn = transform(copy.deepcopy(sam), dict(PARAMETER_VALUES), NoManagedPolicies())
    resolver = Resolver(cfn, PARAMETER_VALUES)
    findings, kept, count = [], [], 0
    if "StateTable" in cfn.get("Resources", {}):
        table_arn = resolver.resolve({"Fn::GetAtt": ["StateTable", "Arn"]})
        findings += [(f"STATE_SPLIT {f}", None) for f in state_split_findings(cfn, resolver, table_arn)]
    for role, name, doc in policies_of(cfn, resolver):
        count += 1
        policy = analyze_policy_string(json.dumps(doc))
        for finding in policy.findings:
            detail = json.dumps(finding.detail, default=str)
            key = next((k for k in ALLOWED if role.startswith(k[0]) and finding.issue == k[1]
                        and k[2] in detail), None)
            line = f"{role}/{name}: {finding.issue} {detail}"
            (kept if key else findings).append((line, ALLOWED.get(key)))
    return count, findings, kept


STATE_WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem",
                       "dynamodb:BatchWriteItem", "dynamodb:*", "*"}
RECORDS_RS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared", "src", "records.rs")
CLI_POLICY = "CliStateAccessPolicy"


def record_table(path=RECORDS_RS):
    """writer -> partition patterns, from the `| record | pk | sk | writer | reader |` table in
    records.rs's header (`<...>` placeholders become `*`)."""
    import re
    writers = {}
    with open(path) as f:
        for line in f:
            if not line.startswith("//! | ") or "---" in line or "| record |" in line:
                continue
            cells = [c.strip() for c in line[len("//! "):].strip().strip("|").split("|")]
            if len(cells) != 5:
                continue
            pk = re.sub(r"<[^>]+>", "*", cells[1].strip("`"))
            if pk.startswith("alert#"):
                continue  # every writer has its own: added per writer below
            for writer in (w.strip() for w in cells[3].split(",")):
                writers.setdefault(writer, set()).add(pk)
    for writer, keys in writers.items():
        keys.add(f"alert#{writer}")
    return writers


def writer_of(cfn, lid):
    """The writer a role belongs to: its function's binary name (SAM names a function's role
    `<Function>Role`), or `idc-guard` for the CLI's managed policy."""
    if lid == CLI_POLICY:
        return "idc-guard"
    function = cfn["Resources"].get(lid.removesuffix("Role"), {})
    return function.get("Metadata", {}).get("BuildProperties", {}).get("Binary")


def state_split_findings(cfn, resolver, state_table_arn):
    """Every statement allowing a write action on the state table must be limited by
    `ForAllValues:StringLike: dynamodb:LeadingKeys` to exactly its writer's partitions."""
    table = record_table()
    findings = []
    for lid, name, doc in policies_of(cfn, resolver):
        for st in doc.get("Statement", []):
            if st.get("Effect") != "Allow":
                continue
            actions = st.get("Action", [])
            actions = {actions} if isinstance(actions, str) else set(actions)
            resources = st.get("Resource", [])
            resources = [resources] if isinstance(resources, str) else resources
            if not (actions & STATE_WRITE_ACTIONS) or not any(
                    r in (state_table_arn, "*") or r.startswith(state_table_arn) for r in resources):
                continue
            writer = writer_of(cfn, lid)
            keys = (st.get("Condition", {}).get("ForAllValues:StringLike", {})
                    .get("dynamodb:LeadingKeys"))
            where = f"{lid}/{name}/{st.get('Sid', '?')}"
            if writer is None or writer not in table:
                findings.append(f"{where}: writes the state table but is no writer of records.rs's table")
            elif keys is None:
                findings.append(f"{where}: writes the state table without a dynamodb:LeadingKeys condition")
            else:
                keys = {keys} if isinstance(keys, str) else set(keys)
                if keys != table[writer]:
                    findings.append(f"{where}: LeadingKeys {sorted(keys)} are not {writer}'s "
                                    f"partitions in records.rs {sorted(table[writer])}")
    return findings


def self_test():
    """The lint must catch the scoped sso:ListInstances grant, or it proves nothing."""
    _, findings, _ = lint(text=SELF_TEST_TEMPLATE)
    caught = [f for f, _ in findings if "RESOURCE_MISMATCH" in f and "sso:ListInstances" in f]
    if not caught:
        print("iam-lint: self-test FAILED: sso:ListInstances on an instance ARN was not reported")
        return 1
    print("iam-lint: self-test ok (sso:ListInstances on an instance ARN is reported)")
    _, findings, _ = lint(text=SELF_TEST_SPLIT_TEMPLATE)
    if not any("STATE_SPLIT" in f and "alert#access-sync" in f for f, _ in findings):
        print("iam-lint: self-test FAILED: a function writing another's partitions was not reported")
        return 1
    print("iam-lint: self-test ok (a function allowed another writer's partitions is reported)")
    return 0


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    try:
        if path == "--self-test":
            return self_test()
        count, findings, kept = lint(path)
    except Exception as e:  # a template this script cannot read is a failure, not a pass
        print(f"iam-lint: cannot lint {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    for line, reason in kept:
        print(f"iam-lint: kept: {line} -- {reason}")
    for line, _ in findings:
        print(f"iam-lint: FINDING: {line}")
    print(f"iam-lint: {count} policies checked, {len(findings)} findings, {len(kept)} kept with a reason")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
