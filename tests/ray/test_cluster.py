"""The Ray executor on a real two-node Ray cluster (a head and a worker node, 1 CPU
each), started and stopped here, on loopback addresses only: the head node on
127.0.0.1, where the driver runs, and the worker node on 127.0.0.2 with a temporary
folder of its own, as a second machine would be.

Run by `scripts/test_ray.sh`, which puts it in a network namespace that has nothing
but loopback (Ray otherwise binds the machine's network interface): this script
refuses to start a cluster anywhere else.

Checks:
- the quickstart and a generated multi-file corpus (planted exact and near duplicates
  across files) give outputs byte-identical to the local executor's, with tasks on both
  nodes;
- a task failing on bad input fails the run with curate's own message, no traceback;
- a run started again skips the tasks an earlier run completed, and says so; started
  with `python -m curate_ray`;
- a whole node killed (SIGKILL to all its processes) while it runs a task: the driver runs
  the task again on the other node and the outputs are the same; with no retries left,
  or when the node that died is the one the driver is attached to, the run stops with a
  clear error, and running it again resumes;
- the GCS killed (the cluster is gone): the run stops with a clear error, and the same
  command on the local executor resumes from the tasks done on Ray;
- a node that cannot see the work folder (another node, in a mount namespace where an
  empty tmpfs hides it) is a clear error before any task runs.
"""

import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CURATE = os.environ.get("CURATE_BIN") or os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "debug", "curate")

failures = []


def check(name, ok, detail=""):
    print(f"{'ok' if ok else 'FAILED'}: {name}" + (f"\n{detail}" if not ok and detail else ""), flush=True)
    if not ok:
        failures.append(name)


def outputs(d):
    """Every file of an output folder, as the bytes that must be the same from run to
    run: not timings.json, and report.html without its timings section."""
    files = {}
    for root, _, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, d)
            if rel == "timings.json":
                continue
            with open(p, "rb") as f:
                b = f.read()
            if rel == "report.html":
                start = b.index(b'<section id="timings">')
                b = b[:start] + b[b.index(b"</section>", start):]
            files[rel] = b
    return files


def same(a, b):
    fa, fb = outputs(a), outputs(b)
    if fa.keys() != fb.keys():
        return False, f"files differ: {sorted(fa.keys() ^ fb.keys())}"
    diff = [k for k in fa if fa[k] != fb[k]]
    return not diff and len(fa) > 0, f"bytes differ: {diff}" if diff else ("no files" if not fa else "")


def curate(*args, env=None):
    p = subprocess.run([CURATE, "--no-progress", *args], capture_output=True, text=True, env=env)
    return p


def ray_run(recipe, out, address, *extra, env=None):
    return curate("run", recipe, "--executor", "ray", "--address", address, "--python", sys.executable, "--out", out, *extra, env=env)


def words(rng, n):
    w = "river stone garden quiet market lantern copper meadow signal harbor winter orchard pencil thunder velvet candle bridge forest silver window".split()
    return " ".join(rng.choice(w) for _ in range(n)) + "."


def corpus(d, files=6, rows=1200):
    """JSON Lines files of instructions, with exact copies and near copies (one word
    added) of records from earlier files planted in later ones."""
    rng = random.Random(7)
    seen = []
    os.makedirs(os.path.join(d, "data"), exist_ok=True)
    for f in range(files):
        with open(os.path.join(d, "data", f"part-{f}.jsonl"), "w") as out:
            for i in range(rows):
                if i % 37 == 5 and len(seen) > 100:
                    rec = rng.choice(seen)
                elif i % 53 == 11 and len(seen) > 100:
                    ins, text = rng.choice(seen)
                    rec = (ins, text[:-1] + " tailpiece.")
                else:
                    rec = (f"Describe item {f}-{i}.", f"Record {f}-{i}: " + words(rng, 30 + rng.randrange(20)))
                    seen.append(rec)
                out.write(json.dumps({"instruction": rec[0], "output": rec[1]}) + "\n")
    tok = os.path.join(REPO, "recipes", "tokenizer", "tokenizer.json")
    with open(os.path.join(d, "recipe.toml"), "w") as r:
        r.write(f"""[recipe]
name = "corpus"

[target]
tokenizer = "{tok}"
template = "chatml"
seq_len = 256

[[source]]
name = "parts"
path = "data/part-*.jsonl"
format = "instruction"
fields = {{ instruction = "instruction", output = "output" }}
on_error = "fail"

[filters]
min_chars = 20
pii = "redact"

[dedup]
exact = true
near = {{ threshold = 0.7 }}

[pack]
valid_fraction = 0.05
""")
    return os.path.join(d, "recipe.toml")


def phase_line(stderr, phase):
    return next((l for l in stderr.splitlines() if l.strip().startswith(phase + " ")), "")


def alive_nodes(cluster):
    """The live nodes, as the cluster's GCS lists them (asked directly: a driver would
    need a live node on its own IP)."""
    return sum(bool(n.get("Alive")) for n in cluster.global_state.node_table())


def wait_nodes(cluster, ok, seconds):
    """Poll the number of live nodes until `ok(n)` or the deadline (a node joins or is
    declared dead in seconds; on a loaded machine it can take a minute)."""
    deadline = time.time() + seconds
    while True:
        n = alive_nodes(cluster)
        if ok(n) or time.time() > deadline:
            return n
        time.sleep(1)


def parent(pid):
    with open(f"/proc/{pid}/stat") as f:
        # The command name, in parentheses, may hold spaces: the fields after it are plain.
        return int(f.read().rsplit(")", 1)[1].split()[1])


def descendants(root):
    """Every process below `root`, from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                children.setdefault(parent(int(d)), []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def tasks_running(plan):
    """The pids of `curate task` processes of the plan `plan`."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                args = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if b"task" in args and plan.encode() in args:
                pids.append(int(d))
    return pids


def node_running(cluster, pid):
    """The cluster node whose raylet started the process `pid` (a task's `curate task`
    process descends from a Ray worker, which the raylet started)."""
    raylets = {}
    for node in [cluster.head_node, *cluster.worker_nodes]:
        for info in node.all_processes.get("raylet", []):
            raylets[info.process.pid] = node
    while pid > 1:
        if pid in raylets:
            return raylets[pid]
        try:
            pid = parent(pid)
        except (OSError, IndexError, ValueError):
            return None
    return None


def add_worker(cluster, ip="127.0.0.2"):
    """A worker node on `ip` (1 CPU), with a temporary folder of its own as a second
    machine has: Ray attaches a driver to the live node whose IP is the one recorded in
    the driver's machine's session folder (127.0.0.1, the head node's)."""
    args = {"num_cpus": 1, "node_ip_address": ip}
    if ip != "127.0.0.1":
        # Inside RAY_TMPDIR, whose path is short: Ray's sockets live below it.
        args["temp_dir"] = tempfile.mkdtemp(prefix="n", dir=os.environ["RAY_TMPDIR"])
    return cluster.add_node(**args)  # waits until the node is alive


def paused_tasks(cluster, pause_dir, run, n=2):
    """(task id, node) of the map tasks paused at their start (CURATE_KILL_AT `pause`),
    once `n` are (or after 120 s, or when the run ended)."""
    deadline = time.time() + 120
    pids = []
    while time.time() < deadline and run.poll() is None:
        pids = [f for f in os.listdir(pause_dir) if f.endswith(".pid")]
        if len(pids) >= n:
            break
        time.sleep(0.2)
    tasks = []
    for f in pids:
        try:
            pid = int(open(os.path.join(pause_dir, f)).read().strip())
        except (OSError, ValueError):
            continue
        tasks.append((f[:-4], node_running(cluster, pid)))
    return tasks


def let_finish(pause_dir, out, tasks):
    """Release the paused `tasks` and wait until each is complete in the work folder,
    so that there are finished tasks to resume from."""
    work = os.path.join(os.path.dirname(out), "." + os.path.basename(out) + ".work")
    for t in tasks:
        open(os.path.join(pause_dir, t + ".release"), "w").close()
        deadline = time.time() + 120
        while time.time() < deadline and not os.path.exists(os.path.join(work, "tasks", t, "done.json")):
            time.sleep(0.1)


def kill_node_under_a_task(cluster, pause_dir, run, out, victim):
    """Once two map tasks are paused, let the one not on `victim` (None: the one on the
    head node) finish, then kill `victim` (None: the worker node under the other task)
    with every process its raylet started, and release the rest. Returns the id of the
    task that was running there, or None when no paused task ran on it."""
    tasks = paused_tasks(cluster, pause_dir, run)
    on_victim = [(t, node) for t, node in tasks
                 if node is not None and (node is victim if victim is not None else node is not cluster.head_node)]
    if not on_victim:
        return None
    let_finish(pause_dir, out, [t for t, node in tasks if (t, node) not in on_victim])
    task, node = on_victim[0]
    # A dying machine takes every process with it at once: the raylet's
    # descendants (its workers and their `curate task` processes) are killed first,
    # so that none of them can finish its task while the raylet goes down.
    for info in node.all_processes.get("raylet", []):
        for pid in descendants(info.process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if node is cluster.head_node:
        node.kill_raylet(check_alive=False)  # the GCS stays: the cluster goes on
    else:
        cluster.remove_node(node, allow_graceful=False)
    open(os.path.join(pause_dir, "release"), "w").close()
    return task


def node_dies(cluster, address, c, recipe):
    """Every map task waits on its first try (CURATE_KILL_AT `pause`) until the test
    releases it; the two running at once are on different nodes (1 CPU each). The test
    lets the other node's task finish, then kills the node under the first one with all
    its processes:

    a, b. a worker node, while the driver is attached to the head node;
    c. the node the driver is attached to (its raylet and everything the raylet
       started; a head node's GCS stays, so the cluster goes on): a driver submits every
       task through that raylet, so nothing can run after it.
    """

    def scenario(tag, victim, attached, retries=None):
        """Run with every map task paused, kill `victim` (None: the worker node)
        under one, and wait until Ray has declared it dead."""
        pause = os.path.join(c, f"pause-{tag}")
        os.makedirs(pause)
        out = os.path.join(c, f"node-died-{tag}")
        args = [CURATE, "--no-progress", "run", recipe, "--executor", "ray", "--address", address,
                "--python", sys.executable, "--out", out, "--tasks", "8"]
        env = dict(os.environ, CURATE_KILL_AT=f"map-*:start:pause={pause}")
        if retries is not None:
            env["CURATE_RAY_MAX_RETRIES"] = str(retries)
        run = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        task = kill_node_under_a_task(cluster, pause, run, out, victim)
        open(os.path.join(pause, "release"), "a").close()
        _, err = run.communicate(timeout=600)
        check(f"node dies ({tag}): a task was running on the node when it was killed", task is not None, err)
        driver_line = next((l for l in err.splitlines() if "Ray cluster of" in l), "")
        check(f"node dies ({tag}): the driver was attached to node {attached[:12]}", f"({attached[:12]})" in driver_line, err)
        left = wait_nodes(cluster, lambda n: n == 1, 180)
        check(f"node dies ({tag}): Ray declared the node dead", left == 1, f"{left} live node(s)")
        return run, err, out, args

    def stops_and_resumes(tag, run, err, out, args, says):
        check(f"node dies ({tag}): the run stops with exit 2", run.returncode == 2, err)
        # The job's tasks on the nodes left are ended with it (Ray ends a stopped
        # driver's workers, and `curate task` dies with its worker), so none of them
        # outlives the run into the next.
        plan = os.path.join(c, f".{os.path.basename(out)}.work", "plan.json")
        deadline = time.time() + 120
        while tasks_running(plan) and time.time() < deadline:
            time.sleep(1)
        left = tasks_running(plan)
        check(f"node dies ({tag}): no task of the stopped run is left running", not left, str(left))
        check(f"node dies ({tag}): the error says what went away and how to go on",
              all(w in err for w in says) and "run the same command again" in err, err)
        check(f"node dies ({tag}): Ray's log lines are kept out of curate's output", "(raylet)" not in err, err)
        check(f"node dies ({tag}): no traceback", "Traceback" not in err, err)
        check(f"node dies ({tag}): no output folder", not os.path.exists(out))
        again = subprocess.run(args, capture_output=True, text=True)
        check(f"node dies ({tag}): the run started again finishes", again.returncode == 0, again.stderr)
        line = phase_line(again.stderr, "map")
        check(f"node dies ({tag}): it resumes from the completed map tasks", "already complete" in line and " 0 already" not in line, again.stderr)
        ok, why = same(os.path.join(c, "local"), out)
        check(f"node dies ({tag}): outputs are byte-identical to the local executor's", ok, why)

    # a. Retries left: the task runs again on the head node and the run finishes.
    run, err, out, _ = scenario("retried", None, cluster.head_node.node_id)
    check("node dies (retried): the run finished on the other node", run.returncode == 0, err)
    ok, why = same(os.path.join(c, "local"), out)
    check("node dies (retried): outputs are byte-identical to the local executor's", ok, why)

    # b. No retries: the run stops with a clear error; run again, it resumes.
    add_worker(cluster)
    r = scenario("no-retries", None, cluster.head_node.node_id, retries=0)
    stops_and_resumes("no-retries", *r, ["error: task `map-", "did not finish", "went away"])

    # c. The driver's own node dies: the run stops; once that machine's Ray node is up
    # again, the same command resumes.
    add_worker(cluster)
    head = cluster.head_node
    r = scenario("driver-node", head, head.node_id)
    add_worker(cluster, "127.0.0.1")
    stops_and_resumes("driver-node", *r, ["the Ray node this driver is attached to", "went away"])


def gcs_dies(cluster, c, recipe, address):
    """The GCS goes (the head node's processes that are left: its raylet died in
    `node_dies`) while map tasks run: the cluster is gone. The driver gives up on it
    after RAY_gcs_rpc_server_reconnect_timeout_s (15 s here, 60 by default) while every
    task still waits to be released, so the run stops with a clear error; the same
    command on the local executor then resumes from the task that finished on Ray."""
    pause = os.path.join(c, "pause-gcs")
    os.makedirs(pause)
    out = os.path.join(c, "gcs-died")
    local = [CURATE, "--no-progress", "run", recipe, "--out", out, "--tasks", "8"]
    env = dict(os.environ, CURATE_KILL_AT=f"map-*:start:pause={pause}", RAY_gcs_rpc_server_reconnect_timeout_s="15")
    run = subprocess.Popen(local + ["--executor", "ray", "--address", address, "--python", sys.executable],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    tasks = paused_tasks(cluster, pause, run)
    check("GCS dies: two tasks were running", len(tasks) == 2, str(tasks))
    let_finish(pause, out, [t for t, _ in tasks[:1]])
    cluster.head_node.kill_all_processes(check_alive=False, allow_graceful=False)
    try:
        _, err = run.communicate(timeout=300)
    finally:
        open(os.path.join(pause, "release"), "w").close()
    check("GCS dies: the run stops with exit 2", run.returncode == 2, err)
    check("GCS dies: the error says the driver stopped and how to resume",
          "error: the Ray driver stopped" in err and "to resume" in err, err)
    check("GCS dies: no traceback", "Traceback" not in err, err)
    check("GCS dies: no output folder", not os.path.exists(out))
    again = subprocess.run(local, capture_output=True, text=True)
    check("GCS dies: the same command on the local executor finishes", again.returncode == 0, again.stderr)
    ok, why = same(os.path.join(c, "local"), out)
    check("GCS dies: outputs are byte-identical to the local executor's", ok, why)
    tp = os.path.join(out, "timings.json")
    t = json.load(open(tp)) if os.path.isfile(tp) else {}
    check("GCS dies: it resumed from the task that finished on Ray", t.get("tasks_skipped", 0) >= 1, json.dumps(t)[:300])


def main():
    if not os.path.isfile(CURATE):
        print(f"error: no curate binary at `{CURATE}` (build it, or set CURATE_BIN)", file=sys.stderr)
        return 2
    # /proc/net/dev lists the interfaces of this process's network namespace.
    with open("/proc/net/dev") as f:
        nics = sorted(l.split(":")[0].strip() for l in f.readlines()[2:])
    if nics != ["lo"]:
        print(f"error: this test runs only in a network namespace with nothing but loopback (found {nics}); "
              "scripts/test_ray.sh makes one", file=sys.stderr)
        return 2
    from ray.cluster_utils import Cluster

    tmp = tempfile.mkdtemp(prefix="curate-ray-")
    # Ray's sockets live under its temporary folder: keep its path short.
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="cr-", dir="/tmp")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    started = time.time()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        add_worker(cluster)
        address = cluster.address
        check("the cluster listens on 127.0.0.1", address.startswith("127.0.0.1:"), address)
        print(f"two-node Ray cluster at {address} in {time.time() - started:.1f}s", flush=True)

        # 1. The quickstart.
        q = os.path.join(REPO, "recipes", "quickstart.toml")
        loc = curate("run", q, "--out", os.path.join(tmp, "q-local"), "-q")
        check("quickstart, local executor", loc.returncode == 0, loc.stderr)
        r = ray_run(q, os.path.join(tmp, "q-ray"), address, "--tasks", "6")
        check("quickstart, Ray executor", r.returncode == 0, r.stderr)
        ok, why = same(os.path.join(tmp, "q-local"), os.path.join(tmp, "q-ray"))
        check("quickstart: Ray's outputs are byte-identical to the local executor's", ok, why)
        check("quickstart: map tasks ran on both nodes", "on 2 node(s)" in phase_line(r.stderr, "map"), r.stderr)
        check("quickstart: the summary is printed", "documents kept" in r.stderr, r.stderr)
        check("the work folder is removed", not os.path.exists(os.path.join(tmp, ".q-ray.work")))

        # 2. A generated corpus of several files with duplicates across files.
        c = os.path.join(tmp, "corpus")
        recipe = corpus(c)
        loc = curate("run", recipe, "--out", os.path.join(c, "local"), "-q")
        check("corpus, local executor", loc.returncode == 0, loc.stderr)
        r = ray_run(recipe, os.path.join(c, "ray"), address, "--tasks", "8")
        check("corpus, Ray executor", r.returncode == 0, r.stderr)
        ok, why = same(os.path.join(c, "local"), os.path.join(c, "ray"))
        check("corpus: Ray's outputs are byte-identical to the local executor's", ok, why)
        check("corpus: map tasks ran on both nodes", "on 2 node(s)" in phase_line(r.stderr, "map"), r.stderr)
        rp = os.path.join(c, "ray", "report.json")
        report = open(rp).read() if os.path.isfile(rp) else ""
        check("corpus: the planted duplicates were found", "dedup.exact" in report and "near_dedup.minhash" in report, report[:2000])

        # Fault: the process running a task is killed (SIGKILL, as the kernel's OOM
        # killer or a dying node would end it) on its first try: the driver runs it again and
        # the outputs are the same.
        marker = os.path.join(c, "killed-once")
        env = dict(os.environ, CURATE_KILL_AT=f"map-00001:start:once={marker}")
        r = ray_run(recipe, os.path.join(c, "ray-killed"), address, "--tasks", "8", env=env)
        check("fault: the killed task's first try was killed", os.path.exists(marker), r.stderr)
        check("fault: it ran again and the run finished", r.returncode == 0, r.stderr)
        ok, why = same(os.path.join(c, "local"), os.path.join(c, "ray-killed"))
        check("fault: outputs are byte-identical to the local executor's", ok, why)

        # 3. Resume: two map tasks done by `curate task`, then the run on Ray, started
        # with `python -m curate_ray`.
        out = os.path.join(c, "resumed")
        p = curate("plan", recipe, "--out", out, "--tasks", "8", "-q")
        check("resume: curate plan", p.returncode == 0, p.stderr)
        plan = os.path.join(c, ".resumed.work", "plan.json")
        for t in ["map-00000", "map-00001"]:
            p = curate("task", plan, t, "--threads", "1")
            check(f"resume: curate task {t}", p.returncode == 0, p.stderr)
        r = subprocess.run([sys.executable, "-m", "curate_ray", recipe, "--address", address, "--curate", CURATE, "--",
                            "--out", out, "--tasks", "8", "--no-progress"],
                           capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=os.path.join(REPO, "python")))
        check("resume: python -m curate_ray runs", r.returncode == 0, r.stderr)
        line = phase_line(r.stderr, "map")
        check("resume: the two complete map tasks are skipped and reported", "2 already complete" in line and " 0 run" not in line, r.stderr)
        ok, why = same(os.path.join(c, "local"), out)
        check("resume: outputs are byte-identical to the local executor's", ok, why)
        t = json.load(open(os.path.join(out, "timings.json")))
        check("resume: timings.json counts the skipped tasks", t["tasks_skipped"] == 2, json.dumps(t)[:300])

        # 4. Bad input: a broken record in one file fails the run with curate's own message.
        bad = os.path.join(tmp, "bad")
        shutil.copytree(c, bad, ignore=shutil.ignore_patterns("local", "ray", "resumed"))
        with open(os.path.join(bad, "data", "part-4.jsonl"), "a") as f:
            f.write("{this is not json\n")
        loc = curate("run", os.path.join(bad, "recipe.toml"), "--out", os.path.join(bad, "local"))
        r = ray_run(os.path.join(bad, "recipe.toml"), os.path.join(bad, "ray"), address, "--tasks", "8")
        # The local run names its own task first; the record's line is the same.
        first = next((l.strip() for l in loc.stderr.splitlines() if "part-4.jsonl:1201" in l), "")
        check("bad input: the local run fails with exit 2", loc.returncode == 2 and first, loc.stderr)
        check("bad input: the Ray run fails with exit 2", r.returncode == 2, r.stderr)
        check("bad input: the Ray run says curate's own error", first and first in r.stderr, f"local: {first}\nray: {r.stderr}")
        check("bad input: it names the task and the node", "in task `map-" in r.stderr and "on Ray node 127.0.0." in r.stderr, r.stderr)
        check("bad input: no traceback, no Ray log lines", "Traceback" not in r.stderr and "worker.py" not in r.stderr and "(raylet)" not in r.stderr, r.stderr)
        check("bad input: no output folder", not os.path.exists(os.path.join(bad, "ray")))

        # 5. A whole node dies while it runs a task.
        node_dies(cluster, address, c, recipe)

        # 6. A node that cannot see the work folder: a third node in a mount namespace
        # of its own, where an empty tmpfs hides this test's folder.
        before = alive_nodes(cluster)
        hidden = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f'mount -t tmpfs none "{tmp}" && exec "{os.path.join(os.path.dirname(sys.executable), "ray")}" start '
             f'--address={address} --node-ip-address=127.0.0.3 --num-cpus=1 --block --disable-usage-stats'],
            # A temporary folder of its own, as another machine has (`ray start` takes
            # `--temp-dir` on a head node only).
            env=dict(os.environ, RAY_TMPDIR=os.path.join(os.environ["RAY_TMPDIR"], "hidden")),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            joined = wait_nodes(cluster, lambda n: n >= before + 1, 120)
            check("unseen folder: another node joined", joined >= before + 1, f"{joined} node(s), {before} before")
            p = ray_run(recipe, os.path.join(c, "unseen"), address)
            check("unseen folder: the run fails with exit 2", p.returncode == 2, p.stderr)
            check("unseen folder: it names the node and what it cannot see",
                  "cannot see" in p.stderr and "plan.json" in p.stderr and "node 127.0.0.3" in p.stderr, p.stderr)
            check("unseen folder: no task ran", not os.path.isdir(os.path.join(c, ".unseen.work", "tasks")), p.stderr)
            check("unseen folder: no traceback", "Traceback" not in p.stderr, p.stderr)
        finally:
            hidden.terminate()
            try:
                hidden.wait(timeout=30)
            except subprocess.TimeoutExpired:
                hidden.kill()
            # `ray start` on a worker node records its IP in the head node's session
            # folder, where a driver reads the IP of its own machine; on a real cluster
            # each machine has its own folder, here they share one: put the head's back.
            for f in glob.glob(os.path.join(os.environ["RAY_TMPDIR"], "ray", "session_*", "node_ip_address.json")):
                with open(f, "w") as out:
                    json.dump({"node_ip_address": "127.0.0.1"}, out)

        # 7. The GCS dies (last: the cluster is gone after it).
        gcs_dies(cluster, c, recipe, address)
    finally:
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(os.environ["RAY_TMPDIR"], ignore_errors=True)
    print(f"Ray cluster test: {'FAILED ' + str(failures) if failures else 'all passed'} in {time.time() - started:.1f}s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
