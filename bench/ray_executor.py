"""The Ray executor against the local one, on a generated corpus (the Ray test's
generator, larger): local with 1 and 2 threads, Ray with 1 node and with 2 nodes of
1 CPU each, the same `--tasks`. Prints one Markdown row per run.

Run it like the test, in a network namespace with only loopback:

    unshare --net bash -c 'ip link set lo up && .venv/bin/python bench/ray_executor.py [FILES ROWS TASKS]'
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ray"))
import test_cluster as t  # noqa: E402


def timed(args):
    started = time.time()
    p = subprocess.run([t.CURATE, "--no-progress", *args], capture_output=True, text=True)
    wall = time.time() - started
    if p.returncode != 0:
        sys.exit(f"failed: {args}\n{p.stderr}")
    phases = sum(float(x) for x in re.findall(r"already complete\) in ([0-9.]+)s", p.stderr))
    return wall, phases, p.stderr


def main():
    files, rows, tasks = (int(a) for a in (sys.argv[1:4] if len(sys.argv) > 3 else ("8", "5000", "16")))
    from ray.cluster_utils import Cluster

    tmp = tempfile.mkdtemp(prefix="curate-raybench-")
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="cr-", dir="/tmp")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    recipe = t.corpus(tmp, files, rows)
    size = sum(os.path.getsize(os.path.join(tmp, "data", f)) for f in os.listdir(os.path.join(tmp, "data")))
    plan = subprocess.run([t.CURATE, "plan", recipe, "--out", os.path.join(tmp, "p"), "--tasks", str(tasks)], capture_output=True, text=True)
    n_tasks = len(re.findall(r'"id"', open(os.path.join(tmp, ".p.work", "plan.json")).read()))
    shutil.rmtree(os.path.join(tmp, ".p.work"))
    print(f"corpus: {files} files, {files * rows} records, {size / 1e6:.1f} MB; --tasks {tasks}: {n_tasks} tasks in the plan", flush=True)
    print("| executor | CPUs | wall s | s in phases | outputs as local |")
    print("|---|---:|---:|---:|---|")
    base = None
    for threads in (1, 2):
        out = os.path.join(tmp, f"local{threads}")
        wall, _, _ = timed(["run", recipe, "--out", out, "--tasks", str(tasks), "--threads", str(threads)])
        base = base or out
        print(f"| local, --threads {threads} | {threads} | {wall:.2f} | | |", flush=True)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        for nodes in (1, 2):
            if nodes == 2:
                cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            out = os.path.join(tmp, f"ray{nodes}")
            wall, phases, err = timed(["run", recipe, "--executor", "ray", "--address", cluster.address, "--python", sys.executable,
                                       "--out", out, "--tasks", str(tasks)])
            ok, _ = t.same(base, out)
            print(f"| Ray, {nodes} node(s) of 1 CPU | {nodes} | {wall:.2f} | {phases:.2f} | {'identical' if ok else 'DIFFERENT'} |", flush=True)
    finally:
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(os.environ["RAY_TMPDIR"], ignore_errors=True)


if __name__ == "__main__":
    main()
