#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (cargo-fuzz, libFuzzer) for KWOK_FUZZ_SECONDS each and prints
# what each executed. Usage: scripts/fuzz.sh [target...]   (all targets when none are named)
#
#   KWOK_FUZZ_SECONDS   seconds per target (default 15); KWOK_FUZZ_SECONDS=3600 for a long run
#   KWOK_FUZZ_CORPUS    where inputs found are kept between runs (default fuzz/target/corpus);
#                       the committed seeds in fuzz/corpus/<target> are read, never written
#
# Needs a nightly toolchain (`rustup toolchain install nightly`); without one it says so and
# exits 0. Installs cargo-fuzz when it is missing. Exits 1 when a target found a crash; the
# input is in fuzz/artifacts/<target>/ and `cargo +nightly fuzz run <target> <file>` replays it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${KWOK_FUZZ_SECONDS:-15}
corpus=${KWOK_FUZZ_CORPUS:-$PWD/target/corpus}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: skipped: no nightly toolchain (rustup toolchain install nightly)" >&2
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# Longest input per target: room for real objects and patches, bounded so no input reaches
# the server's 3 MiB body limit through the fuzzer.
max_len() {
  case $1 in
    body_json | body_yaml | protobuf | json_patch | merge_patch | strategic_merge_patch | apply | wal) echo 65536 ;;
    stage_jq | stage_template) echo 4096 ;;
    *) echo 1024 ;;
  esac
}

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

start=$(date +%s)
cargo +nightly fuzz build
echo "fuzz: build took $(($(date +%s) - start)) s"

failed=()
summary=()
for target in "${targets[@]}"; do
  mkdir -p "$corpus/$target" "artifacts/$target"
  log=$(mktemp)
  cargo +nightly fuzz build "$target" >/dev/null 2>&1 || true
  t0=$(date +%s)
  if cargo +nightly fuzz run "$target" "$corpus/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
    -max_len="$(max_len "$target")" -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result=CRASH
    failed+=("$target")
    grep -E "panicked at|ERROR: libFuzzer|SUMMARY|Test unit written" "$log" | head -5 >&2 || true
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  # The fuzzing time as libFuzzer counts it (a crash ends it early), else the wall time.
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  summary+=("$(printf '%-24s %12s runs %6s s  %s' "$target" "${runs:-?}" "${secs:-$(($(date +%s) - t0))}" "$result")")
  echo "fuzz: ${summary[-1]}"
  rm -f "$log"
done

echo "fuzz: summary ($seconds s per target)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}; inputs in fuzz/artifacts/" >&2
  exit 1
fi
