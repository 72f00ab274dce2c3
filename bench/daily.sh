#!/usr/bin/env bash
# make bench, part 3: the daily run, and the guard of every optimisation: the year's
# target_results compared with a reference.
# - The next day, as every day in production (a new day: recomputes December and the year), on
#   fresh copies of a warehouse of the year up to the day before, RUNS times: a month's first
#   day, a day within the month, and the month's last day (see below).
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
# Days (for TO = 2022-12-31): the year is backfilled to October 31, November 1st runs as a daily
# run (it writes October's month-end snapshot, from all of staging: the first daily run after a
# backfill does), and November is backfilled. Then, each measured on fresh copies: December 1st
# (a month's first day: it writes November's snapshot from October's and November's versions),
# December 16th (a day within a month: November's snapshot and December's versions, once the
# 1st has run and the 2nd..15th are backfilled), and December 31st (a month's last day, once
# the 16th..30th are backfilled).
read -r P2E P1F P1F2 P1E F F2 D15 D16 D30 <<<"$(python3 -c "
import datetime as d
t = d.date.fromisoformat('$TO'); f = t.replace(day=1); p1e = f - d.timedelta(1); p1f = p1e.replace(day=1)
print(p1f - d.timedelta(1), p1f, p1f + d.timedelta(1), p1e, f, f + d.timedelta(1), *(t - d.timedelta(n) for n in (16, 15, 1)))")"
next_day() { # label, day: RUNS runs of `run --date day` on fresh copies of $OUT/wh-next
  local T=() M=() r t m
  for i in $(seq "$RUNS"); do
    retire "$OUT/wh-next-run"; cp -r "$OUT/wh-next" "$OUT/wh-next-run"
    r=$(measure "next-$2" "${ENV[@]}" "$BIN" --quiet --warehouse "$OUT/wh-next-run" --landing "$LANDING" run --date "$2") || exit 1
    read -r t m <<<"$r"; T+=("$t"); M+=("$m")
  done
  printf 'daily run, %s (--date %s): median %.2f s, peak %d MB (all runs: %s)\n' "$1" "$2" \
    "$(printf '%s\n' "${T[@]}" | median)" "$(printf '%s\n' "${M[@]}" | median)" "${T[*]}"
}
retire "$OUT/wh-next" "$OUT/wh-next-run"
step() { "${ENV[@]}" "$BIN" --quiet --warehouse "$OUT/wh-next" --landing "$LANDING" "$@" >/dev/null || [ $? -eq 1 ]; }
step backfill --from "$FROM" --to "$P2E"
step run --date "$P1F"
step backfill --from "$P1F2" --to "$P1E"
next_day "a month's first day" "$F"
step run --date "$F"
step backfill --from "$F2" --to "$D15"
next_day "a day within the month" "$D16"
step backfill --from "$D16" --to "$D30"
next_day "the month's last day" "$TO"
"$BIN" --quiet --warehouse "$OUT/wh-next-run" --landing "$LANDING" sql --format json "SELECT * FROM target_results" | sort > "$OUT/target_results.next"
retire "$OUT/wh-next" "$OUT/wh-next-run"
MID=$(python3 -c "import datetime as d; a=d.date.fromisoformat('$FROM'); b=d.date.fromisoformat('$TO'); print(a+(b-a)/2)")
for day in "$TO" "$MID"; do
  T=(); M=()
  for i in $(seq "$RUNS"); do
    r=$(measure "daily-$day" "${ENV[@]}" "$BIN" --quiet --warehouse "$WH" --landing "$LANDING" run --date "$day") || exit 1; read -r t m <<<"$r"
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
