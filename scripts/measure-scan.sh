#!/usr/bin/env bash
# Measures `idc-guard scan` on synthetic organisation trails: events per second and peak RSS.
# Pinned to one core (taskset -c 0; the scan is single-threaded). 1M events / 10k users, then 1M / 100k users and
# 2M / 10k users to show that memory follows users, not events.
# Usage: scripts/measure-scan.sh   (writes the trails under target/measure-scan/)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
out=target/measure-scan
mkdir -p "$out"
log "building release binaries"
cargo build --release --locked -p idc-guard -p idc-guard-core --bin idc-guard --example gen_trail
bin=target/release/idc-guard

gen() { # events users
  local f="$out/trail-$1-$2.jsonl"
  [ -s "$f" ] || target/release/examples/gen_trail "$1" "$2" > "$f" 2>/dev/null
  echo "$f"
}

measure() { # label cpus file
  local label=$1 cpus=$2 file=$3 events
  events=$(wc -l < "$file")
  local t0 t1 rss status=0
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$out/rss" taskset -c "$cpus" "$bin" scan "$file" --format json \
    --policy /nonexistent > "$out/findings.jsonl" 2> "$out/stderr" || status=$?
  t1=$(date +%s.%N)
  [ "$status" -le 2 ] || { cat "$out/stderr" >&2; exit 1; }
  rss=$(tail -1 "$out/rss")
  python3 - "$label" "$events" "$t0" "$t1" "$rss" "$(wc -l < "$out/findings.jsonl")" <<'PY'
import sys
label, events, t0, t1, rss, findings = sys.argv[1:]
secs = float(t1) - float(t0)
print(f"{label:<34} {int(events):>9} events {secs:6.2f} s {int(events)/secs:>10,.0f} events/s  peak RSS {int(rss)/1024:7.1f} MiB  {findings} findings")
PY
}

command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (GNU time)" >&2; exit 1; }
small=$(gen 1000000 10000)
measure "1M events, 10k users, 1 core" 0 "$small"
measure "1M events, 100k users, 1 core" 0 "$(gen 1000000 100000)"
measure "2M events, 10k users, 1 core" 0 "$(gen 2000000 10000)"
