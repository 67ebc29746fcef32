#!/usr/bin/env bash
# Inventory benchmark (issue 5). Against one sandbox seeded with KEYS keys and SECRETS
# secrets across eu-north-1 and eu-west-1, alternating RUNS times:
#   - keydeck: a full refresh (`keydeck inventory --format json`, release build)
#   - baseline: the same calls from boto3 with 32 threads (benches/boto3_refresh.py)
# and reports medians, the wall-time ratio, API calls per key by the sandbox's own
# counter, keydeck's peak RSS, and the console's time from start to the first
# inventory frame drawn from the cache.
#
# Usage: benches/inventory.sh [KEYS=2000] [SECRETS=200] [RUNS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${1:-2000}
SECRETS=${2:-200}
RUNS=${3:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/keydeck-target}
cargo build --release --locked --quiet
BIN=$CARGO_TARGET_DIR/release/keydeck
D=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" --data-dir "$D/sb" sandbox up --traffic none --port "$PORT" --bulk-keys "$KEYS" --bulk-secrets "$SECRETS" >"$D/up.log" 2>&1 &
UP=$!
cleanup() { kill -INT "$UP" 2>/dev/null || true; wait "$UP" 2>/dev/null || true; tmux -L kdbench kill-session -t kdbench 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1200); do grep -q 'Ctrl-C' "$D/up.log" && break; kill -0 "$UP" 2>/dev/null || { cat "$D/up.log"; exit 1; }; sleep 0.5; done
eval "$("$BIN" --data-dir "$D/sb" sandbox env --as key-auditor)"
EP=$AWS_ENDPOINT_URL
REGIONS=eu-north-1,eu-west-1
stat_total() { python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1] + "/_sandbox/stats"))["total"])' "$EP"; }
reset() { python3 -c 'import sys,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/_sandbox/stats/reset", method="POST"))' "$EP"; }

kd_s=(); py_s=(); rss=(); calls=()
for i in $(seq "$RUNS"); do
  reset
  /usr/bin/time -f '%e %M' -o "$D/time" "$BIN" --data-dir "$D/kd" --region "$REGIONS" inventory --format json >"$D/inv.json"
  read -r secs kb <"$D/time"
  kd_s+=("$secs"); rss+=("$kb"); calls+=("$(stat_total)")
  py_s+=("$(python3 benches/boto3_refresh.py eu-north-1 eu-west-1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')")
done
nkeys=$(python3 -c 'import json,sys; print(sum(1 for i in json.load(open(sys.argv[1]))["items"] if i["kind"] == "Key"))' "$D/inv.json")

# Time to the first frame drawn from the cache (the cache was written by a console run).
ff=()
for i in $(seq $((RUNS + 1))); do
  mkdir -p "$D/kd"; : >"$D/kd/keydeck.log"
  tmux -L kdbench new-session -d -s kdbench -x 120 -y 40 "env AWS_ENDPOINT_URL=$EP AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY $BIN --data-dir $D/kd --region $REGIONS"
  # The first run fills the cache (waits for the live refresh); the others only need the first frame.
  want='first inventory frame drawn'; [ "$i" -eq 1 ] && want='inventory refreshed'
  for _ in $(seq 1200); do grep -q "$want" "$D/kd/keydeck.log" 2>/dev/null && break; sleep 0.1; done
  tmux -L kdbench send-keys -t kdbench q
  for _ in $(seq 100); do tmux -L kdbench has-session -t kdbench 2>/dev/null || break; sleep 0.1; done
  if [ "$i" -gt 1 ]; then
    ff+=("$(grep 'first inventory frame drawn' "$D/kd/keydeck.log" | grep -o 'ms=[0-9]*' | head -1 | cut -d= -f2)")
  fi
done

# A refresh when nothing changed: the console's feed-driven refresh between full refreshes
# (CloudTrail polls + re-reads of changed keys only), over three 5-second poll cycles.
mkdir -p "$D/kd"; : >"$D/kd/keydeck.log"
tmux -L kdbench new-session -d -s kdbench -x 120 -y 40 "env AWS_ENDPOINT_URL=$EP AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY $BIN --data-dir $D/kd --poll 5 --region $REGIONS"
for _ in $(seq 1200); do grep -q 'inventory refreshed' "$D/kd/keydeck.log" 2>/dev/null && break; sleep 0.1; done
sleep 6   # let the first (backfill) poll finish
reset
sleep 15  # three poll cycles, nothing changing
idle_calls=$(stat_total)
tmux -L kdbench send-keys -t kdbench q
for _ in $(seq 100); do tmux -L kdbench has-session -t kdbench 2>/dev/null || break; sleep 0.1; done

python3 - "$nkeys" "$SECRETS" "${kd_s[*]}" "${py_s[*]}" "${rss[*]}" "${calls[*]}" "${ff[*]}" "$idle_calls" <<'PY'
import statistics as st, sys
nkeys, nsec = int(sys.argv[1]), int(sys.argv[2])
kd, py, rss, calls, ff = ([float(x) for x in a.split()] for a in sys.argv[3:8])
m = lambda v: st.median(v)
print(f"keys {nkeys}, secrets {nsec}, runs {len(kd)}")
print(f"full refresh, keydeck (release):   median {m(kd):.2f} s   (runs: {', '.join(f'{x:.2f}' for x in kd)})")
print(f"full refresh, boto3 32 threads:    median {m(py):.2f} s   (runs: {', '.join(f'{x:.2f}' for x in py)})")
print(f"wall-time ratio keydeck/boto3:     {m(kd) / m(py):.2f}")
print(f"API calls per key (sandbox count): {m(calls) / nkeys:.2f}  ({int(m(calls))} calls)")
print(f"peak RSS, keydeck inventory:       {m(rss) / 1024:.1f} MB (max {max(rss) / 1024:.1f} MB)")
if ff:
    print(f"first inventory frame from cache:  median {m(ff):.0f} ms  (runs: {', '.join(f'{x:.0f}' for x in ff)})")
idle = int(sys.argv[8])
print(f"no-change refresh (1 poll cycle):  {idle / 3 / nkeys:.4f} calls per key  ({idle} calls over 3 cycles)")
PY
