#!/usr/bin/env bash
# make bench, part 3: the daily run, and the guard of every optimisation: the year's
# target_results compared with a reference.
# - The next day: a warehouse of the year but its last two days, then the day before the last
#   (the daily run that keeps the month-end state snapshots current), then `cchc run --date` of
#   the last day on a fresh copy of that warehouse, RUNS times: a new day, as every day in
#   production (recomputes December and the year).
# - Runs again on the year's warehouse (bench/out/wh of bench/ingest.sh): of the year's last day
#   (re-ingests that day; the first run after the backfill also writes the snapshot the next
#   ones read) and of a mid-year day (recomputes July to December and the year from all of
#   staging), RUNS times each, medians.
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
ENV=(env CCHC_PII_KEY=bench-key-0123456789)
read -r BEFORE2 BEFORE1 <<<"$(python3 -c "import datetime as d; t=d.date.fromisoformat('$TO'); print(t-d.timedelta(2), t-d.timedelta(1))")"
rm -rf "$OUT/wh-next" "$OUT/wh-next-run"
"${ENV[@]}" "$BIN" --quiet --warehouse "$OUT/wh-next" --landing "$LANDING" backfill --from "$FROM" --to "$BEFORE2" >/dev/null || [ $? -eq 1 ]
"${ENV[@]}" "$BIN" --quiet --warehouse "$OUT/wh-next" --landing "$LANDING" run --date "$BEFORE1" >/dev/null || [ $? -eq 1 ]
T=(); M=()
for i in $(seq "$RUNS"); do
  rm -rf "$OUT/wh-next-run"; cp -r "$OUT/wh-next" "$OUT/wh-next-run"
  read -r t m <<<"$(measure "next-day" "${ENV[@]}" "$BIN" --quiet --warehouse "$OUT/wh-next-run" --landing "$LANDING" run --date "$TO")"
  T+=("$t"); M+=("$m")
done
printf 'daily run of the next day (--date %s after %s): median %.2f s, peak %d MB (all runs: %s)\n' "$TO" "$BEFORE1" \
  "$(printf '%s\n' "${T[@]}" | median)" "$(printf '%s\n' "${M[@]}" | median)" "${T[*]}"
"$BIN" --quiet --warehouse "$OUT/wh-next-run" --landing "$LANDING" sql --format json "SELECT * FROM target_results" | sort > "$OUT/target_results.next"
rm -rf "$OUT/wh-next" "$OUT/wh-next-run"
MID=$(python3 -c "import datetime as d; a=d.date.fromisoformat('$FROM'); b=d.date.fromisoformat('$TO'); print(a+(b-a)/2)")
for day in "$TO" "$MID"; do
  T=(); M=()
  for i in $(seq "$RUNS"); do
    read -r t m <<<"$(measure "daily-$day" "${ENV[@]}" "$BIN" --quiet --warehouse "$WH" --landing "$LANDING" run --date "$day")"
    T+=("$t"); M+=("$m")
  done
  printf 'run again --date %s on the year: median %.2f s, peak %d MB (all runs: %s)\n' "$day" \
    "$(printf '%s\n' "${T[@]}" | median)" "$(printf '%s\n' "${M[@]}" | median)" "${T[*]}"
done
"$BIN" --quiet --warehouse "$WH" --landing "$LANDING" sql --format json "SELECT * FROM target_results" | sort > "$OUT/target_results.now"
cmp -s "$OUT/target_results.now" "$OUT/target_results.next" || {
  echo "target_results of the next-day warehouse DIFFER from the year's ($OUT/target_results.next vs .now)" >&2; exit 1; }
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
