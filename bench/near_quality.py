#!/usr/bin/env python3
"""Near-dedup quality of one curate output against a planted corpus.

    near_quality.py CORPUS_DIR OUT_DIR [OUT_DIR ...]

CORPUS_DIR holds JSONL shards of `{"id", "text"}` and a `ground_truth.json` whose
`near_dups` lists `[dup_id, original_id, jaccard]` pairs (the layout of the benchmark
corpus builder that plants near-duplicates). OUT_DIR is a curate output of a recipe
reading `CORPUS_DIR/part-*.jsonl` as `text` with near-dedup on.

Prints, per output:
- exact recall: planted exact pairs one of whose documents exact dedup removed;
- contamination recall (when the recipe decontaminated): planted documents holding an
  eval question that decontamination (or exact dedup) removed;
- loose removals: the share of documents removed as near-duplicates whose true 5-gram
  Jaccard (lowercased alphanumeric words, as curate normalises) with every other member
  of their cluster is below 0.5;
- recall of the planted pairs, by the pair's Jaccard (0.7-0.8, 0.8-0.9, 0.9-1): a pair
  is found when both documents end in one near-dup cluster.

Needs pyarrow.
"""

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

WORD = re.compile(r"[^\W_]+")
CLUSTER = re.compile(r"cluster (\d+)")


def shingles(text, n=5):
    w = WORD.findall(text.lower())
    if len(w) < n:
        return {tuple(w)}
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def jaccard(a, b):
    return len(a & b) / len(a | b) if a or b else 1.0


def load_corpus(corpus):
    by_loc, id_of = {}, {}
    for f in sorted(corpus.glob("part-*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            for row, line in enumerate(fh, 1):
                r = json.loads(line)
                by_loc[(f.name, row)] = r["text"]
                id_of[(f.name, row)] = r["id"]
    return by_loc, id_of


def analyse(corpus, out, by_loc, id_of, gt):
    kept = pq.read_table(out / "documents.parquet", columns=["id", "file", "row"]).to_pylist()
    ledger = pq.read_table(out / "ledger.parquet").to_pylist()
    loc_of = {d["id"]: (Path(d["file"]).name, d["row"]) for d in kept}
    for e in ledger:
        loc_of[e["doc_id"]] = (Path(e["file"]).name, e["row"])
    clusters = defaultdict(set)
    dropped = []
    for e in ledger:
        if e["stage"] != "near_dedup":
            continue
        c = int(CLUSTER.search(e["detail"]).group(1))
        clusters[c].add(e["doc_id"])
        clusters[c].add(e["duplicate_of"])
        dropped.append((e["doc_id"], c))
    cache = {}

    def sh(doc):
        if doc not in cache:
            cache[doc] = shingles(by_loc[loc_of[doc]])
        return cache[doc]

    loose = 0
    for doc, c in dropped:
        best = max((jaccard(sh(doc), sh(o)) for o in clusters[c] if o != doc), default=0.0)
        loose += best < 0.5
    cluster_of = {}
    for c, members in clusters.items():
        for m in members:
            cluster_of[id_of[loc_of[m]]] = c
    exact_removed = {id_of[loc_of[e["doc_id"]]] for e in ledger if e["stage"] == "dedup"}
    buckets = {"0.7-0.8": [0, 0], "0.8-0.9": [0, 0], "0.9-1.0": [0, 0], "<0.7": [0, 0]}
    for dup, orig, j in gt["near_dups"]:
        if dup in exact_removed or orig in exact_removed:
            continue
        b = "<0.7" if j < 0.7 else "0.7-0.8" if j < 0.8 else "0.8-0.9" if j < 0.9 else "0.9-1.0"
        buckets[b][1] += 1
        if dup in cluster_of and cluster_of.get(dup) == cluster_of.get(orig):
            buckets[b][0] += 1
    # Exact duplicates: a planted pair is found when one of its two documents was
    # removed by exact dedup. Contamination: a planted document is found when it was
    # ledgered by decontamination (when the recipe had an eval set).
    exact_found = sum(1 for d, o, *_ in gt.get("exact_dups", []) if d in exact_removed or o in exact_removed)
    decontaminated = {id_of[loc_of[e["doc_id"]]] for e in ledger if e["stage"] == "decontam"}
    planted = [c[0] for c in gt.get("contaminated", [])]
    contaminated_found = sum(1 for d in planted if d in decontaminated or d in exact_removed)
    return {
        "output": str(out),
        "exact_recall": (exact_found, len(gt.get("exact_dups", []))),
        "contamination_recall": (contaminated_found, len(planted)) if decontaminated else None,
        "near_removed": len(dropped),
        "loose_removed": loose,
        "loose_share": round(loose / len(dropped), 4) if dropped else 0.0,
        "recall": {k: (round(f / n, 3) if n else None, f, n) for k, (f, n) in buckets.items()},
    }


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    corpus = Path(sys.argv[1])
    gt = json.loads((corpus / "ground_truth.json").read_text())
    by_loc, id_of = load_corpus(corpus)
    for out in sys.argv[2:]:
        print(json.dumps(analyse(corpus, Path(out), by_loc, id_of, gt)))


if __name__ == "__main__":
    main()
