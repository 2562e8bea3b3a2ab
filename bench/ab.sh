#!/usr/bin/env bash
# Two curate binaries on one recipe, interleaved: CPU seconds (user + system), wall
# time and peak RSS from /usr/bin/time -v, per run.
#
#   bash bench/ab.sh CORPUS_DIR BINARY_A BINARY_B [REPEATS=2] [THREADS=2]
#
# CORPUS_DIR holds the recipe `full.toml`; outputs go to CORPUS_DIR/out-NAME.
set -euo pipefail
C=$1; A=$2; B=$3; N=${4:-2}; T=${5:-2}
for i in $(seq 1 $N); do
  for bin in "$A" "$B"; do
    name=$(basename "$bin")
    # curate replaces its own earlier output; --fresh discards an interrupted run's tasks.
    /usr/bin/time -v "$bin" --no-progress -q --fresh --threads "$T" "$C/full.toml" --out "$C/out-$name" 2> "$C/time-$name-$i.txt"
    u=$(grep "User time" "$C/time-$name-$i.txt" | awk '{print $NF}')
    s=$(grep "System time" "$C/time-$name-$i.txt" | awk '{print $NF}')
    w=$(grep "Elapsed (wall" "$C/time-$name-$i.txt" | awk '{print $NF}')
    r=$(grep "Maximum resident" "$C/time-$name-$i.txt" | awk '{print $NF}')
    echo "$name run $i: cpu $(echo "$u + $s" | bc) s, wall $w, peak RSS $((r/1024)) MiB"
  done
done
