#!/usr/bin/env python3
"""Builds idc-guard's embedded geo data from two npm packages (no other network access):

  @ip-location-db/geo-whois-asn-country  IP ranges -> country (data CC BY 4.0, NRO; packaging CC0)
  country-json                           country bounding boxes (MIT, Samson Daniel)

Usage: scripts/geo/update.sh (fetches the pinned packages with `npm pack`, then runs this).
Writes shared/geo/country-ranges.bin.gz and shared/geo/country-boxes.tsv.

country-ranges.bin (before gzip), all integers big-endian:
  b"IDCGEO1\\n"
  u32 n4, then n4 x (u32 first address, 2 ASCII bytes country or b"--" for unassigned)
  u32 n6, then n6 x (u128 first address, 2 ASCII bytes country or b"--")
A range runs from its first address to the next entry's first address; adjacent ranges of one
country are merged, and gaps between source ranges are written as "--".
"""
import gzip
import json
import struct
import sys
from pathlib import Path


def ranges(path):
    out = []
    with open(path) as f:
        for line in f:
            start, end, cc = line.strip().split(",")
            out.append((int(start), int(end), cc.upper()))
    out.sort()
    return out


def compact(rows):
    """[(start, end, cc)] -> [(start, cc)] with gaps as '--' and equal neighbours merged."""
    out = []
    next_free = 0
    for start, end, cc in rows:
        if start < next_free:  # overlapping source rows: the earlier one wins
            start = next_free
            if start > end:
                continue
        if start > next_free:
            out.append((next_free, "--"))
        out.append((start, cc))
        next_free = end + 1
    out.append((next_free, "--"))
    merged = []
    for start, cc in out:
        if merged and merged[-1][1] == cc:
            continue
        merged.append((start, cc))
    return merged


def main(ip_pkg, country_pkg, out_dir):
    ip_pkg, country_pkg, out_dir = Path(ip_pkg), Path(country_pkg), Path(out_dir)
    v4 = compact(ranges(ip_pkg / "geo-whois-asn-country-ipv4-num.csv"))
    v6 = compact(ranges(ip_pkg / "geo-whois-asn-country-ipv6-num.csv"))
    v4 = [(s, c) for s, c in v4 if s <= 0xFFFFFFFF]
    v6 = [(s, c) for s, c in v6 if s <= (1 << 128) - 1]
    blob = bytearray(b"IDCGEO1\n")
    blob += struct.pack(">I", len(v4))
    for start, cc in v4:
        blob += struct.pack(">I", start) + cc.encode("ascii")
    blob += struct.pack(">I", len(v6))
    for start, cc in v6:
        blob += start.to_bytes(16, "big") + cc.encode("ascii")
    with gzip.GzipFile(out_dir / "country-ranges.bin.gz", "wb", mtime=0) as f:
        f.write(bytes(blob))

    src = country_pkg / "src"
    boxes = {d["country"]: d for d in json.load(open(src / "country-by-geo-coordinates.json"))}
    codes = {d["country"]: d["abbreviation"] for d in json.load(open(src / "country-by-abbreviation.json"))}
    lines = ["# cc\tsouth\tnorth\twest\teast\tname  (degrees, empty when unknown; from country-json, MIT)"]
    # country-json uses a few codes that are not ISO 3166-1 alpha-2.
    fixes = {"UK": "GB", "TP": "TL"}
    for name, cc in sorted(codes.items(), key=lambda kv: (kv[1], kv[0])):
        cc = fixes.get(cc.upper(), cc.upper())
        if len(cc) != 2 or name in ("England", "Scotland", "Wales", "Northern Ireland"):
            continue
        box = boxes.get(name, {})
        edges = [box.get(k) for k in ("south", "north", "west", "east")]
        cells = "\t".join("" if v is None else str(v) for v in edges) if None not in edges else "\t\t\t"
        lines.append(f"{cc}\t{cells}\t{name}")
    (out_dir / "country-boxes.tsv").write_text("\n".join(lines) + "\n")
    print(f"{len(v4)} IPv4 and {len(v6)} IPv6 ranges, {len(lines) - 1} countries", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:4])
