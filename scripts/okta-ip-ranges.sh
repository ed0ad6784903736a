#!/usr/bin/env bash
# Refreshes the snapshot of Okta's published IP ranges that the sign-in checks use to tell Okta's
# SCIM calls from anyone else's (`[signin] okta_ip_ranges_file`). Writes policy/okta-ip-ranges.json,
# which ships in the policy layer beside access-policy.toml. Run it, review the diff, commit.
# Source: Okta's AWS-hosted list (an object keyed by cell, each with ip_ranges).
set -euo pipefail
cd "$(dirname "$0")/.."
url=${OKTA_IP_RANGES_URL:-https://s3.amazonaws.com/okta-ip-ranges/ip_ranges.json}
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
curl -fsSL --max-time 60 "$url" -o "$tmp"
python3 - "$tmp" <<'PY'
import ipaddress, json, sys
doc = json.load(open(sys.argv[1]))
assert isinstance(doc, dict) and doc, "not an object keyed by Okta cell"
for cell, entry in doc.items():
    for net in entry["ip_ranges"]:
        ipaddress.ip_network(net, strict=False)
print(f"{len(doc)} cells, {sum(len(e['ip_ranges']) for e in doc.values())} networks")
PY
mv "$tmp" policy/okta-ip-ranges.json
trap - EXIT
echo "wrote policy/okta-ip-ranges.json; set [signin] okta_ip_ranges_file = \"okta-ip-ranges.json\" (and okta_cells to your org's cell)"
