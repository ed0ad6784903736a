#!/usr/bin/env python3
"""A plain Python scan of CloudTrail log files, the baseline `scripts/measure-scan.sh` compares
`idc-guard scan` with: the standard library only, one process, as a script someone would write.

It reads every file (gzip or not; `{"Records": [...]}` or JSON lines), parses each record's time,
resolves the user (names learned from sign-ins, portal events by identity-store user id),
geolocates the address with the same embedded country table (`shared/geo/`, bisect), and keeps
per user the countries seen and the last sighting, flagging a new country and travel faster than
900 km/h between the centres of two countries' first boxes, and per portal session the networks
seen. It does less than the Rust scan (centres, not box lower bounds; no windows over failures;
no Okta correlation), so the ratio flatters Python.

Usage: python_scan.py FILE...   (prints events/s and the number of flags on stderr)
"""
import bisect
import gzip
import ipaddress
import json
import math
import struct
import sys
import time
from datetime import datetime
from pathlib import Path

GEO = Path(__file__).resolve().parent.parent / "shared" / "geo"


def load_geo():
    data = gzip.decompress((GEO / "country-ranges.bin.gz").read_bytes())
    assert data[:8] == b"IDCGEO1\n"
    (n4,) = struct.unpack_from(">I", data, 8)
    starts, countries = [], []
    off = 12
    for _ in range(n4):
        start, cc = struct.unpack_from(">I2s", data, off)
        starts.append(start)
        countries.append(cc.decode())
        off += 6
    centres = {}
    for line in (GEO / "country-boxes.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        cc, south, north, west, east = line.split("\t")[:5]
        centres.setdefault(cc, ((float(south) + float(north)) / 2, (float(west) + float(east)) / 2))
    return starts, countries, centres


def country(geo, ip):
    starts, countries, _ = geo
    try:
        n = int(ipaddress.IPv4Address(ip))
    except ValueError:
        return None
    i = bisect.bisect_right(starts, n) - 1
    cc = countries[i] if i >= 0 else "--"
    return None if cc == "--" else cc


def km(geo, a, b):
    centres = geo[2]
    if a not in centres or b not in centres:
        return 0.0
    (la1, lo1), (la2, lo2) = centres[a], centres[b]
    p1, p2 = math.radians(la1), math.radians(la2)
    dp, dl = p2 - p1, math.radians(lo2 - lo1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def records(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        text = f.read()
    text = text.strip()
    if text.startswith("{") and '"Records"' in text[:200]:
        yield from json.loads(text).get("Records", [])
    else:
        for line in text.splitlines():
            if line.strip():
                yield json.loads(line)


def network(ip):
    return ip.rsplit(".", 1)[0] if ip and ip.count(".") == 3 else ip


def main(paths):
    started = time.perf_counter()
    geo = load_geo()
    names, last, sessions, seen_countries = {}, {}, {}, {}
    events = flags = 0
    for path in paths:
        for r in records(path):
            events += 1
            t = datetime.fromisoformat(r.get("eventTime", "").replace("Z", "+00:00"))
            ui = r.get("userIdentity") or {}
            extra = r.get("additionalEventData") or {}
            user_id = (ui.get("onBehalfOf") or {}).get("userId")
            name = extra.get("UserName") or ui.get("userName")
            if name is None and ":" in (ui.get("principalId") or ""):
                name = ui["principalId"].split(":", 1)[1]
            if user_id and name:
                names.setdefault(user_id, name.lower())
            user = (name or "").lower() or names.get(user_id) or user_id
            ip = r.get("sourceIPAddress")
            if not user or not ip:
                continue
            net = network(ip)
            cc = country(geo, ip)
            if cc is None:
                continue
            known = seen_countries.setdefault(user, set())
            if known and cc not in known:
                flags += 1
            known.add(cc)
            prev = last.get(user)
            if prev and prev[1] != cc:
                hours = max(abs((t - prev[0]).total_seconds()) / 3600, 1 / 60)
                if km(geo, prev[1], cc) / hours > 900:
                    flags += 1
            last[user] = (t, cc)
            session = ui.get("credentialId")
            if session:
                seen = sessions.setdefault(session, set())
                seen.add(net)
                if len(seen) == 2:
                    flags += 1
    secs = time.perf_counter() - started
    print(f"python scan: {events} events in {secs:.2f} s, {events / secs:,.0f} events/s, "
          f"{len(last)} users, {flags} flags", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
