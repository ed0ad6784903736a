#!/usr/bin/env bash
# Fetches network-owner (ASN) data into policy/geo/, beside the city database: with it, the
# sign-in checks compare networks by owner (autonomous system) instead of by /24 or /48, so one
# carrier's or company's address pool is one network for token-replay and device-code-phishing.
#
# The data is ip-location-db's ASN package on npm (RouteViews, the five RIRs and DB-IP's IP to
# ASN Lite, CC BY 4.0: attribution in the licence files copied beside it), pinned to one version
# and checked against the registry's sha512 before it is unpacked. Its maintainers have since
# announced that later data moves to their GitHub releases; this pinned version is what the
# registry serves. Two CSV files, about 32 MB, read on the first comparison of networks.
#
# Usage: scripts/geo/fetch-asn-db.sh [DIR]   (default: policy/geo)
set -euo pipefail
cd "$(dirname "$0")/../.."
PACKAGE="@ip-location-db/asn"
VERSION="2.3.2026061719"
INTEGRITY="sha512-PpqYi7wyEyWwunXBtl+y3Vi403SvNywotWwvmiYCOUtE0SVol/Sf492Ee+eErEznmGapxEQB2SAfrpXuZ9a+vQ=="
dest="${1:-policy/geo}"
source scripts/geo/fetch-pinned.sh
fetch_pinned "$PACKAGE" "$VERSION" "$INTEGRITY" "$dest" \
  asn-ipv4.csv asn-ipv6.csv DBIP-LICENSE NRO_LICENSE ROUTEVIEWS-LICENSE MODIFICATIONS
echo "ASN data $PACKAGE@$VERSION in $dest ($(du -ch "$dest"/asn-ipv*.csv | tail -1 | cut -f1))"
