#!/usr/bin/env bash
# The whole test suite, from a fresh clone: builds the crate and runs every test.
# Needs a Rust toolchain (cargo) and python3 (the sample-data check uses only its
# standard library). Tests that use ../shared/data run only when it is present and
# say so.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
  echo "error: cargo is not installed (https://rustup.rs)" >&2
  exit 2
fi
cargo test --locked --no-fail-fast 2>&1
