#!/usr/bin/env bash
# The Ray executor's test on a real two-node Ray cluster (tests/ray/test_cluster.py),
# in a network namespace that holds only loopback, so that Ray listens on 127.0.0.1 and
# nothing else can be reached. Needs root (unshare), `ip`, a built curate
# (CURATE_BIN, default target/debug/curate) and Ray in .venv
# (python/curate_ray/requirements.txt). Prints `SKIPPED: …` and exits 0 when one is
# missing, unless CURATE_REQUIRE_RAY=1 (then it fails).
set -uo pipefail
cd "$(dirname "$0")/.."
skip() {
  if [ "${CURATE_REQUIRE_RAY:-0}" = 1 ]; then echo "error: the Ray test cannot run: $*" >&2; exit 1; fi
  echo "SKIPPED: the Ray executor's cluster test: $*" >&2
  exit 0
}
command -v unshare >/dev/null && command -v ip >/dev/null || skip "needs unshare and ip (util-linux, iproute2)"
[ "$(id -u)" = 0 ] || skip "needs root, to make a network namespace with only loopback"
.venv/bin/python -c "import ray" 2>/dev/null || skip "Ray is not installed in .venv (pip install -r python/curate_ray/requirements.txt)"
export CURATE_BIN="${CURATE_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/debug/curate}"
[ -x "$CURATE_BIN" ] || skip "no curate binary at $CURATE_BIN (cargo build first)"
exec timeout 600 unshare --net bash -c 'ip link set lo up && exec .venv/bin/python tests/ray/test_cluster.py'
