#!/usr/bin/env bash
# One run, three set-ups, the same load (issue 14's bench): signed DescribeInstances by ID and
# durable mutations (RebootInstances: accepted = its operation committed) against
#   sqlite    nubis serve ×1 on the embedded SQLite store
#   pg1       nubis serve ×1 on PostgreSQL
#   pg3       nubis serve ×3 on one PostgreSQL database behind HAProxy (scripts/cluster)
# with nubis-bench (bench/README.md). Every server runs NUBIS_SIM_TIME_SCALE=0 and
# NUBIS_RATE_LIMITS=off; the fleet is made by the generator in each set-up. The server CPU
# column of pg3 is the sum of the three nodes (HAProxy's is in "other").
#
#   bench/cluster.sh                       every set-up, default load (below)
#   bench/cluster.sh -- --concurrency 16,64 --duration 20s    generator options for all three
#   BENCH_SETUPS="pg1 pg3" bench/cluster.sh                     only these set-ups
#
# Output: each set-up's summary lines and Markdown table, kept in $BENCH_OUT (default
# target/bench-cluster/<UTC time>/<set-up>.txt), and printed together at the end. Build first:
#   cargo build --release -p nubis-server -p nubis-bench
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
nubis=${NUBIS_BIN:-$root/target/release/nubis}
gen=${NUBIS_BENCH_BIN:-$root/target/release/nubis-bench}
pg=${NUBIS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
setups=${BENCH_SETUPS:-sqlite pg1 pg3}
out=${BENCH_OUT:-$root/target/bench-cluster/$(date -u +%Y%m%dT%H%M%SZ)}
[ "${1:-}" = "--" ] && shift
# Default load: every scenario of `all` (healthz baseline, describe by ID, a filtered page,
# reboot) on a 1,000-instance fleet.
load=(--fleet 1000 --scenario all --duration 10s --warmup 1s --concurrency 32)
[ "$#" -gt 0 ] && load=("$@")

for b in "$nubis" "$gen"; do
  [ -x "$b" ] || { echo "bench/cluster.sh: $b missing: cargo build --release -p nubis-server -p nubis-bench" >&2; exit 1; }
done
mkdir -p "$out"

# The generator's key pair (bench/README.md), given to every server.
export NUBIS_ADMIN_ACCESS_KEY_ID=AKIDnubisbench000000000000000000
export NUBIS_ADMIN_ACCESS_KEY_SECRET=nubisbenchsecretkey0000000000000
export NUBIS_SIM_TIME_SCALE=0 NUBIS_RATE_LIMITS=off NUBIS_LOG=${NUBIS_LOG:-warn}

db=nubis_bench_$$_$RANDOM
db_url() { local base=${pg%%\?*}; echo "${base%/*}/$db"; }
cluster_dir=$out/cluster
cluster_port=$((20000 + RANDOM % 20000))
cluster() {
  NUBIS_BIN=$nubis NUBIS_CLUSTER_DIR=$cluster_dir NUBIS_CLUSTER_PORT=$cluster_port \
    NUBIS_CLUSTER_PG=$pg NUBIS_CLUSTER_DB=$db NUBIS_CLUSTER_NODES=3 scripts/cluster "$@"
}
cleanup() {
  if [ -d "$cluster_dir" ]; then cluster down >/dev/null 2>&1 || true; fi
  psql "$pg" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

for setup in $setups; do
  echo "==== $setup ====" >&2
  case $setup in
    sqlite)
      "$gen" --spawn "$nubis" "${load[@]}" | tee "$out/$setup.txt"
      ;;
    pg1)
      psql "$pg" -qc "CREATE DATABASE $db" >/dev/null
      NUBIS_DATABASE_URL=$(db_url) "$gen" --spawn "$nubis" "${load[@]}" | tee "$out/$setup.txt"
      psql "$pg" -qc "DROP DATABASE $db WITH (FORCE)" >/dev/null
      ;;
    pg3)
      cluster up >"$out/cluster-up.txt"
      pids=$(cat "$cluster_dir"/node-*.pid | paste -sd, -)
      "$gen" --target "http://127.0.0.1:$cluster_port" --server-pid "$pids" "${load[@]}" |
        tee "$out/$setup.txt"
      cluster down --purge >/dev/null
      ;;
    *)
      echo "bench/cluster.sh: unknown set-up $setup (sqlite, pg1, pg3)" >&2
      exit 1
      ;;
  esac
done

echo
echo "nubis $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), load: ${load[*]}"
for setup in $setups; do
  echo
  echo "### $setup"
  # The generator's Markdown table (after its summary lines).
  sed -n '/^|/p' "$out/$setup.txt"
done
echo
echo "(full output: $out)"
