#!/usr/bin/env bash
# make bench, part 2: marts and checks of a whole year from staging. cchc (`refresh --full`:
# every period's marts, target_results and district roll-up, written as Parquet) against DuckDB
# running the same model SQL over the same staged Parquet (bench/marts_duckdb.py), 2 threads each.
# Reuses the warehouse of bench/ingest.sh (bench/out/wh), ingesting the year first if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cchc-target}"
BIN="${BIN:-$CARGO_TARGET_DIR/release/cchc}"
SCALE="${SCALE:-1}"; FROM="${FROM:-2022-01-01}"; TO="${TO:-2022-12-31}"; RUNS="${RUNS:-3}"
OUT="bench/out"; LANDING="$OUT/landing-$SCALE-$FROM-$TO"; WH="$OUT/wh"
python3 -c 'import duckdb, yaml' 2>/dev/null || pip install -q duckdb pyyaml

if [ ! -d "$WH/ledger" ]; then
  [ -f "$LANDING/.done" ] || "$BIN" gen --out "$LANDING" --from "$FROM" --to "$TO" --scale "$SCALE" --seed 42 --defects 0
  touch "$LANDING/.done"
  rm -rf "$WH"
  CCHC_PII_KEY=bench-key-0123456789 "$BIN" --quiet --warehouse "$WH" --landing "$LANDING" backfill --from "$FROM" --to "$TO" || [ $? -eq 1 ]
fi
ROWS=$(python3 -c "import duckdb; print(duckdb.sql(\"SELECT count(*) FROM read_parquet('$WH/staging/*/*/*.parquet', union_by_name=true)\").fetchall()[0][0])")

. bench/common.sh
settle # bench/ingest.sh has just emptied its trash

CT=(); CM=(); DT=(); DM=()
for i in $(seq "$RUNS"); do
  r=$(measure cchc-marts "$BIN" --quiet --warehouse "$WH" --landing "$LANDING" refresh --full) || exit 1; read -r t m <<<"$r"
  CT+=("$t"); CM+=("$m")
  retire "$OUT/duck-marts"
  r=$(measure duckdb-marts python3 bench/marts_duckdb.py "$WH" "$OUT/duck-marts" "$FROM" "$TO" "$LANDING/reference/units.csv") || exit 1; read -r t m <<<"$r"
  DT+=("$t"); DM+=("$m")
done
ct=$(printf '%s\n' "${CT[@]}" | median); cm=$(printf '%s\n' "${CM[@]}" | median)
dt=$(printf '%s\n' "${DT[@]}" | median); dm=$(printf '%s\n' "${DM[@]}" | median)
echo
echo "marts and checks from staging: $ROWS staged rows, $FROM..$TO at scale $SCALE; $RUNS runs, medians"
printf '%-8s %8s %10s\n' tool wall_s peak_MB
printf '%-8s %8.2f %10d\n' cchc "$ct" "$cm"
printf '%-8s %8.2f %10d\n' duckdb "$dt" "$dm"
printf 'ratio cchc/duckdb wall time: %.2f (all runs: cchc %s; duckdb %s)\n' "$(echo "$ct/$dt" | bc -l)" "${CT[*]}" "${DT[*]}"
