#!/usr/bin/env python3
"""Build a synthetic benchmark corpus for curate, deterministically from a seed.

The corpus is made of two sources, written as several JSONL shards each:

    text/part-NNNN.jsonl         {"id", "text"}: prose documents of ~200 chars to ~20 KB
    instruction/part-NNNN.jsonl  {"instruction", "input", "output"}: Alpaca-shaped rows

Every document is generated here from templates and a seeded vocabulary; nothing is
copied from any dataset. Planted into each source, and counted in ground_truth.json:

  * exact duplicates (~3% of rows): copies of an earlier row of the same source, either
    verbatim or differing only in ways curate's normalisation folds (CRLF line endings,
    surrounding whitespace, Unicode NFD instead of NFC). Each must be dropped by
    `dedup.exact`.
  * filter trips (~1% of rows): very short rows (`filter.min_chars`), rows holding
    "As an AI language model" boilerplate (`filter.drop_regex`) and, in the text
    source, a few over-long documents (`filter.max_chars`).

Every other row is distinct after normalisation (checked here with a content hash), so
the expected funnel is exact: kept = rows - duplicates - filter trips.

Standard library only; output is streamed in large chunks. Usage:

    python3 bench/make_corpus.py --mb 512 --out /tmp/curate-corpus --seed 0
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
import unicodedata

VERSION = 2

# The filter thresholds the planted rows are built against; the benchmark recipe uses
# the same values (they are recorded in ground_truth.json).
MIN_CHARS = 50
MAX_CHARS = 50_000
DROP_REGEX = "(?i)as an ai language model"

DUP_RATE = 0.03
SHORT_RATE = 0.0045
BOILER_RATE = 0.0045
LONG_RATE = 0.001  # text source only

TEXT_SHARE = 0.75  # of the bytes; the rest is instruction rows

# ---------------------------------------------------------------------------------------
# Vocabulary. Words are combined into pseudo-words too, so the vocabulary is large and
# varies with the seed.

NOUNS = """
river valley harbour station engine garden market library bridge tower village orchard
meadow forest canal quarry lighthouse workshop factory museum archive ledger census
harvest season storm current tide glacier plateau ridge basin delta estuary marsh
council committee survey report journal letter manuscript chapter volume index record
kettle lantern compass anchor barrel cart wagon plough loom spindle forge anvil hammer
signal circuit battery sensor valve turbine pump filter boiler furnace chimney gauge
teacher farmer miller weaver sailor merchant surveyor clerk engineer gardener baker
pattern method measure sample result estimate error margin average variance threshold
problem question answer theory model account argument example exception principle
""".split()

ADJECTIVES = """
quiet narrow broad ancient modern northern southern eastern western coastal inland
careful rough steady sudden gradual frequent rare common unusual heavy light bright dim
early late brief lengthy simple complex formal plain detailed partial complete uneven
reliable fragile sturdy hollow dense sparse damp dry warm cold remote nearby central
minor major principal secondary local regional annual seasonal daily nightly wooden
""".split()

VERBS = """
recorded measured described noted observed repaired replaced examined compared counted
collected reported estimated adjusted improved extended reduced doubled halved moved
carried built opened closed divided joined tested checked crossed followed reached
""".split()

ADVERBS = """
slowly quickly carefully briefly rarely often usually eventually gradually suddenly
partly largely mostly nearly roughly exactly barely steadily quietly openly
""".split()

# A few words with composed accents, so NFC normalisation has something to do.
ACCENTED = ["café", "naïve", "façade", "résumé", "Zürich", "Malmö", "São Paulo", "Ångström", "crème", "déjà vu"]

SYLLABLES = "ka lo mer ti van dor sel pen ru ba tes lin gar mo fi del ost bre ham wick ford ley ton".split()

TEMPLATES = [
    "The {adj} {noun} near {place} was {verb} {adv} during the {adj2} {noun2}.",
    "In {year}, the {noun} of {place} {verb} its {adj} {noun2} for the first time.",
    "{Place} kept a {adj} record of every {noun}, and the {noun2} was {verb} each {period}.",
    "According to the {noun}, about {num} {noun2}s were {verb} between {year} and {year2}.",
    "Nobody in {place} expected the {noun} to be {verb} so {adv}.",
    "The {noun2} {verb} by the {adj} {noun} is still used in {place} today.",
    "A {adj} {noun} runs along the {noun2}, {adv} widening towards {place}.",
    "Each {period}, the {noun} {verb} roughly {num} units, a figure the {noun2} {adv} confirmed.",
    "Later accounts describe the {noun} as {adj} and the {noun2} as {adj2}.",
    "It is worth noting that the {adj} {noun} was {verb} only after the {noun2} at {place} closed.",
    "The {noun}'s {noun2} measured {num} by {num2} metres, unusually {adj} for its time.",
    "Visitors to the {word} {noun} often mention its {adj} {noun2} and {accent}.",
    "Records from {place} show that the {noun} {verb} {num} times in a single {period}.",
    "The {noun2} was {adv} {verb}; the {adj} {noun} remained.",
    "Why the {noun} of {place} was {verb} remains an open question among {noun2} historians.",
]

PERIODS = ["week", "month", "season", "year", "decade", "winter", "summer"]

INSTRUCTIONS_WITH_INPUT = [
    "Summarise the following passage in one or two sentences.",
    "Rewrite the following text in a more formal tone.",
    "List the places mentioned in the passage below.",
    "Give the following paragraph a short title.",
    "Explain the main point of this passage to a new reader.",
    "Identify any numbers in the text and say what they measure.",
    "Turn the following notes into a short paragraph.",
    "Answer the question using only the passage provided.",
]

INSTRUCTIONS_NO_INPUT = [
    "Describe a {adj} {noun} in {place}.",
    "Write a short paragraph about the {noun} of {place}.",
    "Explain how a {noun} is usually {verb}.",
    "Give three facts about the {adj} {noun2}.",
    "What might a {noun} in {place} have looked like in {year}?",
    "Write a brief note to the {noun} committee of {place}.",
]

SHORT_TEXTS = ["ok", "see above", "n/a", "TODO", "tbd.", "nothing here", "[deleted]", "same as before", "thanks!", "-"]

BOILERPLATE = [
    "As an AI language model, I do not have personal opinions, but I can offer some context.",
    "As an AI language model, I cannot browse the internet; however, here is what is generally known.",
    "I'm sorry, but as an AI language model I am unable to verify this claim.",
    "As an AI Language Model, I don't have access to the records you mention.",
]


class Gen:
    """Seeded text generator: a bank of sentences built once, documents drawn from it."""

    def __init__(self, seed: int, bank_size: int = 60_000):
        self.rng = random.Random(seed)
        rng = self.rng
        self.places = sorted({self._pseudo(rng, 2, 3).title() for _ in range(3000)})
        self.words = sorted({self._pseudo(rng, 2, 4) for _ in range(20000)})
        self.bank = [self._sentence() for _ in range(bank_size)]
        self.accented_bank = [s for s in self.bank if not s.isascii()]

    @staticmethod
    def _pseudo(rng: random.Random, lo: int, hi: int) -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(lo, hi)))

    def _fill(self, template: str) -> str:
        rng = self.rng
        place = rng.choice(self.places)
        year = rng.randint(1650, 2020)
        return template.format(
            adj=rng.choice(ADJECTIVES),
            adj2=rng.choice(ADJECTIVES),
            noun=rng.choice(NOUNS),
            noun2=rng.choice(NOUNS),
            verb=rng.choice(VERBS),
            adv=rng.choice(ADVERBS),
            place=place,
            Place=place,
            year=year,
            year2=year + rng.randint(1, 80),
            num=rng.randint(2, 9999),
            num2=rng.randint(2, 500),
            period=rng.choice(PERIODS),
            word=rng.choice(self.words),
            accent=rng.choice(ACCENTED),
        )

    def _sentence(self) -> str:
        return self._fill(self.rng.choice(TEMPLATES))

    def sentences(self, k: int) -> list[str]:
        return self.rng.choices(self.bank, k=k)

    def paragraphs(self, target_chars: int) -> str:
        """Prose of roughly `target_chars`: paragraphs of 2-7 sentences."""
        rng = self.rng
        k = max(2, round(target_chars / 88))
        sents = self.rng.choices(self.bank, k=k)
        paras = []
        i = 0
        while i < k:
            n = rng.randint(2, 7)
            paras.append(" ".join(sents[i : i + n]))
            i += n
        return "\n\n".join(paras)

    def title(self, serial: int) -> str:
        rng = self.rng
        return f"{rng.choice(ADJECTIVES).title()} {rng.choice(NOUNS)} of {rng.choice(self.places)}, no. {serial}"


def digest(*parts: str) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.digest()


def length_target(rng: random.Random) -> int:
    """Log-uniform between 200 and 20,000 characters."""
    return int(math.exp(rng.uniform(math.log(200), math.log(20_000))))


# ---------------------------------------------------------------------------------------
# Variants that curate's normalisation folds back to the original.

SURROUND = [("  ", "\n"), ("\n", "  \t"), ("\t", ""), ("", "\n\n"), ("\ufeff", " ")]


def fold_variant(rng: random.Random, s: str, kind: str) -> str:
    if kind == "crlf":
        return s.replace("\n", "\r\n") if "\n" in s else s + "\r\n"
    if kind == "whitespace":
        a, b = rng.choice(SURROUND)
        return a + s + b
    if kind == "nfd":
        return unicodedata.normalize("NFD", s)
    return s


def pick_dup_kind(rng: random.Random, has_accent: bool) -> str:
    r = rng.random()
    if r < 0.4:
        return "verbatim"
    if r < 0.65:
        return "crlf"
    if r < 0.9 or not has_accent:
        return "whitespace"
    return "nfd"


class Pool:
    """A seeded reservoir of earlier originals to copy as duplicates."""

    def __init__(self, rng: random.Random, size: int = 4096):
        self.rng, self.size, self.items, self.seen = rng, size, [], 0

    def add(self, item) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(item)
        else:
            j = self.rng.randrange(self.seen)
            if j < self.size:
                self.items[j] = item

    def pick(self):
        return self.rng.choice(self.items)


class Counts:
    def __init__(self):
        self.rows = 0
        self.bytes = 0
        self.duplicates = {"verbatim": 0, "crlf": 0, "whitespace": 0, "nfd": 0}
        self.filters = {"filter.min_chars": 0, "filter.max_chars": 0, "filter.drop_regex": 0}
        self.files = []

    def as_json(self) -> dict:
        dups = sum(self.duplicates.values())
        filt = sum(self.filters.values())
        return {
            "records": self.rows,
            "bytes": self.bytes,
            "expected_drops": {"dedup.exact": dups, **{k: v for k, v in self.filters.items() if v}},
            "expected_kept": self.rows - dups - filt,
            "duplicates_by_variant": self.duplicates,
            "files": self.files,
        }


def write_shards(out_dir, sub, shards, budget, make_row, counts):
    """Write `budget` bytes of rows from `make_row(file, line)` into `shards` files."""
    os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    per = budget // shards
    for s in range(shards):
        rel = f"{sub}/part-{s:04d}.jsonl"
        target = per if s < shards - 1 else budget - per * (shards - 1)
        written = 0
        line = 0
        buf, buf_bytes = [], 0
        with open(os.path.join(out_dir, rel), "wb") as f:
            while written < target:
                line += 1
                b = (make_row(rel, line) + "\n").encode("utf-8")
                buf.append(b)
                buf_bytes += len(b)
                written += len(b)
                if buf_bytes >= 16 << 20:
                    f.write(b"".join(buf))
                    buf, buf_bytes = [], 0
            f.write(b"".join(buf))
        counts.rows += line
        counts.bytes += written
        counts.files.append({"file": rel, "records": line, "bytes": written})


def text_source(gen: Gen, rng: random.Random):
    counts = Counts()
    pool = Pool(random.Random(rng.random()))
    seen: set[bytes] = set()
    serial = [0]

    def row(rel: str, line: int) -> str:
        serial[0] += 1
        n = serial[0]
        rid = f"t{n:08d}"
        r = rng.random()
        if r < DUP_RATE and pool.items:
            text = pool.pick()
            kind = pick_dup_kind(rng, not text.isascii())
            counts.duplicates[kind] += 1
            return json.dumps({"id": rid, "text": fold_variant(rng, text, kind)}, ensure_ascii=False)
        r -= DUP_RATE
        if r < SHORT_RATE:
            counts.filters["filter.min_chars"] += 1
            text = rng.choice(SHORT_TEXTS)
            return json.dumps({"id": rid, "text": text}, ensure_ascii=False)
        r -= SHORT_RATE
        if r < BOILER_RATE:
            counts.filters["filter.drop_regex"] += 1
            body = gen.paragraphs(max(300, length_target(rng) // 2))
            text = rng.choice(BOILERPLATE) + "\n\n" + body
            return json.dumps({"id": rid, "text": text}, ensure_ascii=False)
        r -= BOILER_RATE
        if r < LONG_RATE:
            counts.filters["filter.max_chars"] += 1
            text = gen.title(n) + "\n\n" + gen.paragraphs(rng.randint(MAX_CHARS + 5_000, 2 * MAX_CHARS))
            while len(text) <= MAX_CHARS:  # sentences average a little under the estimate
                text += "\n\n" + gen.paragraphs(5_000)
            return json.dumps({"id": rid, "text": text}, ensure_ascii=False)
        while True:
            text = gen.title(n) + "\n\n" + gen.paragraphs(length_target(rng))
            if len(text) > MAX_CHARS - 1000:
                continue
            d = digest(text)
            if d not in seen:
                break
        seen.add(d)
        pool.add(text)
        return json.dumps({"id": rid, "text": text}, ensure_ascii=False)

    return row, counts


def instruction_source(gen: Gen, rng: random.Random):
    counts = Counts()
    pool = Pool(random.Random(rng.random()))
    seen: set[bytes] = set()

    def original() -> tuple[str, str, str]:
        if rng.random() < 0.55:
            ins = rng.choice(INSTRUCTIONS_WITH_INPUT)
            inp = gen.paragraphs(rng.randint(150, 1500))
        elif rng.random() < 0.5:
            a, b = rng.randint(10, 99999), rng.randint(10, 99999)
            op = rng.choice("+-*")
            val = a + b if op == "+" else a - b if op == "-" else a * b
            ins = f"What is {a} {op} {b}? Show the working."
            inp = ""
            work = " ".join(gen.sentences(rng.randint(0, 2)))
            return ins, inp, f"Compute {a} {op} {b} step by step. {work} The result is {val}.".replace("  ", " ")
        else:
            ins = gen._fill(rng.choice(INSTRUCTIONS_NO_INPUT))
            inp = ""
        out = gen.paragraphs(rng.randint(100, 2500))
        return ins, inp, out

    def row(rel: str, line: int) -> str:
        r = rng.random()
        if r < DUP_RATE and pool.items:
            ins, inp, out = pool.pick()
            kind = pick_dup_kind(rng, not (ins + inp + out).isascii())
            counts.duplicates[kind] += 1
            # Fold one field (or all, for NFD); the others stay verbatim.
            parts = [ins, inp, out]
            field = rng.choice([i for i in range(3) if parts[i]]) if kind != "nfd" else -1
            for i in range(3):
                if (field == -1 or i == field) and parts[i]:
                    parts[i] = fold_variant(rng, parts[i], kind)
            return json.dumps({"instruction": parts[0], "input": parts[1], "output": parts[2]}, ensure_ascii=False)
        r -= DUP_RATE
        if r < SHORT_RATE:
            counts.filters["filter.min_chars"] += 1
            return json.dumps({"instruction": "Say hi.", "input": "", "output": rng.choice(SHORT_TEXTS)}, ensure_ascii=False)
        r -= SHORT_RATE
        if r < BOILER_RATE:
            counts.filters["filter.drop_regex"] += 1
            ins, inp, out = original()
            out = rng.choice(BOILERPLATE) + " " + out
            return json.dumps({"instruction": ins, "input": inp, "output": out}, ensure_ascii=False)
        while True:
            ins, inp, out = original()
            d = digest(ins, inp, out)
            if d not in seen:
                break
        seen.add(d)
        pool.add((ins, inp, out))
        return json.dumps({"instruction": ins, "input": inp, "output": out}, ensure_ascii=False)

    return row, counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=512, help="total size in MB (10^6 bytes), default 512")
    ap.add_argument("--out", required=True, help="output folder (created; existing shards are overwritten)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--text-shards", type=int, default=6)
    ap.add_argument("--instruction-shards", type=int, default=2)
    a = ap.parse_args()

    t0 = time.time()
    total = int(a.mb * 1_000_000)
    text_budget = int(total * TEXT_SHARE)
    rng = random.Random(a.seed)
    gen = Gen(rng.randrange(2**32))

    text_row, text_counts = text_source(gen, random.Random(rng.randrange(2**32)))
    write_shards(a.out, "text", a.text_shards, text_budget, text_row, text_counts)
    ins_row, ins_counts = instruction_source(gen, random.Random(rng.randrange(2**32)))
    write_shards(a.out, "instruction", a.instruction_shards, total - text_budget, ins_row, ins_counts)

    truth = {
        "generator": "bench/make_corpus.py",
        "version": VERSION,
        "seed": a.seed,
        "mb": a.mb,
        "text_shards": a.text_shards,
        "instruction_shards": a.instruction_shards,
        "filters": {"min_chars": MIN_CHARS, "max_chars": MAX_CHARS, "drop_regex": [DROP_REGEX]},
        "total_bytes": text_counts.bytes + ins_counts.bytes,
        "total_records": text_counts.rows + ins_counts.rows,
        "sources": {"text": text_counts.as_json(), "instruction": ins_counts.as_json()},
    }
    with open(os.path.join(a.out, "ground_truth.json"), "w") as f:
        json.dump(truth, f, indent=2)
        f.write("\n")
    dt = time.time() - t0
    mb = truth["total_bytes"] / 1e6
    print(
        f"wrote {mb:.1f} MB, {truth['total_records']:,} records to {a.out} in {dt:.1f}s ({mb / dt:.1f} MB/s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
