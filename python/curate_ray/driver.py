"""The Ray driver that `curate run RECIPE --executor ray` starts.

It reads the job from stdin (JSON: the plan's path, the curate binary, the CPUs of a
task, the cluster's address, and each phase's task ids with those still to run), and
writes what happens to stdout as lines `@curate {JSON}` that curate prints:

- `cluster`: the nodes that will run tasks, and the node this driver is attached to;
- `task`: a task finished (on which node, in how long, or found already complete);
- `phase`: a phase finished;
- `failed`: a task failed for a reason of its own; `stderr` is curate's message;
- `error`: the run cannot go on (no cluster, a node that cannot see the work folder,
  the node this driver is attached to went away).

The exit code is 0 when every phase finished, 2 otherwise.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

# How long every node has to answer the start-up check.
CHECK_TIMEOUT_S = float(os.environ.get("CURATE_RAY_CHECK_TIMEOUT", "60"))
# Tries of a task whose worker, `curate task` process or node was killed (the driver runs it
# again, on any live node): CURATE_RAY_MAX_RETRIES, default 3.
MAX_RETRIES = int(os.environ.get("CURATE_RAY_MAX_RETRIES", "3"))
# Seconds before a killed task's first retry, doubled for each further one, so that a
# task killed on every try (out of memory wherever it runs) does not spin. A retry may
# be offered the dead node until Ray's health checks declare it dead (some 15 s); Ray
# then asks a live node for a worker, so no longer wait is needed.
RETRY_DELAY_S = float(os.environ.get("CURATE_RAY_RETRY_DELAY", "2"))


def emit(event, **fields):
    fields["event"] = event
    sys.stdout.write("@curate " + json.dumps(fields) + "\n")
    sys.stdout.flush()


class TaskKilled(Exception):
    """`curate task` was killed by a signal (out of memory, a node going away): Ray
    runs the task again."""


def _die_with_parent():
    # The `curate task` process goes when the Ray worker that started it goes, so that
    # a retried task never races an orphan of its first try.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


# Fault injection for tests (see src/build/fault.rs): passed on to `curate task`.
FORWARDED_ENV = ("CURATE_KILL_AT",)


def run_task(curate, plan, task_id, threads, env=None):
    """One task: `curate task PLAN ID` on this node. A failure of the task's own is a
    result (its exit code and stderr), not an exception, so Ray does not retry it."""
    import ray

    node = ray.util.get_node_ip_address()
    node_id = ray.get_runtime_context().get_node_id()
    started = time.time()
    try:
        p = subprocess.run(
            [curate, "task", plan, task_id, "--threads", str(threads)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
            env={**os.environ, **(env or {})},
        )
    except OSError as e:
        return {"id": task_id, "node": node, "code": 127, "stderr": f"error: cannot run `{curate}` on node {node}: {e}\n"}
    stderr = p.stderr.decode("utf-8", "replace")
    if p.returncode < 0:
        raise TaskKilled(f"`curate task {task_id}` was killed by signal {-p.returncode} on node {node}")
    return {
        "id": task_id,
        "node": node,
        "node_id": node_id,
        "code": p.returncode,
        "stderr": stderr[-20000:],
        "already": "was already complete" in stderr,
        "seconds": round(time.time() - started, 3),
    }


def node_in(e):
    """The node a Ray error names (`The node (IP: 10.0.0.2, node ID: …)`), else
    `unknown`."""
    m = re.search(r"\(IP: ([^,\s)]+)", str(e))
    return m.group(1) if m else "unknown"


def gave_up(task_id, e, tries):
    """curate's message for a task that failed on every try: why, in a line, and how
    to go on."""
    cause = e.cause if isinstance(getattr(e, "cause", None), Exception) else e
    kind = type(e).__name__
    if kind in ("NodeDiedError", "WorkerCrashedError", "LocalRayletDiedError", "OwnerDiedError"):
        why = f"the Ray worker or node running it went away ({kind}) on every one of its {tries} tries"
    elif isinstance(cause, TaskKilled):
        why = f"{cause} on every one of its {tries} tries"
    else:
        why = f"it failed on every one of its {tries} tries: {str(cause).strip().splitlines()[-1] if str(cause).strip() else kind}"
    return (f"error: task `{task_id}` did not finish: {why}\n"
            "hint: the tasks that finished are kept in the work folder; run the same command again to resume "
            "(CURATE_RAY_MAX_RETRIES sets how often a task runs again)\n")


def listed_dead(ray, node_id):
    """Whether the cluster lists `node_id` as dead. When the cluster cannot be asked
    (its GCS is gone) nothing is known: the retry goes ahead, and the driver stops when
    Ray gives up on the GCS."""
    try:
        return any(n["NodeID"] == node_id and not n.get("Alive") for n in ray.nodes())
    except Exception:
        return False


def lost_own_node(driver, phase, task):
    """The node this driver is attached to went away (its raylet died): say so and exit
    at once, without Ray's shutdown, which waits on that raylet."""
    emit("error", phase=phase, id=task,
         message=(f"the Ray node this driver is attached to ({driver['ip']}, {driver['id'][:12]}) went away while "
                  f"task `{task}` ran: no task can be submitted from here"),
         hint=("the tasks that finished are kept in the work folder; run the same command again, on a machine "
               "of the cluster whose Ray node is up, to resume"))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(2)


def check_node(paths, curate):
    """What this node cannot see of the shared paths, and whether it can run curate."""
    import ray

    missing = [p for p in paths if not os.path.exists(p)]
    runs = os.path.isfile(curate) and os.access(curate, os.X_OK)
    return {"node": ray.util.get_node_ip_address(), "missing": missing, "curate": runs}


def main(argv):
    job = json.load(sys.stdin)
    try:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    except ImportError as e:
        emit("error", message=f"Ray is not installed for `{sys.executable}` ({e})",
             hint="`python -m pip install -r python/curate_ray/requirements.txt`")
        return 2
    # The functions below travel to the workers by value: the nodes need Ray, not
    # this package.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

    address = job.get("address")
    try:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    except Exception as e:  # Ray raises several kinds here: say which cluster, and why
        where = f"at `{address}`" if address else "(RAY_ADDRESS, else a local one)"
        emit("error", message=f"cannot connect to the Ray cluster {where}: {e}",
             hint="start one with `ray start --head`, or give its address with `--address` or RAY_ADDRESS")
        return 2
    try:
        return run(job, ray, NodeAffinitySchedulingStrategy)
    finally:
        ray.shutdown()


def run(job, ray, NodeAffinitySchedulingStrategy):
    curate, plan, threads = job["curate"], job["plan"], int(job["threads"])

    # Every node that can run a task must see the work folder and the curate binary at
    # the same paths as this one: check each before the first task is submitted.
    listed = ray.nodes()
    nodes = [n for n in listed if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
    if not nodes:
        emit("error", message="the Ray cluster has no live node with a CPU")
        return 2
    checks = {
        n["NodeID"]: ray.remote(check_node)
        .options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
        .remote(job["shared"], curate)
        for n in nodes
    }
    ready, _ = ray.wait(list(checks.values()), num_returns=len(checks), timeout=CHECK_TIMEOUT_S)
    ready = set(ready)
    problems = []
    for n in nodes:
        ref = checks[n["NodeID"]]
        ip = n.get("NodeManagerAddress", "?")
        if ref not in ready:
            problems.append(f"node {ip} ({n['NodeID'][:12]}) did not answer within {CHECK_TIMEOUT_S:.0f}s")
            continue
        r = ray.get(ref)
        for p in r["missing"]:
            problems.append(f"node {ip} ({n['NodeID'][:12]}) cannot see `{p}`")
        if not r["curate"]:
            problems.append(f"node {ip} ({n['NodeID'][:12]}) cannot run the curate binary `{curate}`")
    if problems:
        emit("error", message="not every Ray node sees the build's files:\n  " + "\n  ".join(problems),
             hint="the work folder, the output's folder and the curate binary must be on a filesystem every node mounts at the same path (see docs/outputs.md)")
        return 2
    driver_node = ray.get_runtime_context().get_node_id()
    driver = next(({"id": n["NodeID"], "ip": n.get("NodeManagerAddress")} for n in listed if n["NodeID"] == driver_node),
                  {"id": driver_node, "ip": "?"})
    emit("cluster", nodes=[{"id": n["NodeID"], "ip": n.get("NodeManagerAddress"), "cpus": n["Resources"].get("CPU", 0)} for n in nodes],
         driver=driver)

    # Retries are the driver's, not Ray's: a task whose process, worker or node died
    # runs again after a delay that doubles with each try, and the driver alone
    # decides when its own node's death ends the run.
    remote = ray.remote(run_task).options(num_cpus=threads, max_retries=0, retry_exceptions=False)
    forwarded = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    for phase in job["phases"]:
        name, total, pending = phase["name"], phase["total"], phase["pending"]
        started = time.time()
        refs = {remote.remote(curate, plan, t, threads, forwarded): t for t in pending}
        tries = {t: 1 for t in pending}
        done, already, on = total - len(pending), 0, set()
        waiting = list(refs)
        later = []  # (when, task id): tries to submit again
        while waiting or later:
            now = time.time()
            for when, t in [x for x in later if x[0] <= now]:
                later.remove((when, t))
                ref = remote.remote(curate, plan, t, threads, forwarded)
                refs[ref] = t
                waiting.append(ref)
            # Until the next retry is due (None: none is waiting).
            timeout = max(0.0, min(w for w, _ in later) - now) if later else None
            if not waiting:
                time.sleep(timeout)
                continue
            finished, waiting = ray.wait(waiting, num_returns=1, timeout=timeout)
            if not finished:
                continue
            ref = finished[0]
            try:
                r = ray.get(ref)
            except Exception as e:  # the task's process, worker or node died
                t = refs[ref]
                if type(e).__name__ == "LocalRayletDiedError" or listed_dead(ray, driver_node):
                    # This driver submits every task through the raylet of the node it
                    # is attached to: with that gone, nothing can be submitted or
                    # cancelled from here (Ray's core worker can abort on a cancel).
                    lost_own_node(driver, phase=name, task=t)
                if tries[t] <= MAX_RETRIES:
                    later.append((time.time() + RETRY_DELAY_S * 2 ** (tries[t] - 1), t))
                    tries[t] += 1
                    continue
                r = {"id": t, "node": node_in(e), "code": -1, "stderr": gave_up(t, e, tries[t])}
            if r["code"] != 0:
                # The tasks cancelled here end in errors of Ray's that say nothing.
                os.environ["RAY_IGNORE_UNHANDLED_ERRORS"] = "1"
                for w in waiting:
                    ray.cancel(w, force=True)
                emit("failed", phase=name, id=r["id"], node=r["node"], code=r["code"], stderr=r["stderr"])
                return 2
            done += 1
            already += bool(r.get("already"))
            on.add(r.get("node_id"))
            emit("task", phase=name, id=r["id"], node=r["node"], seconds=r["seconds"], already=bool(r.get("already")),
                 done=done, total=total)
        emit("phase", phase=name, total=total, ran=len(pending) - already, skipped=total - len(pending) + already,
             nodes=len(on), seconds=round(time.time() - started, 3))
    return 0
