#!/usr/bin/env bash
# keydeck's detection vs jq, side by side, over the same 100,000 CloudTrail records.
#
#   benches/detect_vs_jq.sh            # prints both medians and the ratio
#   RUNS=5 benches/detect_vs_jq.sh     # jq runs (default 5)
#
# 1. `cargo bench --bench detect -- --write-jsonl FILE` writes the bench's 100k records
#    (the sandbox's record shape, one a line) to a temporary file.
# 2. jq selects the events the simplest rules would look at:
#      jq -c 'select(.eventName=="ScheduleKeyDeletion" or .errorCode!=null)'
#    timed with hyperfine when installed (apt-get install hyperfine), else /usr/bin/time.
# 3. The criterion bench `detect/parse_and_detect_100k` parses every record and runs all
#    twelve rules (windows, dedupe, key resolution) on one thread; its median comes from
#    criterion's estimates.json.
# jq does less work (one filter, no state) and still reads the same bytes: the ratio is
# how much faster keydeck's full evaluation is than jq's single select.
#
# `cargo bench` builds in release; the first build of the AWS SDK crates takes minutes.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
export CARGO_TARGET_DIR="$TARGET_DIR"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
jsonl="$work/records.jsonl"

command -v jq >/dev/null || { echo "jq is not installed (apt-get install jq)" >&2; exit 2; }

echo "== writing the bench's records"
cargo bench --bench detect -- --write-jsonl "$jsonl" 2>&1 | grep -v '^\s*\(Compiling\|Finished\|Running\)' || true
[ -s "$jsonl" ] || { echo "no records written" >&2; exit 1; }
printf '%s records, %s bytes\n' "$(wc -l <"$jsonl")" "$(wc -c <"$jsonl")"
filter='select(.eventName=="ScheduleKeyDeletion" or .errorCode!=null)'
printf 'jq selects %s of them\n' "$(jq -c "$filter" "$jsonl" | wc -l)"

echo "== jq ($RUNS runs)"
jq_median=""
if command -v hyperfine >/dev/null; then
    hyperfine --warmup 1 --runs "$RUNS" --export-json "$work/jq.json" \
        "jq -c '$filter' '$jsonl' > /dev/null"
    jq_median="$(jq -r '.results[0].median' "$work/jq.json")"
else
    times=()
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f '%e' -o "$work/t" jq -c "$filter" "$jsonl" >/dev/null
        times+=("$(cat "$work/t")")
    done
    jq_median="$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')"
    echo "runs: ${times[*]} s"
fi

echo "== keydeck: parse + all detection rules (criterion)"
cargo bench --bench detect -- 'detect/parse_and_detect_100k' 2>&1 | grep -v '^\s*\(Compiling\|Finished\)' || true
est="$TARGET_DIR/criterion/detect/parse_and_detect_100k/new/estimates.json"
[ -f "$est" ] || { echo "no criterion estimates at $est" >&2; exit 1; }
kd_median="$(jq -r '.median.point_estimate / 1e9' "$est")"

records="$(wc -l <"$jsonl")"
echo
echo "== side by side, $records records"
awk -v jq="$jq_median" -v kd="$kd_median" -v n="$records" 'BEGIN {
    printf "jq select (median)                : %8.3f s  %10.0f records/s\n", jq, n / jq
    printf "keydeck parse + 12 rules (median) : %8.3f s  %10.0f records/s\n", kd, n / kd
    printf "ratio jq / keydeck                : %8.1f x\n", jq / kd
    printf "target >= 200000 records/s        : %s\n", (n / kd >= 200000 ? "met" : "NOT met")
}'
