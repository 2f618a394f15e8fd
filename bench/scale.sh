#!/usr/bin/env bash
# The scaling table of issue 16: each fleet size, each binary (a baseline and the candidate),
# one run on one machine. For each: start-up on the fleet's data until /healthz answers 200,
# the server's RSS once serving, then nubis-bench's scenarios against it (healthz, signed
# DescribeInstances by ID, a filtered page of 100 at a random offset, durable reboots).
#
#   BENCH_BASELINE=/tmp/nubis-old bench/scale.sh                 sizes 10000 100000 1000000
#   BENCH_SIZES="10000 100000" bench/scale.sh -- --duration 5s   generator options after --
#
# Fleets are made once per size by the candidate through the API (RunInstances, 100 per call,
# timed: the "created in" line) in $BENCH_FLEETS/<size> (default target/bench-fleets) and
# reused by later runs, with their instance IDs kept beside them (--ids-file). Both binaries
# serve the same data (the store's format is the same; the reboots leave every instance
# RUNNING). Build first: cargo build --release -p nubis-server -p nubis-bench
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
nubis=${NUBIS_BIN:-$root/target/release/nubis}
gen=${NUBIS_BENCH_BIN:-$root/target/release/nubis-bench}
baseline=${BENCH_BASELINE:-}
sizes=${BENCH_SIZES:-10000 100000 1000000}
fleets=${BENCH_FLEETS:-$root/target/bench-fleets}
out=${BENCH_OUT:-$root/target/bench-scale/$(date -u +%Y%m%dT%H%M%SZ)}
[ "${1:-}" = "--" ] && shift
load=(--scenario all --duration 8s --warmup 1s --concurrency 32 --seed 7)
[ "$#" -gt 0 ] && load=("$@")

for b in "$nubis" "$gen" ${baseline:+"$baseline"}; do
  [ -x "$b" ] || { echo "bench/scale.sh: $b missing (cargo build --release -p nubis-server -p nubis-bench)" >&2; exit 1; }
done
mkdir -p "$out" "$fleets"

export NUBIS_ADMIN_ACCESS_KEY_ID=AKIDnubisbench000000000000000000
export NUBIS_ADMIN_ACCESS_KEY_SECRET=nubisbenchsecretkey0000000000000
export NUBIS_SIM_TIME_SCALE=0 NUBIS_RATE_LIMITS=off NUBIS_LOG=${NUBIS_LOG:-warn}

pid=
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi; }
trap stop EXIT

rss_mib() { awk '/^VmRSS:/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }

summary=$out/summary.md
{
  echo "nubis $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load: ${load[*]}"
  echo
  echo "| fleet | binary | start-up s | RSS MiB serving (peak) | B/instance | healthz req/s | by-ID req/s (p99 ms) | filtered page req/s (p99 ms) | reboot accepted/s (p99 ms) | by-ID under load req/s (p99 ms) | beside it: pages/s, reboots accepted/s |"
  echo "|---:|---|---:|---:|---:|---:|---|---|---|---|---|"
} >"$summary"

for size in $sizes; do
  data=$fleets/$size
  if [ ! -f "$data/bench-ids" ]; then
    echo "==== making a fleet of $size ====" >&2
    mkdir -p "$data"
    start=$(date +%s.%N)
    "$gen" --spawn "$nubis" --data "$data" --fleet "$size" --ids-file "$data/bench-ids" \
      --scenario describe-by-id --duration 1s --warmup 100ms --setup-concurrency 8 \
      --settle-timeout 3600s >"$out/make-$size.txt" 2>&1
    echo "fleet $size: created through the API in $(echo "$(date +%s.%N) - $start" | bc) s (incl. start-up and ID collection)" | tee -a "$out/made.txt" >&2
  fi
  for which in ${baseline:+baseline} candidate; do
    bin=$nubis
    [ "$which" = baseline ] && bin=$baseline
    port=$((20000 + RANDOM % 20000))
    echo "==== $size / $which ====" >&2
    t0=$(date +%s.%N)
    "$bin" serve --listen "127.0.0.1:$port" --data "$data" >"$out/server-$size-$which.log" 2>&1 &
    pid=$!
    until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
      kill -0 "$pid" 2>/dev/null || { echo "bench/scale.sh: the server exited" >&2; exit 1; }
      sleep 0.05
    done
    startup=$(echo "$(date +%s.%N) - $t0" | bc)
    rss=$(rss_mib "$pid")
    "$gen" --target "http://127.0.0.1:$port" --server-pid "$pid" --fleet "$size" \
      --ids-file "$data/bench-ids" "${load[@]}" >"$out/$size-$which.txt" 2>&1
    peak=$(awk '/^VmHWM:/ {printf "%d", $2 / 1024}' "/proc/$pid/status")
    stop
    row() { # scenario -> "req/s (p99)" from the generator's table
      awk -F'|' -v s="$1" '$2 ~ "^ *"s" *$" {gsub(/ /, "", $5); gsub(/ /, "", $7); printf "%s (%s)", $5, $7}' "$out/$size-$which.txt"
    }
    healthz=$(awk -F'|' '$2 ~ /^ *baseline-healthz *$/ {gsub(/ /, "", $5); print $5}' "$out/$size-$which.txt")
    beside=$(awk '/beside it: describe-filter-page/ {p=$4} /beside it: reboot/ {gsub(/\(/, "", $6); r=$6} END {printf "%s, %s", p, r}' "$out/$size-$which.txt")
    printf '| %s | %s | %.1f | %s (peak %s) | %s | %s | %s | %s | %s | %s | %s |\n' "$size" "$which" "$startup" "$rss" \
      "$peak" "$((rss * 1048576 / size))" "$healthz" "$(row describe-by-id)" "$(row describe-filter-page)" \
      "$(row reboot)" "$(row by-id-under-load)" "$beside" >>"$summary"
  done
done
echo
cat "$summary"
echo
echo "(full output: $out)"
