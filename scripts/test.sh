#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need_apt+=(etcd-client)
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "warning: missing ${need_apt[*]}; install them to run every test" >&2
  fi
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
if ! command -v kubectl >/dev/null 2>&1; then
  echo "error: kubectl is required by the black-box tests (1.27 and 1.33 are used when present)" >&2
  exit 1
fi

# One build of everything (binaries included) that the tests then share.
cargo build --workspace --all-targets
cargo nextest run --workspace --no-fail-fast "$@"
# The API server's black-box suites again, on the etcd backend.
KWOK_TEST_STORE=etcd cargo nextest run --workspace --no-fail-fast -E 'package(kwok) & kind(test)' "$@"
# A short fuzz of every parser and decoder (docs/reliability.md): KWOK_FUZZ_SECONDS per target
# (5 by default, 0 skips); skipped without a nightly toolchain.
if [ "${KWOK_FUZZ_SECONDS:-5}" != 0 ]; then
  KWOK_FUZZ_SECONDS=${KWOK_FUZZ_SECONDS:-5} bash scripts/fuzz.sh
fi
