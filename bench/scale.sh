#!/usr/bin/env bash
# make bench-scale: the year's backfill at growing scales under a memory limit. For each scale of
# SCALES (default "1 10"; scale 10 ≈ 15 M dossier versions, ≈ 11 GB of landing files): generate
# the year once (clean extracts, seed 42), back it up with `memory_limit` MEMORY (default 1GiB),
# and report wall time, peak RSS, the spill files' bytes (summed from the marts' log lines) and
# the growth of wall time relative to the first scale. Needs the disk for every scale's landing
# and warehouse under bench/out.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cchc-target}"
BIN="${BIN:-$CARGO_TARGET_DIR/release/cchc}"
SCALES="${SCALES:-1 10}"; MEMORY="${MEMORY:-1GiB}"
FROM=2022-01-01; TO=2022-12-31
OUT="bench/out"; mkdir -p "$OUT"
. bench/common.sh

printf '%-6s %10s %8s %10s %12s %8s\n' scale landing_MB wall_s peak_MB spilled_MB growth
first=""
for s in $SCALES; do
  landing="$OUT/landing-$s-$FROM-$TO"
  if [ ! -f "$landing/.done" ]; then
    rm -rf "$landing"
    "$BIN" gen --out "$landing" --from "$FROM" --to "$TO" --scale "$s" --seed 42 --defects 0 >/dev/null
    touch "$landing/.done"
  fi
  rm -rf "$OUT/wh-scale"
  r=$(measure "scale-$s" env CCHC_PII_KEY=bench-key-0123456789 CCHC_LOG=info CCHC_MEMORY_LIMIT="$MEMORY" \
      "$BIN" --log-format json --warehouse "$OUT/wh-scale" --landing "$landing" backfill --from "$FROM" --to "$TO") || exit 1
  read -r t m <<<"$r"
  spilled=$(grep -h '"mart computed"' "$OUT/time-scale-$s.txt" 2>/dev/null \
    | python3 -c 'import sys,json; print(round(sum(json.loads(l)["fields"].get("spilled_bytes",0) for l in sys.stdin)/1e6,1))')
  mb=$(du -sm --exclude=.done "$landing" | cut -f1)
  [ -z "$first" ] && first=$t
  printf '%-6s %10d %8.2f %10d %12s %8.2f\n' "$s" "$mb" "$t" "$m" "$spilled" "$(echo "$t/$first" | bc -l)"
done
echo "memory_limit $MEMORY; growth = wall time / wall time of the first scale"
