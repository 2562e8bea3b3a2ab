#!/usr/bin/env bash
# The whole pipeline on the benchmark corpus, side by side with the tokenizer alone.
#
#   bash bench/full.sh [CORPUS_DIR]        (default /tmp/curate-bench-corpus-512mb-seed0)
#
# 1. builds curate and examples/encode_bench in release mode (own target folder);
# 2. makes the corpus with bench/make_corpus.py if the folder has none;
# 3. times the tokenizers crate alone on the corpus text (encode_bench, 1 and 2
#    threads): the physical bound of a tokenizing pipeline;
# 4. runs curate three ways, under /usr/bin/time -v: `plain` (read, filter, exact
#    dedup, documents + ledger + report), `tok` (plus Mistral-template tokenization and
#    packing), `full` (plus MinHash near-dedup and 13-gram decontamination against the
#    GSM8K test set when ../shared/data is present);
# 5. prints one line per run: wall seconds, MB/s, documents/s, peak RSS, and the
#    per-stage seconds from timings.json.
#
# The tokenizer is the Mistral-7B tokenizer.json that scripts/test.sh fetches into
# .cache/; run the test script once first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
C=${1:-/tmp/curate-bench-corpus-512mb-seed0}
T=${CURATE_BENCH_TARGET:-/tmp/curate-rel}
TOK=$ROOT/.cache/tokenizer-llama2/package/models/tokenizer.json
[ -f "$TOK" ] || { echo "error: $TOK is missing: run scripts/test.sh once" >&2; exit 2; }

CARGO_TARGET_DIR=$T cargo build --release --locked --bin curate --example encode_bench >&2
B=$T/release
[ -f "$C/ground_truth.json" ] || python3 bench/make_corpus.py --mb 512 --seed 0 --out "$C"

echo "== tokenizers crate alone (encode_bench)"
for t in 1 2; do "$B/examples/encode_bench" "$TOK" $t "$C"/text/*.jsonl "$C"/instruction/*.jsonl; done

eval_source=""
if [ -f "$ROOT/../shared/data/gsm8k/test.jsonl" ]; then
  eval_source="[[source]]
name = \"gsm8k-test\"
path = \"$ROOT/../shared/data/gsm8k/test.jsonl\"
format = \"instruction\"
fields = { instruction = \"question\", output = \"answer\" }
role = \"eval\"
benchmark = \"gsm8k\""
else
  echo "note: ../shared/data/gsm8k is absent: the full run has no decontamination" >&2
fi

common='[[source]]
name = "text"
path = "text/*.jsonl"
format = "text"

[[source]]
name = "instruction"
path = "instruction/*.jsonl"
format = "instruction"

[filters]
min_chars = 50
max_chars = 50000
drop_regex = ["(?i)as an ai language model"]'
target="[target]
tokenizer = \"$TOK\"
template = \"mistral\"
seq_len = 4096

[pack]
overlong = \"truncate\""

printf '[recipe]\nname = "plain"\n\n%s\n\n[dedup]\nexact = true\n' "$common" > "$C/plain.toml"
printf '[recipe]\nname = "tok"\n\n%s\n\n%s\n\n[dedup]\nexact = true\n' "$target" "$common" > "$C/tok.toml"
printf '[recipe]\nname = "full"\n\n%s\n\n%s\n\n%s\n\n[dedup]\nexact = true\nnear = {}\n' "$target" "$common" "$eval_source" > "$C/full.toml"

echo "== curate"
for run in "plain 1" "plain 2" "tok 1" "tok 2" "full 2"; do
  set -- $run
  /usr/bin/time -v "$B/curate" --no-progress -q "$C/$1.toml" --threads "$2" --out "$C/out-$1-$2" 2> "$C/time-$1-$2.txt"
  python3 - "$C" "$1" "$2" <<'PY'
import json, re, sys
c, name, t = sys.argv[1:4]
tm = json.load(open(f"{c}/out-{name}-{t}/timings.json"))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{c}/time-{name}-{t}.txt").read()).group(1))
w = tm["wall_seconds"]
print(f"{name} threads={t} wall={w:.1f}s {tm['bytes_read']/1e6/w:.2f} MB/s {tm['records_read']/w:.0f} docs/s peak_rss={rss//1024} MB")
print("   ", {s["stage"]: round(s["seconds"], 2) for s in tm["stages"] if s["seconds"] > 0})
PY
done
