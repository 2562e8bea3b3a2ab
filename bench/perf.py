#!/usr/bin/env python3
"""The whole pipeline against the tokenizer alone, and an old curate binary against a
new one, on one corpus, in one run.

    python3 bench/perf.py CORPUS_DIR --old BIN --new BIN [--threads 1,2] [--repeats 1]
                          [--encode-bench BIN] [--tokenizer tokenizer.json] [--skip-encode]
    python3 bench/perf.py CORPUS_DIR --recipe-only     # write perf.toml only

CORPUS_DIR is a corpus of bench/make_corpus.py (`text/*.jsonl`, `instruction/*.jsonl`,
`ground_truth.json`). The script writes `perf.toml` there: the full recipe (filters,
Gopher quality and repetition, exact and MinHash near dedup, 13-gram decontamination
against the GSM8K test set when ../shared/data holds it, the Mistral template, best-fit
packing at 4,096), then:

1. times the `tokenizers` crate alone on the same records (examples/encode_bench,
   `encode_fast`, at each thread count, in every repeat beside the binaries): its CPU
   seconds are the physical bound of a tokenizing pipeline;
2. runs each binary at each thread count, interleaved (old, new, old, new, ...), under
   /usr/bin/time -v: CPU seconds (user + system, which other load on the machine does
   not inflate the way it inflates elapsed time), elapsed seconds, peak RSS;
3. checks that both binaries drop what ground_truth.json says the filters drop, and
   prints each run's drops by rule, so a change in quality shows (recall of exact and
   near duplicates and of contamination: bench/near_quality.py).

Prints Markdown tables: MB of corpus per CPU-second, the ratio to bare encoding (bare
CPU-seconds over curate's, same corpus), the speed-up of 2 threads over 1 (elapsed),
peak RSS, and the new binary's timings.json per stage.
"""

import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def recipe(corpus, tokenizer):
    gsm = os.path.join(ROOT, "..", "shared", "data", "gsm8k", "test.jsonl")
    eval_source = ""
    if os.path.isfile(gsm):
        eval_source = f"""
[[source]]
name = "gsm8k-test"
path = "{os.path.abspath(gsm)}"
format = "instruction"
fields = {{ instruction = "question", output = "answer" }}
role = "eval"
benchmark = "gsm8k"
"""
    else:
        print("note: ../shared/data/gsm8k is absent: the recipe has no decontamination", file=sys.stderr)
    text = f"""[recipe]
name = "perf"

[target]
tokenizer = "{tokenizer}"
template = "mistral"
seq_len = 4096

[pack]
overlong = "truncate"

[[source]]
name = "text"
path = "text/*.jsonl"
format = "text"

[[source]]
name = "instruction"
path = "instruction/*.jsonl"
format = "instruction"
{eval_source}
[filters]
min_chars = 50
max_chars = 50000
drop_regex = ["(?i)as an ai language model"]
quality = ["gopher", "repetition"]

[dedup]
exact = true
near = {{}}
"""
    path = os.path.join(corpus, "perf.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def corpus_bytes(corpus):
    n = 0
    for sub in ("text", "instruction"):
        d = os.path.join(corpus, sub)
        for f in sorted(os.listdir(d)):
            if f.endswith(".jsonl"):
                n += os.path.getsize(os.path.join(d, f))
    return n


def jsonl_files(corpus):
    out = []
    for sub in ("text", "instruction"):
        d = os.path.join(corpus, sub)
        out += [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".jsonl")]
    return out


def time_v(cmd, log):
    with open(log, "w") as err:
        p = subprocess.run(["/usr/bin/time", "-v", *cmd], stdout=subprocess.PIPE, stderr=err, text=True)
    t = open(log).read()
    if p.returncode != 0:
        sys.exit(f"`{' '.join(cmd)}` failed ({p.returncode}):\n{t[-3000:]}")
    g = lambda k: re.search(k + r": ([\d.:]+)", t).group(1)
    wall = g(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\)")
    parts = [float(x) for x in wall.split(":")]
    secs = sum(x * 60 ** i for i, x in enumerate(reversed(parts)))
    return {
        "cpu": float(g("User time \\(seconds\\)")) + float(g("System time \\(seconds\\)")),
        "wall": secs,
        "rss_mib": int(g("Maximum resident set size \\(kbytes\\)")) / 1024,
        "stdout": p.stdout,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--old")
    ap.add_argument("--new")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--encode-bench", default=os.environ.get("ENCODE_BENCH", ""))
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, ".cache/tokenizer-llama2/package/models/tokenizer.json"))
    ap.add_argument("--skip-encode", action="store_true", help="only the two binaries")
    ap.add_argument("--recipe-only", action="store_true", help="write CORPUS_DIR/perf.toml and stop (for a run by hand)")
    a = ap.parse_args()
    corpus = os.path.abspath(a.corpus)
    if not os.path.isfile(a.tokenizer):
        sys.exit(f"error: no tokenizer at {a.tokenizer} (run scripts/test.sh once, or give --tokenizer)")
    r = recipe(corpus, os.path.abspath(a.tokenizer))
    if a.recipe_only:
        print(r)
        return
    if not (a.old and a.new):
        sys.exit("error: give --old and --new (or --recipe-only)")
    mb = corpus_bytes(corpus) / 1e6
    threads = [int(t) for t in a.threads.split(",")]
    print(f"corpus {corpus}: {mb:.1f} MB; recipe {r}")

    runs = {}
    bares = []
    os.environ["ENCODE_BENCH_FAST_ONLY"] = "1"  # the bound is encode_fast's: no offsets pass
    for rep in range(a.repeats):
        # The bare encoder runs in every repeat, beside the binaries, so that each
        # ratio compares runs made minutes apart on a machine whose speed wanders.
        for t in threads:
            # The bare encoder on as many threads: two busy threads on a shared host
            # cost more CPU-seconds than one, for it as for curate.
            bare = None
            if not a.skip_encode:
                if not a.encode_bench:
                    sys.exit("error: give --encode-bench (cargo build --release --example encode_bench)")
                m = time_v([a.encode_bench, a.tokenizer, str(t), *jsonl_files(corpus)], os.path.join(corpus, "time-encode.txt"))
                bare = json.loads(m["stdout"])["encode_fast_cpu_seconds"]
                bares.append((t, bare))
                print(f"  run {rep + 1}: bare encode_fast, {t} thread(s): {bare:.2f} CPU-s", flush=True)
            for name, binary in (("old", a.old), ("new", a.new)):
                # curate replaces its own earlier output (and refuses anything else
                # there); --fresh discards an interrupted run's tasks.
                out = os.path.join(corpus, f"out-perf-{name}-{t}")
                m = time_v([binary, "--no-progress", "-q", "--fresh", "--threads", str(t), r, "--out", out], os.path.join(corpus, f"time-{name}-{t}.txt"))
                m["report"] = json.load(open(os.path.join(out, "report.json")))
                m["timings"] = json.load(open(os.path.join(out, "timings.json")))
                m["ratio"] = bare / m["cpu"] if bare else None
                runs.setdefault((name, t), []).append(m)
                print(f"  run {rep + 1}: {name} threads={t}: {m['cpu']:.2f} CPU-s, {m['wall']:.2f} s elapsed, {m['rss_mib']:.0f} MiB", flush=True)

    def med(xs):
        xs = sorted(xs)
        n = len(xs)
        return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2

    print()
    for t in threads:
        bs = [b for tt, b in bares if tt == t]
        if bs:
            print(f"Bare encode_fast, {t} thread(s): {', '.join(f'{b:.2f}' for b in bs)} CPU-s ({mb / med(bs):.2f} MB of corpus per CPU-s, median).")
    print()
    print("Medians over the repeats (the ratio is each repeat's bare CPU-s at the same thread count over the binary's, then the median; range in brackets):")
    print()
    print("| binary | threads | CPU s | elapsed s | MB per CPU-s | × bare encode_fast | speed-up (elapsed, vs 1 thread) | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("old", "new"):
        one = med([m["wall"] for m in runs[(name, 1)]]) if (name, 1) in runs else None
        for t in threads:
            ms = runs[(name, t)]
            cpu, wall, rss = med([m["cpu"] for m in ms]), med([m["wall"] for m in ms]), max(m["rss_mib"] for m in ms)
            rs = [m["ratio"] for m in ms if m["ratio"]]
            ratio = f"{med(rs):.2f}× [{min(rs):.2f}–{max(rs):.2f}]" if rs else "–"
            speed = f"{one / wall:.2f}×" if one else "–"
            print(f"| {name} | {t} | {cpu:.2f} | {wall:.2f} | {mb / cpu:.2f} | {ratio} | {speed} | {rss:.0f} |")

    gt_path = os.path.join(corpus, "ground_truth.json")
    gt = json.load(open(gt_path)) if os.path.isfile(gt_path) else None
    print()
    print("Drops by rule (each binary, each thread count):")
    for (name, t), ms in sorted(runs.items()):
        drops = ms[0]["report"]["drops"]
        print(f"- {name}, {t} thread(s): " + ", ".join(f"{k} {v}" for k, v in sorted(drops.items())))
    if gt:
        # The filters run first, so their drops are the ground truth's exactly; exact
        # dedup runs after the quality presets, which drop some planted duplicates
        # first (their recall is measured by bench/near_quality.py instead).
        want = {}
        for s in gt["sources"].values():
            for k, v in s["expected_drops"].items():
                if k.startswith("filter."):
                    want[k] = want.get(k, 0) + v
        for (name, t), ms in sorted(runs.items()):
            drops = ms[0]["report"]["drops"]
            wrong = {k: (drops.get(k, 0), v) for k, v in want.items() if drops.get(k, 0) != v}
            print(f"- ground truth, {name} {t}: " + ("every planted filter case found" if not wrong else f"differs (got, want): {wrong}"))
    new = runs[("new", threads[-1])][0]["timings"]
    print()
    print(f"New binary, {threads[-1]} thread(s), timings.json per stage:")
    print("| stage | seconds | clock |")
    print("|---|---:|---|")
    for s in new["stages"]:
        print(f"| {s['stage']} | {s['seconds']:.2f} | {s['clock']} |")


if __name__ == "__main__":
    main()
