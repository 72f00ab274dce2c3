#!/usr/bin/env bash
# make bench: a province-year of synthetic extracts, ingested by cchc (then marted and checked: the
# whole daily pipeline) and, as the peer, loaded into
# typed Parquet by DuckDB (2 threads) from the same files. Whole-process wall time and peak memory
# come from /usr/bin/time -v. Environment: SCALE (default 1), FROM/TO (default the year 2022),
# RUNS (default 3; the median is reported).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cchc-target}"
BIN="${BIN:-$CARGO_TARGET_DIR/release/cchc}"
SCALE="${SCALE:-1}"; FROM="${FROM:-2022-01-01}"; TO="${TO:-2022-12-31}"; RUNS="${RUNS:-3}"
OUT="bench/out"; LANDING="$OUT/landing-$SCALE-$FROM-$TO"
mkdir -p "$OUT"

python3 -c 'import duckdb' 2>/dev/null || pip install -q duckdb

if [ ! -f "$LANDING/.done" ]; then
  rm -rf "$LANDING"
  echo "generating $FROM..$TO at scale $SCALE (clean extracts) into $LANDING"
  "$BIN" gen --out "$LANDING" --from "$FROM" --to "$TO" --scale "$SCALE" --seed 42 --defects 0
  touch "$LANDING/.done"
fi
INPUT_MB=$(du -sm --exclude=.done "$LANDING" | cut -f1)

. bench/common.sh
settle
# The page cache warm for both tools: every landing file read, both programs loaded once (the
# first of three backfills was the slowest in most earlier runs of this script).
find "$LANDING" -type f -exec cat {} + >/dev/null
"$BIN" --version >/dev/null
python3 -c 'import duckdb'

CCHC_T=(); CCHC_M=(); DUCK_T=(); DUCK_M=()
for i in $(seq "$RUNS"); do
  retire "$OUT/wh"
  r=$(measure cchc env CCHC_PII_KEY=bench-key-0123456789 "$BIN" --quiet --warehouse "$OUT/wh" --landing "$LANDING" backfill --from "$FROM" --to "$TO") || exit 1
  read -r t m <<<"$r"
  CCHC_T+=("$t"); CCHC_M+=("$m")
  retire "$OUT/duck"; mkdir -p "$OUT/duck"
  r=$(measure duckdb python3 bench/duckdb_load.py "$LANDING" "$OUT/duck") || exit 1
  read -r t m <<<"$r"
  DUCK_T+=("$t"); DUCK_M+=("$m")
done
RECORDS=$(python3 -c "import json,glob,os; r=max(glob.glob('$OUT/wh/runs/*.json'), key=os.path.getmtime); print(json.load(open(r))['totals']['read'])")
ct=$(printf '%s\n' "${CCHC_T[@]}" | median); cm=$(printf '%s\n' "${CCHC_M[@]}" | median)
dt=$(printf '%s\n' "${DUCK_T[@]}" | median); dm=$(printf '%s\n' "${DUCK_M[@]}" | median)
echo
echo "input: $INPUT_MB MB of landing files, $RECORDS records, $FROM..$TO at scale $SCALE; $RUNS runs, medians"
printf '%-8s %8s %10s %12s %10s\n' tool wall_s peak_MB records/s MB/s
printf '%-8s %8.2f %10d %12.0f %10.1f\n' cchc "$ct" "$cm" "$(echo "$RECORDS/$ct" | bc -l)" "$(echo "$INPUT_MB/$ct" | bc -l)"
printf '%-8s %8.2f %10d %12.0f %10.1f\n' duckdb "$dt" "$dm" "$(echo "$RECORDS/$dt" | bc -l)" "$(echo "$INPUT_MB/$dt" | bc -l)"
printf 'ratio cchc/duckdb wall time: %.2f (all runs: cchc %s; duckdb %s)\n' "$(echo "$ct/$dt" | bc -l)" "${CCHC_T[*]}" "${DUCK_T[*]}"
