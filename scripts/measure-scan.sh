#!/usr/bin/env bash
# Measures `idc-guard scan` on synthetic trails: events per second and peak RSS. First an
# organisation trail (mostly machine traffic), beside inflating the same files with libdeflate
# (the floor), inflating and skimming them (`signin::skim`, what reading costs beyond the floor)
# and a plain Python scan.
# Then the S3-layout trail (200k events in 400 gzip files, 10k users, portal events known only
# by user id, one address per user per day): one core and two, without and with --state (first
# scan and re-scan), beside a plain Python scan of the same files (scripts/python_scan.py).
# Then JSON-lines trails pinned to one core: 1M events / 10k users, 1M / 100k users and
# 2M / 10k users to show that memory follows users, not events.
# Usage: scripts/measure-scan.sh [org|s3]   (writes the trails under target/measure-scan/; `org`
# runs only the organisation trail, `s3` only that and the S3-layout trail)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
out=target/measure-scan
mkdir -p "$out"
log "building release binaries"
cargo build --release --locked -p idc-guard -p idc-guard-core --bin idc-guard --example gen_trail \
  --example gen_s3_trail --example inflate_only
release="$(target_dir)/release"
bin=$release/idc-guard

gen() { # events users
  local f="$out/trail-$1-$2.jsonl"
  [ -s "$f" ] || "$release"/examples/gen_trail "$1" "$2" > "$f" 2>/dev/null
  echo "$f"
}

measure() { # label cpus events file... (extra scan arguments in $SCAN_ARGS)
  local label=$1 cpus=$2 events=$3
  shift 3
  local t0 t1 rss status=0
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  /usr/bin/time -f "%M" -o "$out/rss" taskset -c "$cpus" "$bin" scan "$@" --format json \
    --policy /nonexistent ${SCAN_ARGS:-} > "$out/findings.jsonl" 2> "$out/stderr" || status=$?
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

# An organisation trail: 1M events in 1,000 S3 log files, mostly machine traffic (services,
# pipelines, KMS, role chains, ~1.3 KB a record), 2 % sign-in, portal and IdC-session records.
org="$out/org-trail"
[ -d "$org" ] || "$release"/examples/gen_s3_trail "$org" 1000000 10000 1000 7 50 2>/dev/null
mapfile -t org_files < <(find "$org" -name '*.json.gz' | sort)
org_events=1000000
log "organisation trail: ${#org_files[@]} files, $org_events events, 2 % read by the checks"
taskset -c 0 "$release"/examples/inflate_only "${org_files[@]}"
taskset -c 0 "$release"/examples/inflate_only --skim "${org_files[@]}"
measure "org trail, 1 core" 0 "$org_events" "${org_files[@]}"
measure "org trail, 2 cores" 0,1 "$org_events" "${org_files[@]}"
taskset -c 0 python3 scripts/python_scan.py "${org_files[@]}"
[ "${1:-}" = org ] && exit 0

s3="$out/s3-trail"
[ -d "$s3" ] || "$release"/examples/gen_s3_trail "$s3" 200000 10000 400 2>/dev/null
mapfile -t files < <(find "$s3" -name '*.json.gz' | sort)
s3_events=$(for f in "${files[@]}"; do gzip -dc "$f"; done | grep -o '"eventID"' | wc -l)
log "S3-layout trail (all sign-in shaped): ${#files[@]} files, $s3_events events"
taskset -c 0 "$release"/examples/inflate_only "${files[@]}"
measure "S3 trail, 1 core" 0 "$s3_events" "${files[@]}"
measure "S3 trail, 2 cores" 0,1 "$s3_events" "${files[@]}"
rm -f "$out/state.db"
SCAN_ARGS="--state $out/state.db" measure "S3 trail, 1 core, --state (first)" 0 "$s3_events" "${files[@]}"
SCAN_ARGS="--state $out/state.db" measure "S3 trail, 1 core, --state (re-scan)" 0 "$s3_events" "${files[@]}"
taskset -c 0 python3 scripts/python_scan.py "${files[@]}"
[ "${1:-}" = s3 ] && exit 0

small=$(gen 1000000 10000)
measure "1M events, 10k users, 1 core" 0 "$(wc -l < "$small")" "$small"
measure "1M events, 100k users, 1 core" 0 1000000 "$(gen 1000000 100000)"
measure "2M events, 10k users, 1 core" 0 2000000 "$(gen 2000000 10000)"
