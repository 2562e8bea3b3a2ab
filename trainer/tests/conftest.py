"""Shared fixtures: shards made by curate from the quickstart recipe, a tiny
Mistral-shaped config, and a runner for the trainer as `curate train` runs it.

Tests that need torch skip when it is missing, with the reason printed (`pytest -rs`);
scripts/test.sh sets CURATE_REQUIRE_TORCH=1, which turns a missing torch into a
failure instead.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

TRAINER = Path(__file__).resolve().parents[1]
REPO = TRAINER.parent
sys.path.insert(0, str(TRAINER))
sys.path.insert(0, str(REPO / "python"))

TINY = REPO / "recipes" / "models" / "tiny-mistral"


def have_torch():
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        return str(e)
    return None


TORCH_MISSING = have_torch()
if TORCH_MISSING and os.environ.get("CURATE_REQUIRE_TORCH") == "1":
    raise RuntimeError(f"CURATE_REQUIRE_TORCH=1 but the trainer's packages are missing: {TORCH_MISSING}")

needs_torch = pytest.mark.skipif(
    TORCH_MISSING is not None,
    reason=f"torch/transformers/peft not installed ({TORCH_MISSING}); scripts/test.sh installs trainer/requirements-test.txt",
)


def curate_bin():
    if os.environ.get("CURATE_BIN"):
        return Path(os.environ["CURATE_BIN"])
    for target in (os.environ.get("CARGO_TARGET_DIR"), REPO / "target"):
        if target and (Path(target) / "debug" / "curate").exists():
            return Path(target) / "debug" / "curate"
    return None


@pytest.fixture(scope="session")
def shards(tmp_path_factory):
    """The quickstart's output (shards with compliance verdicts), made once."""
    exe = curate_bin()
    if exe is None:
        pytest.fail("no curate binary: build it (`cargo build`) or set CURATE_BIN")
    out = tmp_path_factory.mktemp("quickstart") / "out"
    r = subprocess.run([str(exe), "--no-progress", "-q", "--out", str(out), str(REPO / "recipes" / "quickstart.toml")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture
def shards_copy(shards, tmp_path):
    """A private copy of the shards, for tests that edit the manifest."""
    dest = tmp_path / "shards"
    shutil.copytree(shards, dest)
    return dest


def settings_for(shards, out, **over):
    s = {
        "shards": str(shards),
        "output": str(out),
        "base": {"model": str(TINY), "id": "mistralai/Mistral-7B-v0.1", "id_from": "target.model",
                 "family": "mistral", "random_init": True},
        "method": "lora",
        "lora": {"rank": 8, "alpha": 16, "dropout": 0.0, "targets": ["all-linear"]},
        "learning_rate": 3e-3,
        "max_steps": 4,
        "micro_batch": 1,
        "grad_accum": 1,
        "warmup": 0.1,
        "budget_hours": 0.25,
        "seed": 7,
        "device": "cpu",
        "eval_max_packs": 2,
        "gradient_checkpointing": False,
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(s.get(k), dict):
            s[k] = {**s[k], **v}
        else:
            s[k] = v
    return s


def run_trainer(settings, tmp_path, env=None, timeout=600):
    """Run `python -m curate_train` as `curate train` does; returns (process, seconds)."""
    path = Path(tmp_path) / f"settings-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(settings))
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(TRAINER), str(REPO / "python")])
    e.update(env or {})
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "curate_train", "--settings", str(path)],
                       capture_output=True, text=True, env=e, timeout=timeout)
    return r, time.monotonic() - t


def report(out):
    return json.loads((Path(out) / "report.json").read_text())
