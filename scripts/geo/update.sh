#!/usr/bin/env bash
# Refreshes the embedded geo data from pinned npm packages (run by a maintainer, not by builds:
# the result is committed, so building and running idc-guard never touches the network).
set -euo pipefail
cd "$(dirname "$0")/../.."
IP_DB="@ip-location-db/geo-whois-asn-country@${IP_DB_VERSION:-2.3.2026061719}"
BOXES="country-json@2.3.0"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$IP_DB" "$BOXES" >/dev/null)
mkdir -p "$work/ip" "$work/boxes"
tar xzf "$work"/ip-location-db-geo-whois-asn-country-*.tgz -C "$work/ip"
tar xzf "$work"/country-json-*.tgz -C "$work/boxes"
python3 scripts/geo/build-geo-data.py "$work/ip/package" "$work/boxes/package" shared/geo
echo "$IP_DB" > shared/geo/SOURCE
echo "$BOXES" >> shared/geo/SOURCE
