#!/usr/bin/env python3
"""Benchmark curate end to end on a generated corpus.

Builds curate in release mode (in its own target folder, so it does not contend with
development builds), generates the corpus with bench/make_corpus.py (or reuses one made
with the same size, seed and generator version), writes a recipe beside it, runs
`curate --no-progress --threads N` under `/usr/bin/time -v` for each N, and prints a
Markdown report: per-stage and end-to-end throughput, peak RSS, a check of the drop
counts against the corpus's ground truth, and whether the outputs are byte-identical
across thread counts.

    python3 bench/run.py --mb 512 --threads 1,2 --repeats 3

Standard library only. Linux (needs /usr/bin/time from GNU time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUTPUTS = ["documents.parquet", "ledger.parquet", "report.json", "report.md"]


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def sh(cmd: list[str], **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


# ---------------------------------------------------------------------------------------
# Build, corpus, recipe


def build(target_dir: str, rev: str | None) -> tuple[str, str | None]:
    """Build the release binary from the working tree, or with `rev` from a clean export
    of that commit (so that edits in progress cannot leak into the figures). Returns the
    binary and, for a `rev` build, the commit it was built from."""
    src, commit = ROOT, None
    if rev:
        commit = sh(["git", "rev-parse", "--verify", rev + "^{commit}"], cwd=ROOT)
        src = os.path.join("/tmp", "curate-bench-src", commit[:12])
        if not os.path.exists(os.path.join(src, "Cargo.toml")):
            log(f"exporting {commit[:12]} to {src}")
            tmp = src + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
            archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            os.rename(tmp, src)
    env = dict(os.environ, CARGO_TARGET_DIR=target_dir)
    log(f"cargo build --release in {src} (CARGO_TARGET_DIR={target_dir})")
    t = time.time()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=src, env=env, check=True)
    log(f"built in {time.time() - t:.0f}s")
    return os.path.join(target_dir, "release", "curate"), commit


def corpus(path: str, mb: float, seed: int) -> dict:
    truth_path = os.path.join(path, "ground_truth.json")
    want_version = None
    src = open(os.path.join(HERE, "make_corpus.py")).read()
    m = re.search(r"^VERSION = (\d+)", src, re.M)
    want_version = int(m.group(1)) if m else None
    if os.path.exists(truth_path):
        truth = json.load(open(truth_path))
        if truth.get("mb") == mb and truth.get("seed") == seed and truth.get("version") == want_version:
            log(f"reusing corpus {path} ({truth['total_bytes'] / 1e6:.1f} MB)")
            return truth
        log(f"corpus at {path} was made with other settings; regenerating")
    for sub in ("text", "instruction"):
        shutil.rmtree(os.path.join(path, sub), ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    cmd = [sys.executable, os.path.join(HERE, "make_corpus.py"), "--mb", str(mb), "--seed", str(seed), "--out", path]
    log(" ".join(cmd))
    subprocess.run(cmd, check=True)
    return json.load(open(truth_path))


def write_recipe(path: str, truth: dict) -> str:
    f = truth["filters"]
    regexes = ", ".join(json.dumps(r) for r in f["drop_regex"])
    recipe = f"""# Written by bench/run.py for the generated benchmark corpus in this folder.
[recipe]
name = "bench"
description = "Synthetic benchmark corpus from bench/make_corpus.py (seed {truth['seed']}, {truth['mb']} MB)"
seed = 0

[[source]]
name = "text"
path = "text/*.jsonl"
format = "text"
license = "Apache-2.0"
origin = "program"
generated_by = []

[[source]]
name = "instruction"
path = "instruction/*.jsonl"
format = "instruction"
license = "Apache-2.0"
origin = "program"
generated_by = []

[filters]
min_chars = {f['min_chars']}
max_chars = {f['max_chars']}
drop_regex = [{regexes}]

[dedup]
exact = true

[output]
dir = "out"
"""
    p = os.path.join(path, "bench.toml")
    with open(p, "w") as fh:
        fh.write(recipe)
    return p


def warm_cache(truth: dict, path: str) -> None:
    """Read every shard once so that each timed run starts from the same (warm) page cache."""
    t = time.time()
    n = 0
    for src in truth["sources"].values():
        for f in src["files"]:
            with open(os.path.join(path, f["file"]), "rb") as fh:
                while chunk := fh.read(16 << 20):
                    n += len(chunk)
    log(f"page cache warmed: read {n / 1e6:.0f} MB in {time.time() - t:.1f}s")


# ---------------------------------------------------------------------------------------
# Runs


def parse_time_v(text: str) -> dict:
    def grab(label: str) -> str | None:
        m = re.search(r"^\s*" + re.escape(label) + r":\s*(.+)$", text, re.M)
        return m.group(1).strip() if m else None

    def clock(s: str) -> float:
        parts = [float(x) for x in s.split(":")]
        secs = 0.0
        for p in parts:
            secs = secs * 60 + p
        return secs

    return {
        "max_rss_kib": int(grab("Maximum resident set size (kbytes)") or 0),
        "user_s": float(grab("User time (seconds)") or 0),
        "sys_s": float(grab("System time (seconds)") or 0),
        "elapsed_s": clock(grab("Elapsed (wall clock) time (h:mm:ss or m:ss)") or "0"),
        "cpu_percent": grab("Percent of CPU this job got"),
        "exit_status": int(grab("Exit status") or -1),
    }


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) and name of each live thread of `pid`."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def child_of(pid: int) -> int | None:
    try:
        kids = open(f"/proc/{pid}/task/{pid}/children").read().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


def run_once(binary: str, recipe: str, threads: int, out: str) -> dict:
    """One timed run. While it runs, the CPU time of each of curate's threads is sampled
    from /proc every 50 ms (the last sample of a thread is kept, so a thread's final
    ~50 ms can be missed)."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = ["/usr/bin/time", "-v", binary, "--no-progress", "--threads", str(threads), "--out", out, recipe]
    log(" ".join(cmd))
    err_path = out.rstrip("/") + ".stderr"
    per_thread: dict[int, tuple[str, float]] = {}
    with open(err_path, "w+") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        cpid = None
        while p.poll() is None:
            cpid = cpid or child_of(p.pid)
            if cpid:
                per_thread.update(thread_cpu(cpid))
            time.sleep(0.05)
        err.seek(0)
        stderr = err.read()
    os.unlink(err_path)
    tv = parse_time_v(stderr)
    if p.returncode != 0:
        log(f"curate exited with {p.returncode}:\n{stderr}")
        return {"threads": threads, "failed": True, "returncode": p.returncode, "stderr": stderr, "time": tv}
    timings = json.load(open(os.path.join(out, "timings.json")))
    report = json.load(open(os.path.join(out, "report.json")))
    log(
        f"threads={threads}: wall {timings['wall_seconds']:.2f}s, "
        f"{timings['bytes_read'] / 1e6 / timings['wall_seconds']:.1f} MB/s, peak RSS {tv['max_rss_kib'] / 1024:.0f} MiB"
    )
    # Group the threads: rayon workers are named `curate-worker-N`; the main thread has
    # the process id; the others (reader and sink threads, one pair per source) are
    # listed in creation order.
    workers = sum(c for tid, (n, c) in per_thread.items() if n.startswith("curate-worker"))
    main_cpu = sum(c for tid, (n, c) in per_thread.items() if tid == cpid)
    others = [(tid, n, c) for tid, (n, c) in sorted(per_thread.items()) if tid != cpid and not n.startswith("curate-worker")]
    return {
        "threads": threads,
        "failed": False,
        "timings": timings,
        "report": report,
        "time": tv,
        "thread_cpu": {"workers": workers, "main": main_cpu, "others": [c for _, _, c in others], "raw": per_thread},
        "summary": stderr.split("\tCommand being timed")[0].strip(),
        "sha256": {f: sha256(os.path.join(out, f)) for f in OUTPUTS if os.path.exists(os.path.join(out, f))},
    }


# ---------------------------------------------------------------------------------------
# Report


def fmt(x: float, digits: int = 1) -> str:
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def stage_docs(run: dict) -> dict:
    """What each stage handled, from the report's funnel: records for `read` and `map`,
    documents entering the stage for the others, documents kept for `write`."""
    t = run["timings"]
    counts = {s["stage"]: s.get("records_in") for s in run["report"]["funnel"]}
    counts["read"] = t["records_read"]
    counts["write"] = t["documents_kept"]
    return counts


def stage_table(runs: list[dict]) -> tuple[list[str], list[str]]:
    """The per-stage table, and the stages left out because they handled nothing."""
    head = "| stage (what it counts) | clock |"
    rule = "|---|---|"
    for r in runs:
        n = r["threads"]
        head += f" s (t={n}) | MB/s (t={n}) | docs/s (t={n}) |"
        rule += "---:|---:|---:|"
    lines = [head, rule]
    idle = []
    for entry in runs[0]["timings"]["stages"]:
        st, clock = entry["stage"], entry["clock"]
        if not any(stage_docs(r).get(st) for r in runs):
            idle.append(f"`{st}` ({max(next(s['seconds'] for s in r['timings']['stages'] if s['stage'] == st) for r in runs):.2f} s)")
            continue
        unit = "records" if st in ("read", "map") else "documents kept" if st == "write" else "documents"
        row = f"| {st} ({unit}) | {clock} |"
        for r in runs:
            secs = next(s["seconds"] for s in r["timings"]["stages"] if s["stage"] == st)
            mb = r["timings"]["bytes_read"] / 1e6
            docs = stage_docs(r).get(st) or 0
            row += f" {secs:.2f} | {fmt(mb / secs)} | {fmt(docs / secs, 0)} |" if secs > 0 else f" {secs:.2f} | – | – |"
        lines.append(row)
    return lines, idle


def e2e_table(runs: list[dict]) -> list[str]:
    lines = [
        "| threads | wall s (timings.json) | elapsed s (time -v) | MB/s | records/s | kept docs/s | CPU s (user+sys) | CPU use | MB per CPU-s | peak RSS MiB | speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = runs[0]["timings"]["wall_seconds"]
    for r in runs:
        t, tv = r["timings"], r["time"]
        w = t["wall_seconds"]
        cpu = tv["user_s"] + tv["sys_s"]
        lines.append(
            f"| {r['threads']} | {w:.2f} | {tv['elapsed_s']:.2f} | {fmt(t['bytes_read'] / 1e6 / w)} | "
            f"{fmt(t['records_read'] / w, 0)} | {fmt(t['documents_kept'] / w, 0)} | {cpu:.2f} | {tv['cpu_percent']} | "
            f"{fmt(t['bytes_read'] / 1e6 / cpu) if cpu else '–'} | "
            f"{tv['max_rss_kib'] / 1024:.0f} | {base / w:.2f}× |"
        )
    return lines


def cpu_table(runs: list[dict]) -> list[str]:
    lines = [
        "| threads | total CPU s (time -v) | pool workers (map, filter) | other threads, in creation order | main thread |",
        "|---:|---:|---:|---|---:|",
    ]
    for r in runs:
        tc = r["thread_cpu"]
        cpu = r["time"]["user_s"] + r["time"]["sys_s"]
        others = ", ".join(f"{c:.2f}" for c in tc["others"]) or "–"
        lines.append(f"| {r['threads']} | {cpu:.2f} | {tc['workers']:.2f} | {others} | {tc['main']:.2f} |")
    return lines


def truth_table(run: dict, truth: dict) -> tuple[list[str], bool]:
    lines = ["| source | count | planted (ground_truth.json) | found (report.json) | match |", "|---|---|---:|---:|:---:|"]
    ok_all = True
    by_name = {s["name"]: s for s in run["report"]["sources"]}
    for name, gt in truth["sources"].items():
        rep = by_name.get(name)
        if rep is None:
            lines.append(f"| {name} | (source missing from report) | | | ✗ |")
            ok_all = False
            continue
        read = next((f["records_in"] for f in rep["funnel"] if f["stage"] == "read"), None)
        checks = [("records read", gt["records"], read)]
        rules = sorted(set(gt["expected_drops"]) | set(rep.get("drops", {})))
        for rule in rules:
            checks.append((f"dropped by `{rule}`", gt["expected_drops"].get(rule, 0), rep.get("drops", {}).get(rule, 0)))
        checks.append(("documents kept", gt["expected_kept"], rep.get("documents_kept")))
        for label, want, got in checks:
            ok = want == got
            ok_all &= ok
            lines.append(f"| {name} | {label} | {want:,} | {got:,} | {'✓' if ok else '✗'} |" if got is not None else f"| {name} | {label} | {want:,} | – | ✗ |")
    return lines, ok_all


def determinism_table(runs: list[dict]) -> tuple[list[str], bool]:
    head = "| file |" + "".join(f" sha256 (threads={r['threads']}) |" for r in runs) + " identical |"
    lines = [head, "|---|" + "---|" * len(runs) + ":---:|"]
    ok_all = True
    for f in OUTPUTS:
        hs = [r["sha256"].get(f, "missing") for r in runs]
        ok = len(set(hs)) == 1 and "missing" not in hs
        ok_all &= ok
        lines.append(f"| `{f}` |" + "".join(f" `{h[:16]}…` |" for h in hs) + f" {'✓' if ok else '✗'} |")
    return lines, ok_all


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass

    def tryrun(cmd):
        try:
            return sh(cmd, cwd=ROOT)
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    commit = tryrun(["git", "rev-parse", "--short", "HEAD"])
    dirty = tryrun(["git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": mem / 2**30,
        "kernel": platform.release(),
        "rustc": tryrun(["rustc", "--version"]),
        "commit": commit + (" plus uncommitted changes to src/ or Cargo files" if dirty and dirty != "unknown" else ""),
    }


def settle(load: float, max_s: float) -> None:
    """Wait (up to `max_s` seconds) until the 1-minute load average is below `load`."""
    t = time.time()
    while os.getloadavg()[0] >= load and time.time() - t < max_s:
        time.sleep(5)
    now = os.getloadavg()[0]
    waited = time.time() - t
    if now < load:
        log(f"load average {now:.2f} after waiting {waited:.0f}s")
    else:
        log(f"load average still {now:.2f} after {waited:.0f}s; running anyway")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=512, help="corpus size in MB (default 512)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus", help="corpus folder (default /tmp/curate-bench-corpus-<mb>mb-seed<seed>)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts, run in this order (default 1,2)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per thread count; the median by wall time is reported")
    ap.add_argument("--target-dir", default=os.environ.get("CURATE_BENCH_TARGET", "/tmp/curate-bench-target"))
    ap.add_argument("--rev", help="build this commit from a clean export instead of the working tree (e.g. HEAD)")
    ap.add_argument("--skip-build", action="store_true", help="use the binary already in the target folder")
    ap.add_argument("--settle-load", type=float, help="before timing, wait until the 1-minute load average is below this")
    ap.add_argument("--settle-max", type=float, default=900, help="longest wait for --settle-load, in seconds (default 900)")
    ap.add_argument("--json", help="also write every run's raw figures here")
    ap.add_argument("--markdown", help="also write the Markdown report here")
    a = ap.parse_args()

    mb_label = f"{a.mb:g}"
    path = a.corpus or f"/tmp/curate-bench-corpus-{mb_label}mb-seed{a.seed}"
    threads = [int(x) for x in a.threads.split(",") if x]
    if a.skip_build:
        binary, commit = os.path.join(a.target_dir, "release", "curate"), None
    else:
        binary, commit = build(a.target_dir, a.rev)
    mach = machine()  # right after the build, so the commit is the one built
    stamp = os.path.join(a.target_dir, "curate-bench-built-from.txt")
    if commit:
        mach["commit"] = f"{commit[:7]} (clean export of `{a.rev}`)"
    if a.skip_build:
        built_from = open(stamp).read().strip() if os.path.exists(stamp) else "unknown"
        mach["commit"] = f"{built_from} (binary reused with --skip-build)"
    else:
        with open(stamp, "w") as fh:
            fh.write(mach["commit"] + "\n")
    truth = corpus(path, a.mb, a.seed)
    recipe = write_recipe(path, truth)
    if a.settle_load is not None:
        settle(a.settle_load, a.settle_max)
    warm_cache(truth, path)
    load_before = os.getloadavg()

    # Interleave thread counts within each repeat so that drift in machine load hits
    # every setting alike.
    all_runs: dict[int, list[dict]] = {n: [] for n in threads}
    keep: dict[int, str] = {}
    for rep in range(a.repeats):
        for n in threads:
            out = os.path.join(path, f"out-t{n}-r{rep}")
            r = run_once(binary, recipe, n, out)
            all_runs[n].append(r)
            if r["failed"]:
                print(f"curate failed with threads={n} (exit {r['returncode']}):\n\n```\n{r['stderr']}\n```")
                return 2
            if rep > 0:
                shutil.rmtree(out, ignore_errors=True)  # keep the first repeat's outputs only
            else:
                keep[n] = out

    def median_run(rs: list[dict]) -> dict:
        walls = sorted(r["timings"]["wall_seconds"] for r in rs)
        m = walls[(len(walls) - 1) // 2]
        return next(r for r in rs if r["timings"]["wall_seconds"] == m)

    load_after = os.getloadavg()
    med = [median_run(all_runs[n]) for n in threads]
    firsts = [all_runs[n][0] for n in threads]
    t0 = med[0]["timings"]
    out: list[str] = []
    out.append(
        f"Corpus: {t0['bytes_read'] / 1e6:.1f} MB in {sum(len(s['files']) for s in truth['sources'].values())} JSONL files, "
        f"{t0['records_read']:,} records (`bench/make_corpus.py --mb {mb_label} --seed {a.seed}`); "
        f"{t0['documents_kept']:,} documents kept."
    )
    out.append(
        f"Machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['mem_gib']:.1f} GiB RAM, Linux {mach['kernel']}; "
        f"{mach['rustc']}; curate at {mach['commit']}, release build."
    )
    out.append(
        f"Each setting ran {a.repeats} time(s), interleaved, from a warm page cache; the run with the median wall time is shown. "
        f"All wall times (s): "
        + "; ".join(f"threads={n}: " + ", ".join(f"{r['timings']['wall_seconds']:.2f}" for r in all_runs[n]) for n in threads)
        + ". Load average (1/5/15 min) before: "
        + "/".join(f"{x:.2f}" for x in load_before)
        + ", after: "
        + "/".join(f"{x:.2f}" for x in load_after)
        + "."
    )
    out.append("")
    out.append("**End to end**")
    out.append("")
    out.extend(e2e_table(med))
    out.append("")
    out.append("**Per stage** (from `timings.json`; MB/s is the whole input's MB over the stage's seconds)")
    out.append("")
    st_lines, idle = stage_table(med)
    out.extend(st_lines)
    out.append("")
    if idle:
        out.append("Stages this recipe does not configure, left out above (largest time of any run): " + ", ".join(idle) + ".")
        out.append("")
    out.append(
        "`cpu` clocks are per-record elapsed times summed over the pool's worker threads (a per-core rate when a worker "
        "is not preempted); `wall` clocks are elapsed time on one thread. Stages overlap, so their seconds do not add up "
        "to the wall time."
    )
    out.append("")
    out.append("**CPU seconds by thread** (sampled from /proc every 50 ms)")
    out.append("")
    out.extend(cpu_table(med))
    out.append("")
    tt, ok_truth = truth_table(firsts[0], truth)
    out.append(f"**Ground truth** (threads={firsts[0]['threads']}): " + ("all counts match." if ok_truth else "MISMATCH."))
    out.append("")
    out.extend(tt)
    out.append("")
    dt, ok_det = determinism_table(firsts)
    out.append("**Determinism**: outputs " + ("byte-identical" if ok_det else "DIFFER") + " across thread counts.")
    out.append("")
    out.extend(dt)
    md = "\n".join(out) + "\n"
    print(md)
    if a.markdown:
        with open(a.markdown, "w") as fh:
            fh.write(md)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"machine": mach, "truth": truth, "runs": all_runs}, fh, indent=1)
    return 0 if ok_truth and ok_det else 1


if __name__ == "__main__":
    sys.exit(main())
