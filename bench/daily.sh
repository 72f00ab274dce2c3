#!/usr/bin/env bash
# make bench, part 3: the daily run on the year's warehouse (bench/out/wh of bench/ingest.sh), and
# the guard of every optimisation: the year's target_results compared with a reference.
# - `cchc run --date` of the year's last day (re-ingests that day, recomputes December and the
#   year) and of a mid-year day (July to December and the year), RUNS times each, medians.
# - target_results of the warehouse, sorted JSON lines, against bench/out/target_results.ref:
#   written the first time (run `make bench` on the version to compare against first), then
#   compared byte for byte; a difference fails the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cchc-target}"
BIN="${BIN:-$CARGO_TARGET_DIR/release/cchc}"
SCALE="${SCALE:-1}"; FROM="${FROM:-2022-01-01}"; TO="${TO:-2022-12-31}"; RUNS="${RUNS:-3}"
OUT="bench/out"; LANDING="$OUT/landing-$SCALE-$FROM-$TO"; WH="$OUT/wh"
[ -d "$WH/ledger" ] || { echo "no year warehouse in $WH: run bench/ingest.sh first" >&2; exit 1; }
. bench/common.sh
MID=$(python3 -c "import datetime as d; a=d.date.fromisoformat('$FROM'); b=d.date.fromisoformat('$TO'); print(a+(b-a)/2)")
for day in "$TO" "$MID"; do
  T=(); M=()
  for i in $(seq "$RUNS"); do
    read -r t m <<<"$(measure "daily-$day" env CCHC_PII_KEY=bench-key-0123456789 "$BIN" --quiet --warehouse "$WH" --landing "$LANDING" run --date "$day")"
    T+=("$t"); M+=("$m")
  done
  printf 'daily run --date %s on the year: median %.2f s, peak %d MB (all runs: %s)\n' "$day" \
    "$(printf '%s\n' "${T[@]}" | median)" "$(printf '%s\n' "${M[@]}" | median)" "${T[*]}"
done
"$BIN" --quiet --warehouse "$WH" --landing "$LANDING" sql --format json "SELECT * FROM target_results" | sort > "$OUT/target_results.now"
if [ ! -f "$OUT/target_results.ref" ]; then
  cp "$OUT/target_results.now" "$OUT/target_results.ref"
  echo "target_results: $(wc -l < "$OUT/target_results.ref") rows kept as the reference ($OUT/target_results.ref)"
elif cmp -s "$OUT/target_results.ref" "$OUT/target_results.now"; then
  echo "target_results: the same $(wc -l < "$OUT/target_results.now") rows as the reference"
else
  echo "target_results DIFFER from the reference ($OUT/target_results.ref vs .now)" >&2
  diff "$OUT/target_results.ref" "$OUT/target_results.now" | head -20 >&2
  exit 1
fi
