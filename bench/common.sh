# Shared by bench/ingest.sh, bench/marts.sh and bench/daily.sh (sourced). Needs $OUT.
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

measure() { # label, command...: prints "wall_s rss_mb"; exit code 1 (a failed target) is success
  local label=$1; shift
  local log="$OUT/time-$label.txt" rc=0
  /usr/bin/time -v "$@" >"$OUT/stdout-$label.txt" 2>"$log" || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    echo "$label failed; see $log" >&2; tail -20 "$log" >&2; exit 1
  fi
  local wall rss
  wall=$(grep 'Elapsed (wall clock)' "$log" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep 'Maximum resident set size' "$log" | awk '{print int($NF/1024)}')
  echo "$wall $rss"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# A previous run's output is moved into $OUT/trash, emptied when the script exits, instead of
# deleted just before the next timed run: ext4 does not reuse an inode for a few minutes after it
# was freed (`recently_deleted`), and each file created meanwhile scans past the thousands a
# warehouse's `rm -rf` has just freed. In `perf`, that scan was 10-12% of a backfill's samples
# (system time 2.6-4.0 s instead of 1.9-2.5 s): a cost of the harness, not of the tool measured.
retire() { # path...: move out of the way (same file system), deleted at exit
  mkdir -p "$OUT/trash"
  local p
  for p in "$@"; do [ -e "$p" ] && mv "$p" "$(mktemp -d "$OUT/trash/XXXXXX")/"; done
  return 0
}
trap 'rm -rf "$OUT/trash"' EXIT

# Files deleted before a measurement (an earlier script's trash, a test suite's temporary
# folders) still cost every file created in the next minutes: ext4 without a journal skips an
# inode freed in the last 60 s, or in the last 360 s while its inode-table block is dirty (a
# `make bench` started minutes after a test suite measured the backfill at 0.55 of DuckDB's load
# instead of 0.50). `sync` writes those blocks, and a minute later no freed inode is skipped.
settle() {
  sync
  sleep "${SETTLE_S:-61}"
}
