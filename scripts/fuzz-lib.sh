# Shared by scripts/fuzz-short and scripts/fuzz-campaign (sourced, not run).
# The fuzz crate (fuzz/) is its own workspace: libFuzzer's coverage instrumentation is added
# by cargo-fuzz with `-s none` (no sanitizer), which works on the stable toolchain.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fuzz_dir="$root/fuzz"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Instrumented objects go under <target>/x86_64-unknown-linux-gnu/, apart from normal builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

# Every target, and its dictionary / maximum input length.
FUZZ_TARGETS=(auth_tencent auth_aliyun agent_auth tencent_wire aliyun_params render tencent_api aliyun_api openstack_api admin_api console router policy_cam policy_ram policy_oslo access_rule_path)

fuzz_dict() {
  case $1 in
    auth_tencent | tencent_wire | tencent_api) echo tencent ;;
    auth_aliyun | aliyun_params | aliyun_api) echo aliyun ;;
    openstack_api) echo openstack ;;
    admin_api | console) echo admin ;;
    router) echo router ;;
    policy_cam | policy_ram | policy_oslo) echo policy ;;
    *) echo "" ;;
  esac
}

fuzz_max_len() {
  case $1 in
    # Deep flattened names need tens of KB (the known crasher was 40 KB).
    tencent_wire | router) echo 65536 ;;
    *) echo 8192 ;;
  esac
}

ensure_cargo_fuzz() {
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (crates.io)"
    cargo install --locked cargo-fuzz
  fi
}

fuzz_build() {
  # Release + debug assertions (cargo-fuzz's default), no sanitizer: stable Rust.
  # FUZZ_BUILD_FLAGS adds cargo-fuzz build flags (e.g. --no-trace-compares: see
  # fuzz/results/NOTES.md); use a CARGO_TARGET_DIR of its own, the flags change every object.
  # shellcheck disable=SC2086
  cargo fuzz build -s none --fuzz-dir "$fuzz_dir" ${FUZZ_BUILD_FLAGS:-} "$@"
}

fuzz_bin() {
  echo "${FUZZ_BIN_DIR:-$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release}/$1"
}

# fuzz_run TARGET LOG [libFuzzer flags...]: runs the built target on its corpus (+ seeds),
# with a 2 MiB main-thread stack like a tokio worker's, so deep recursion that would kill
# the server kills the fuzzer too. Returns libFuzzer's exit code.
fuzz_run() {
  local t=$1 log=$2
  shift 2
  local corpus="$fuzz_dir/corpus/$t" seeds="$fuzz_dir/seeds/$t" art="$fuzz_dir/artifacts/$t/"
  mkdir -p "$corpus" "$art"
  local dict_flag=()
  local d
  d=$(fuzz_dict "$t")
  if [ -n "$d" ]; then dict_flag=("-dict=$fuzz_dir/dict/$d.dict"); fi
  (
    cd "$fuzz_dir"
    ulimit -s 2048
    exec "$(fuzz_bin "$t")" "$corpus" "$seeds" "${dict_flag[@]}" \
      -artifact_prefix="$art" -max_len="$(fuzz_max_len "$t")" -timeout=10 \
      -rss_limit_mb=4096 -print_final_stats=1 "$@"
  ) >"$log" 2>&1
}

# The crash / timeout input libFuzzer wrote, if any.
fuzz_artifact() {
  grep -oE 'Test unit written to [^ ]+' "$1" | tail -1 | sed 's/.* //'
}
