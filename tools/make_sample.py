#!/usr/bin/env python3
"""Generate the bundled sample sources in recipes/data/, deterministically.

Every record is built here from templates and a seeded random generator; nothing is
taken from a real dataset. The same program always writes the same bytes, so a test can
regenerate the folder and compare sha256 sums, and `--check` does that comparison here.

    python3 tools/make_sample.py                 # (re)write recipes/data/
    python3 tools/make_sample.py --out DIR       # write somewhere else
    python3 tools/make_sample.py --check         # exit 1 if recipes/data/ is stale

Standard library only (Python 3.11+). No zstd file is produced: zstd is not in the
standard library, and the Rust tests build their own zstd input.

Files and what is planted in them
---------------------------------
Row numbers for every planted item are in recipes/data/PLANTED.json (1-based physical
line for JSONL, 1-based data record after the header for CSV, 1-based element index
for the JSON array, file name for notes/). "Records" counts lines / CSV records /
array elements / files, planted ones included.

| file                  | shape               | records | planted                                |
|-----------------------|---------------------|---------|----------------------------------------|
| arith.jsonl           | Alpaca: instruction,| 300     | 12 exact_duplicate_of: 6 verbatim,     |
|                       | input, output       |         |   2 trailing whitespace, 2 CRLF inside |
|                       |                     |         |   a string, 2 NFD accents              |
|                       |                     |         | 2 malformed: truncated object, not JSON|
|                       |                     |         | 1 missing_field (output)               |
|                       |                     |         | 2 empty output: "" and whitespace only |
|                       |                     |         | 3 ai_phrase, 2 short                   |
| units.csv             | Dolly: instruction, | 150     | 4 exact_duplicate_of arith.jsonl rows  |
|                       | context, response,  |         |   (instruction=instruction,            |
|                       | category            |         |   context=input, response=output)      |
| chat.jsonl            | id, messages        | 120     | 3 exact_duplicate_of (new id)          |
| sharegpt.json         | id, conversations   | 60      | 2 exact_duplicate_of chat.jsonl rows   |
|                       | (from/value)        |         |   (human=user, gpt=assistant)          |
| selfinstruct.jsonl.gz | id, instruction,    | 50      | none; 93 instances = 93 documents      |
|                       | instances[]         |         |                                        |
| notes/*.txt           | one text per file   | 25      | 2 empty: 0 bytes, whitespace only      |
|                       |                     |         | 1 exact_duplicate_of another note      |

Guarantees the generator asserts before writing (so tests can rely on them):
- After normalisation (Unicode NFC, CRLF/CR to LF, surrounding whitespace trimmed per
  field) no two records collide within or across files except the planted duplicates,
  and every planted duplicate points at the first occurrence in the order arith.jsonl,
  units.csv, chat.jsonl, sharegpt.json, selfinstruct.jsonl.gz, notes/.
- "As an AI language model" occurs only in the 3 ai_phrase rows.
- The 2 short rows have under 10 characters of instruction+input+output; every other
  usable arith.jsonl row has at least 40.
- The first 5 lines of arith.jsonl are clean, so format sniffing sees a good record.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import random
import re
import struct
import sys
import tempfile
import unicodedata
import zlib
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

SEED = 20231101
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "recipes" / "data"

# Order in which sources are meant to appear in a recipe; a duplicate's survivor is the
# earliest occurrence in this order, which is what PLANTED.json points at.
SOURCE_ORDER = ["arith.jsonl", "units.csv", "chat.jsonl", "sharegpt.json",
                "selfinstruct.jsonl.gz", "notes"]

AI_PHRASE = "As an AI language model"

# The counts the docstring table promises. generate() asserts them, so a template change
# that shifts a count fails here rather than silently making the docs and tests wrong.
EXPECTED = {
    "arith.jsonl": (300, {"ai_phrase": 3, "empty": 2, "exact_duplicate_of": 12, "malformed": 2,
                          "missing_field": 1, "short": 2}),
    "units.csv": (150, {"exact_duplicate_of": 4}),
    "chat.jsonl": (120, {"exact_duplicate_of": 3}),
    "sharegpt.json": (60, {"exact_duplicate_of": 2}),
    "selfinstruct.jsonl.gz": (50, {}),
    "notes": (25, {"empty": 2, "exact_duplicate_of": 1}),
}
EXPECTED_INSTANCES = 93
SIZE_BUDGET = 400_000     # bytes, all files together: the sample ships in the repo

# Names deliberately include precomposed accents (é, ë, ö, á): the NFD-duplicate plants
# need them, and they exercise Unicode normalisation on ordinary rows too.
NAMES = ["José", "Zoë", "Chloé", "Renée", "Björn", "Tomás", "Inés", "Amélie", "Søren",
         "Priya", "Kwame", "Mei", "Liam", "Fatima", "Yusuf", "Olga", "Aiko", "Noah",
         "Sofia", "Ravi", "Ingrid", "Mateo", "Amara", "Hannah", "Diego", "Leila", "Kenji",
         "Grace", "Oskar", "Nadia", "Samir", "Elena", "Tariq", "Maya", "Lucas", "Wanjiru"]

# (singular, plural, lowest price in cents, highest price in cents)
GOODS = [("notebook", "notebooks", 150, 600), ("pencil", "pencils", 25, 150),
         ("apple", "apples", 25, 120), ("bus ticket", "bus tickets", 150, 450),
         ("bag of rice", "bags of rice", 200, 900), ("pack of batteries",
         "packs of batteries", 300, 1200), ("mug", "mugs", 400, 1500),
         ("plant pot", "plant pots", 250, 1000), ("loaf of bread", "loaves of bread", 150, 500),
         ("bottle of juice", "bottles of juice", 100, 400), ("sketchbook", "sketchbooks", 500, 1800),
         ("ball of yarn", "balls of yarn", 200, 800), ("jar of honey", "jars of honey", 350, 1200),
         ("pair of socks", "pairs of socks", 200, 900), ("tin of paint", "tins of paint", 800, 2500)]

# Things that get counted and shared; no prices needed.
COUNTABLES = ["marbles", "stickers", "cookies", "seashells", "trading cards", "strawberries",
              "crayons", "postcards", "buttons", "chestnuts", "beads", "stamps"]

ITEMS_ON_SALE = ["jacket", "backpack", "desk lamp", "pair of boots", "bicycle helmet",
                 "board game", "kettle", "rain coat", "toaster", "camping stove",
                 "chess set", "watering can"]


# ----------------------------------------------------------------------------------------
# Small formatting helpers. Decimal with ROUND_HALF_UP keeps rounding the way people
# expect (2.5 -> 3), which float round() does not, and keeps output platform-independent.

def q(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def fixed(value: Decimal, places: int) -> str:
    return f"{q(value, places):f}"


def plain(value: Decimal | int) -> str:
    """A number without trailing zeros: 12.50 -> 12.5, 3.0 -> 3."""
    s = f"{Decimal(value):f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def money(cents: int | Decimal) -> str:
    """$12 for whole dollars, $12.50 otherwise."""
    cents = Decimal(cents)
    if cents % 100 == 0:
        return f"${int(cents // 100)}"
    return f"${fixed(cents / 100, 2)}"


def approx(exact: Decimal, shown: Decimal) -> str:
    return "=" if exact == shown else "≈"


def hhmm(minutes: int) -> str:
    minutes %= 24 * 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def pick(r: random.Random, seq):
    return seq[r.randrange(len(seq))]


# ----------------------------------------------------------------------------------------
# Normalisation used by the self-checks. It mirrors what the pipeline promises for exact
# dedup (NFC, line endings, surrounding whitespace); if the two ever disagree the Rust
# tests against PLANTED.json will say so.

def norm(s: str) -> str:
    s = unicodedata.normalize("NFC", s).replace("\r\n", "\n").replace("\r", "\n")
    return s.strip()


@dataclass
class Row:
    """One record of a source plus what, if anything, is planted in it."""
    obj: object                      # the record (dict), or raw text for a malformed line
    kind: str | None = None          # planted kind, None for a clean row
    detail: dict = field(default_factory=dict)
    dup_of: "Row | None" = None      # for exact_duplicate_of: the original Row
    file: str = ""                   # filled in when the file is laid out
    num: int = 0                     # 1-based position in its file, filled in at layout


def place_after(r: random.Random, rows: list[Row], original: Row, new: Row,
                min_index: int = 0) -> None:
    """Insert `new` at a random position after `original` (and not before min_index)."""
    lo = max(next(i for i, x in enumerate(rows) if x is original) + 1, min_index)
    rows.insert(r.randint(lo, len(rows)), new)


def place_anywhere(r: random.Random, rows: list[Row], new: Row, min_index: int) -> None:
    rows.insert(r.randint(min_index, len(rows)), new)


# ----------------------------------------------------------------------------------------
# arith.jsonl: Alpaca-shaped arithmetic.

def a_add(r):
    a, b = r.randint(12, 999), r.randint(12, 999)
    s = a + b
    ins, inp = pick(r, [(f"What is {a} + {b}?", ""), (f"Add {a} and {b}.", ""),
                        ("Add the two numbers.", f"{a}, {b}"),
                        (f"Compute the sum of {a} and {b}.", ""),
                        ("Find the sum.", f"{a} + {b}")])
    end = pick(r, [f"The answer is {s}.", f"So the sum is {s}.", f"Answer: {s}"])
    return ins, inp, f"{a} + {b} = {s}\n{end}"


def a_add3(r):
    a, b, c = (r.randint(10, 500) for _ in range(3))
    ab, s = a + b, a + b + c
    ins, inp = pick(r, [(f"Add {a}, {b} and {c}.", ""),
                        ("What is the total of these three numbers?", f"{a}, {b}, {c}"),
                        (f"Work out {a} + {b} + {c} step by step.", "")])
    return ins, inp, f"First, {a} + {b} = {ab}.\nThen, {ab} + {c} = {s}.\nThe total is {s}."


def a_sub(r):
    a = r.randint(100, 2000)
    b = r.randint(10, a - 1)
    d = a - b
    ins, inp = pick(r, [(f"What is {a} - {b}?", ""), (f"Subtract {b} from {a}.", ""),
                        ("Find the difference between the two numbers.", f"{a} and {b}"),
                        (f"How much greater is {a} than {b}?", "")])
    return ins, inp, f"{a} - {b} = {d}\nThe difference is {d}."


def a_mul(r):
    a, b = r.randint(12, 99), r.randint(12, 99)
    tens, units = b // 10 * 10, b % 10
    p = a * b
    op = pick(r, ["×", "*"])
    ins, inp = pick(r, [(f"What is {a} {op} {b}?", ""), (f"Multiply {a} by {b}.", ""),
                        ("Multiply the two numbers.", f"{a} and {b}"),
                        (f"Calculate the product of {a} and {b}.", "")])
    if units == 0:
        work = f"{a} {op} {b} = {p}"
    else:
        work = (f"{a} {op} {b} = {a} {op} {tens} + {a} {op} {units}\n"
                f"= {a * tens} + {a * units}\n= {p}")
    return ins, inp, f"{work}\nThe product is {p}."


def a_pct(r):
    p = pick(r, [5, 10, 12, 15, 20, 25, 30, 35, 40, 45, 60, 75])
    n = r.randint(2, 60) * 20
    v = Decimal(p) * n / 100
    ins, inp = pick(r, [(f"What is {p}% of {n}?", ""), (f"Calculate {p} percent of {n}.", ""),
                        ("Find the given percentage of the number.", f"{p}% of {n}"),
                        (f"Work out {p}% of {n}.", "")])
    return ins, inp, f"{p}% of {n} = {p}/100 × {n} = {plain(v)}\nThe answer is {plain(v)}."


def a_discount(r):
    name = pick(r, NAMES)
    item = pick(r, ITEMS_ON_SALE)
    price = r.randint(8, 90) * 500            # cents, multiples of $5
    p = pick(r, [10, 15, 20, 25, 30, 40, 50])
    off = price * p // 100
    ins = pick(r, [f"{name} wants a {item} that costs {money(price)}. The shop takes {p}% off. "
                   f"What does {name} pay?",
                   f"A {item} is priced at {money(price)} and is on sale for {p}% off. "
                   f"What is the sale price?",
                   f"{name} sees a {item} for {money(price)} with a {p}% discount. "
                   f"How much will it cost after the discount?"])
    out = (f"Discount: {p}% of {money(price)} = {money(off)}.\n"
           f"Sale price: {money(price)} - {money(off)} = {money(price - off)}.\n"
           f"The {item} costs {money(price - off)}.")
    return ins, "", out


def a_avg(r):
    k = r.randint(3, 5)
    xs = [r.randint(40, 100) for _ in range(k)]
    s = sum(xs)
    exact = Decimal(s) / k
    shown = q(exact, 2)
    listed = ", ".join(map(str, xs))
    ins, inp = pick(r, [(f"Find the average of {listed}.", ""),
                        ("Compute the mean of these test scores.", listed),
                        ("What is the average of the numbers below?", listed)])
    out = (f"Sum: {' + '.join(map(str, xs))} = {s}.\nThere are {k} numbers.\n"
           f"Average: {s} ÷ {k} {approx(exact, shown)} {plain(shown)}.")
    return ins, inp, out


def a_shop(r):
    name = pick(r, NAMES)
    (s1, p1, lo1, hi1), (s2, p2, lo2, hi2) = r.sample(GOODS, 2)
    n1, n2 = r.randint(2, 9), r.randint(2, 9)
    c1, c2 = r.randint(lo1 // 25, hi1 // 25) * 25, r.randint(lo2 // 25, hi2 // 25) * 25
    t1, t2 = n1 * c1, n2 * c2
    ins = pick(r, [f"{name} buys {n1} {p1} at {money(c1)} each and {n2} {p2} at {money(c2)} each. "
                   f"How much does {name} spend in total?",
                   f"At the market, {name} picks up {n1} {p1} ({money(c1)} each) and {n2} {p2} "
                   f"({money(c2)} each). What is the total cost?",
                   f"What is the total bill for {n1} {p1} at {money(c1)} and {n2} {p2} at "
                   f"{money(c2)}? {name} is paying."])
    out = (f"{n1} × {money(c1)} = {money(t1)}\n{n2} × {money(c2)} = {money(t2)}\n"
           f"Total: {money(t1)} + {money(t2)} = {money(t1 + t2)}")
    return ins, "", out


def a_share(r):
    name = pick(r, NAMES)
    thing = pick(r, COUNTABLES)
    k = r.randint(3, 9)
    total = r.randint(4 * k, 12 * k)
    each, left = divmod(total, k)
    ins = pick(r, [f"{name} has {total} {thing} and shares them equally among {k} friends. "
                   f"How many does each friend get, and how many are left over?",
                   f"{total} {thing} are split evenly between {k} children. How many does each "
                   f"child get? {name} keeps any left over.",
                   f"If {name} divides {total} {thing} into {k} equal groups, how many are in "
                   f"each group and how many remain?"])
    rest = "with none left over" if left == 0 else f"and {left} left over"
    out = f"{total} ÷ {k} = {each} remainder {left}.\nEach gets {each}, {rest}."
    return ins, "", out


def a_speed(r):
    name = pick(r, NAMES)
    v = r.randint(8, 30) if r.random() < 0.5 else r.randint(40, 110)
    t = Decimal(r.randint(2, 12)) / 2            # half hours
    d = v * t
    who = "cycles" if v <= 30 else "drives"
    hours = "hour" if t == 1 else "hours"
    ins = pick(r, [f"{name} {who} at {v} km/h for {plain(t)} {hours}. How far does {name} travel?",
                   f"How far is a {plain(t)}-hour trip at a steady {v} km/h? {name} wants to know.",
                   f"At {v} km per hour, what distance does {name} cover in {plain(t)} {hours}?"])
    out = f"Distance = speed × time = {v} × {plain(t)} = {plain(d)} km.\n{name} travels {plain(d)} km."
    return ins, "", out


def a_save(r):
    name = pick(r, NAMES)
    per = r.randint(3, 40) * 5
    goal = per * r.randint(4, 30) + pick(r, [0, 0, r.randint(1, per - 1)])
    weeks = math.ceil(goal / per)
    ins = pick(r, [f"{name} saves {money(per * 100)} every week. How many weeks until {name} has "
                   f"at least {money(goal * 100)}?",
                   f"Saving {money(per * 100)} a week, how long does it take {name} to reach "
                   f"{money(goal * 100)}?"])
    if goal % per == 0:
        out = f"{goal} ÷ {per} = {weeks}.\n{name} needs {weeks} weeks."
    else:
        out = (f"{goal} ÷ {per} = {goal // per} remainder {goal % per}, so round up.\n"
               f"After {weeks - 1} weeks: {money((weeks - 1) * per * 100)}, not enough.\n"
               f"After {weeks} weeks: {money(weeks * per * 100)}.\n{name} needs {weeks} weeks.")
    return ins, "", out


def a_age(r):
    x, y = r.sample(NAMES, 2)
    a, d, later = r.randint(5, 40), r.randint(2, 25), r.randint(2, 15)
    ins = pick(r, [f"{x} is {a} years old. {y} is {d} years older than {x}. How old will {y} "
                   f"be in {later} years?",
                   f"{y} is {d} years older than {x}, who is {a}. What age will {y} be "
                   f"{later} years from now?"])
    out = (f"{y} is now {a} + {d} = {a + d}.\nIn {later} years: {a + d} + {later} = {a + d + later}.\n"
           f"{y} will be {a + d + later}.")
    return ins, "", out


def a_change(r):
    name = pick(r, NAMES)
    sing, plur, lo, hi = pick(r, GOODS)
    n = r.randint(2, 6)
    c = r.randint(lo // 25, hi // 25) * 25
    total = n * c
    note = next(x for x in [500, 1000, 2000, 5000, 10000, 20000] if x >= total)
    ins = pick(r, [f"{name} buys {n} {plur} at {money(c)} each and pays with {money(note)}. "
                   f"How much change does {name} get?",
                   f"{n} {plur} cost {money(c)} each. {name} hands over {money(note)}. "
                   f"What is the change?"])
    out = (f"Cost: {n} × {money(c)} = {money(total)}.\n"
           f"Change: {money(note)} - {money(total)} = {money(note - total)}.")
    return ins, "", out


ARITH_KINDS = [(a_add, 3), (a_add3, 2), (a_sub, 2), (a_mul, 3), (a_pct, 3), (a_discount, 2),
               (a_avg, 2), (a_shop, 3), (a_share, 2), (a_speed, 2), (a_save, 2), (a_age, 1),
               (a_change, 2)]


def alpaca(ins: str, inp: str, out: str) -> dict:
    return {"instruction": ins, "input": inp, "output": out}


def unique_rows(r: random.Random, kinds, n: int, make, seen: set) -> list[Row]:
    """Draw from weighted templates until n rows with distinct normalised keys exist.

    `seen` is shared across files, so templates used by two sources can never collide
    by accident; only planted duplicates may repeat content.
    """
    fns = [f for f, w in kinds for _ in range(w)]
    rows = []
    while len(rows) < n:
        rec = make(pick(r, fns)(r))
        key = doc_key(rec)
        if key in seen:
            continue
        seen.add(key)
        rows.append(Row(rec))
    return rows


def build_arith(seen: set) -> tuple[list[Row], list[Row]]:
    """Returns the rows of arith.jsonl and a pool of clean rows that units.csv may copy."""
    r = random.Random(f"{SEED}:arith")
    clean = unique_rows(r, ARITH_KINDS, 278, lambda t: alpaca(*t), seen)
    rows = list(clean)
    protected = 5        # keep the first lines clean for format sniffing

    # Rows that break in some way. Their content is fresh, so the only thing wrong with
    # each is the thing planted.
    a, b = 317, 488
    good = json.dumps(alpaca(f"Add {a} and {b}.", "", f"{a} + {b} = {a + b}"),
                      ensure_ascii=False)
    truncated = good[: len(good) * 3 // 5]
    not_json = "instruction: multiply 14 by 6 | output: 84"
    for text in (truncated, not_json):
        try:
            json.loads(text)
            raise AssertionError("a malformed plant parses as JSON")
        except json.JSONDecodeError:
            pass
    singles = [
        Row(truncated, "malformed", {"what": "truncated JSON object"}),
        Row(not_json, "malformed", {"what": "not JSON"}),
        Row({"instruction": "Divide 144 by 12 and explain the result.", "input": ""},
            "missing_field", {"field": "output"}),
        Row(alpaca("What is 61 × 7?", "", ""), "empty", {"field": "output", "what": "empty string"}),
        Row(alpaca("Subtract 245 from 1,000.", "", "  \n\t \n"), "empty",
            {"field": "output", "what": "whitespace only"}),
        Row(alpaca("What is 14 + 29?", "",
                   f"{AI_PHRASE}, I do not have fingers to count on, but 14 + 29 = 43."),
            "ai_phrase"),
        Row(alpaca("A box holds 24 pens. How many pens are in 7 boxes?", "",
                   f"{AI_PHRASE}, I can help with that. 24 × 7 = 168, so there are 168 pens."),
            "ai_phrase"),
        Row(alpaca("What is 30% of 250?", "",
                   f"30% of 250 is 75. {AI_PHRASE}, I recommend double-checking with a calculator."),
            "ai_phrase"),
        Row(alpaca("2+2?", "", "4"), "short"),
        Row(alpaca("5*3?", "", "15"), "short"),
    ]
    for row in singles:
        if isinstance(row.obj, dict):
            key = doc_key(row.obj)
            assert key not in seen, row.obj
            seen.add(key)
        place_anywhere(r, rows, row, protected)

    # Exact duplicates. The variants are identical to their original only after the
    # normalisation the pipeline promises, which is the point of planting them.
    def variant_ok(v, rec):
        if v == "crlf":
            return "\n" in rec["output"]
        if v == "nfd":
            return any(unicodedata.normalize("NFD", x) != x for x in rec.values())
        return True

    # Trailing whitespace goes on `output`, the last field, so the copy matches whether
    # the pipeline trims each field or the assembled document.
    trailing = iter(["   ", " \n"])
    variants = ["verbatim"] * 6 + ["trailing_whitespace"] * 2 + ["crlf"] * 2 + ["nfd"] * 2
    used: set[int] = set()
    for v in variants:
        pool = [x for x in clean if id(x) not in used and variant_ok(v, x.obj)]
        orig = pick(r, pool)
        used.add(id(orig))
        rec = dict(orig.obj)
        if v == "trailing_whitespace":
            rec["output"] += next(trailing)
        elif v == "crlf":
            rec["output"] = rec["output"].replace("\n", "\r\n")
        elif v == "nfd":
            rec = {k: unicodedata.normalize("NFD", x) for k, x in rec.items()}
        place_after(r, rows, orig, Row(rec, "exact_duplicate_of", {"variant": v}, orig), protected)

    cross_pool = [x for x in clean if id(x) not in used]
    return rows, cross_pool


# ----------------------------------------------------------------------------------------
# units.csv: Dolly-shaped unit conversions.

KM_TO_MI = Decimal("0.621371")
MI_TO_KM = Decimal("1.609344")          # exact by definition
KG_TO_LB = Decimal("2.20462")
LB_TO_KG = Decimal("0.45359237")        # exact by definition
GAL_TO_L = Decimal("3.785411784")       # US gallon, exact by definition

PLACES = ["the lake", "the old mill", "the ridge hut", "the harbour", "the next village",
          "the ferry landing", "the lighthouse", "the orchard", "the campsite", "the summit"]


def num_text(r: random.Random, x: Decimal) -> str:
    """Numbers of a thousand or more sometimes get a thousands comma, which CSV must quote."""
    if x >= 1000 and x == x.to_integral_value() and r.random() < 0.6:
        return f"{int(x):,}"
    return plain(x)


def u_km_mi(r):
    x = Decimal(r.randint(1, 400)) / pick(r, [1, 1, 2, 10])
    mi = x * KM_TO_MI
    xs = num_text(r, x)
    forms = [(f"Convert {xs} km to miles.", ""), (f"How many miles is {xs} kilometres?", ""),
             (f'A road sign says "{xs} km". How far is that in miles?', "")]
    # Like the other settings below, a walk only gets a distance someone would walk.
    if x <= 30:
        forms.append(("How long is the route in miles?",
                      f"The walk to {pick(r, PLACES)} is {xs} km, one way, on a marked path."))
    else:
        forms.append(("How far is the drive in miles?",
                      f"By road, the drive from the coast to {pick(r, PLACES)} is {xs} km."))
    ins, ctx = pick(r, forms)
    resp = f"{xs} km × {KM_TO_MI} = {fixed(mi, 2)} miles (rounded to two decimals)."
    if r.random() < 0.5:
        resp += f"\nSo {xs} km is about {fixed(mi, 1)} miles."
    return ins, ctx, resp


def u_mi_km(r):
    x = Decimal(r.randint(1, 300)) / pick(r, [1, 1, 2, 4])
    km = x * MI_TO_KM
    xs = num_text(r, x)
    forms = [(f"Convert {xs} miles to kilometres.", ""), (f"What is {xs} mi in km?", ""),
             (f"How many kilometres are there in {xs} miles?", "")]
    if x <= 60:
        forms.append(("Give the distance in kilometres.",
                      f"From the station to {pick(r, PLACES)} is {xs} miles, according to the old map."))
    else:
        forms.append(("How long is the rail line in kilometres?",
                      f"The old rail line, closed in 1962, ran for {xs} miles."))
    ins, ctx = pick(r, forms)
    resp = f"1 mile = 1.609344 km, so {xs} × 1.609344 = {fixed(km, 2)} km."
    return ins, ctx, resp


def u_c_f(r):
    c = Decimal(r.randint(-40, 250)) / pick(r, [1, 1, 1, 2])
    f = c * 9 / 5 + 32
    cs = plain(c)
    forms = [(f"Convert {cs} °C to Fahrenheit.", ""), (f"What is {cs} degrees Celsius in °F?", "")]
    # Settings only where the number is plausible for them: an oven, or the weather.
    if c >= 100:
        forms.append((f'The oven dial reads "{cs} °C". What is that in Fahrenheit?', ""))
    if -30 <= c <= 45:
        forms.append(("What was the temperature in Fahrenheit?",
                      f"At noon the thermometer on the porch showed {cs} °C, with a light wind."))
    elif 45 < c < 100:
        forms.append(("What is the water bath temperature in °F?",
                      f"For the eggs, the water bath is held at {cs} °C, stirred now and then."))
    ins, ctx = pick(r, forms)
    resp = f"°F = °C × 9/5 + 32\n= {cs} × 9/5 + 32\n= {plain(q(f, 1))} °F"
    return ins, ctx, resp


def u_f_c(r):
    f = Decimal(r.randint(-20, 480))
    c = (f - 32) * 5 / 9
    shown = q(c, 1)
    fs = plain(f)
    forms = [(f"Convert {fs} °F to Celsius.", ""),
             (f"What is {fs} degrees Fahrenheit in Celsius?", "")]
    if f >= 250:
        forms.append((f'A recipe says "bake at {fs} °F". What is that in °C?', ""))
    if f <= 10:
        forms.append(("Express the reading in degrees Celsius.",
                      f"The freezer log, kept by the night shift, lists {fs} °F at 3 a.m."))
    elif f <= 115:
        forms.append(("What was that in Celsius?",
                      f"The weather station, on the school roof, reported {fs} °F at noon."))
    elif 212 < f < 250:
        forms.append(("What is that temperature in °C?",
                      f"For the fudge, the sugar syrup was cooked until it reached {fs} °F."))
    ins, ctx = pick(r, forms)
    resp = (f"°C = (°F - 32) × 5/9\n= ({fs} - 32) × 5/9\n"
            f"{approx(c, shown)} {plain(shown)} °C")
    return ins, ctx, resp


def u_kg_lb(r):
    x = Decimal(r.randint(1, 3000)) / pick(r, [1, 1, 10])
    lb = x * KG_TO_LB
    xs = num_text(r, x)
    forms = [(f"Convert {xs} kg to pounds.", ""), (f"How many pounds is {xs} kilograms?", "")]
    if x <= 40:
        forms.append((f"A suitcase weighs {xs} kg. What is its weight in lb?", ""))
        forms.append(("How heavy is the parcel in pounds?",
                      f"The parcel, packed with books and a lamp, weighs {xs} kg on the post office scale."))
    else:
        forms.append(("What is the load in pounds?",
                      f"The delivery, tiles and sand, came to {xs} kg on the weighbridge."))
    ins, ctx = pick(r, forms)
    resp = f"{xs} kg × {KG_TO_LB} lb/kg ≈ {fixed(lb, 1)} lb."
    return ins, ctx, resp


def u_lb_kg(r):
    x = Decimal(r.randint(1, 2000)) / pick(r, [1, 1, 2])
    kg = x * LB_TO_KG
    xs = num_text(r, x)
    forms = [(f"Convert {xs} lb to kilograms.", ""), (f"What is {xs} pounds in kg?", "")]
    if x <= 110:
        forms.append((f'The sack of flour is labelled "{xs} lb". How many kilograms is that?', ""))
    else:
        forms.append(("What is the crate's weight in kilograms?",
                      f'The freight bill lists the crate at {xs} lb, "handle with care".'))
    ins, ctx = pick(r, forms)
    resp = f"1 lb = 0.45359237 kg.\n{xs} × 0.45359237 ≈ {fixed(kg, 2)} kg."
    return ins, ctx, resp


def u_l_gal(r):
    x = Decimal(r.randint(1, 1200)) / pick(r, [1, 1, 2, 10])
    gal = x / GAL_TO_L
    xs = num_text(r, x)
    forms = [(f"Convert {xs} litres to US gallons.", ""), (f"How many US gallons are in {xs} L?", "")]
    if x >= 100:
        forms.append(("How many US gallons does the tank hold?",
                      f"The rain tank behind the shed holds {xs} litres when full."))
    elif x >= 5:
        forms.append(("How much is that in US gallons?",
                      f"The camping cooler, the blue one, holds {xs} litres of water."))
    ins, ctx = pick(r, forms)
    resp = f"1 US gallon = 3.785411784 L, so {xs} ÷ 3.785411784 ≈ {fixed(gal, 2)} US gallons."
    return ins, ctx, resp


def u_gal_l(r):
    x = Decimal(r.randint(1, 500)) / pick(r, [1, 1, 2, 4])
    lit = x * GAL_TO_L
    xs = num_text(r, x)
    forms = [(f"Convert {xs} US gallons to litres.", ""), (f"What is {xs} gal (US) in litres?", "")]
    if x <= 20:
        forms.append((f"How many litres is {xs} US gallons of paint?", ""))
    else:
        forms.append(("How many litres does the aquarium hold?",
                      f"The aquarium at the library holds {xs} US gallons, plus gravel."))
    ins, ctx = pick(r, forms)
    resp = f"{xs} × 3.785411784 = {fixed(lit, 2)} L (rounded)."
    return ins, ctx, resp


UNIT_KINDS = [(u_km_mi, 3), (u_mi_km, 2), (u_c_f, 3), (u_f_c, 2), (u_kg_lb, 2), (u_lb_kg, 2),
              (u_l_gal, 2), (u_gal_l, 2)]


def dolly(ins: str, ctx: str, resp: str, cat: str | None = None) -> dict:
    return {"instruction": ins, "context": ctx, "response": resp,
            "category": cat or ("closed_qa" if ctx else "open_qa")}


def build_units(seen: set, cross_pool: list[Row]) -> list[Row]:
    r = random.Random(f"{SEED}:units")
    rows = unique_rows(r, UNIT_KINDS, 146, lambda t: dolly(*t), seen)
    # Cross-source duplicates: two arith rows with an input (so the input -> context
    # mapping is exercised) and two without; all have multi-line outputs, which become
    # quoted CSV fields with embedded newlines.
    with_input = [x for x in cross_pool if x.obj["input"] and "\n" in x.obj["output"]]
    without = [x for x in cross_pool if not x.obj["input"] and "\n" in x.obj["output"]]
    picks = r.sample(with_input, 2) + r.sample(without, 2)
    for orig in picks:
        o = orig.obj
        rec = dolly(o["instruction"], o["input"], o["output"], "general_qa")
        place_anywhere(r, rows, Row(rec, "exact_duplicate_of", {"variant": "cross_source"}, orig), 1)
    return rows


# ----------------------------------------------------------------------------------------
# chat.jsonl and sharegpt.json: multi-turn conversations with computed answers.

SYSTEM_PROMPTS = ["You are a helpful assistant. Show your working briefly.",
                  "You are a careful maths tutor. Keep answers short.",
                  "Answer in plain language and give the final number on its own line.",
                  "You help people plan their day. Be concise and exact."]

THANKS = [("Thanks, that helps.", "Glad it helped."),
          ("Great, thank you!", "You're welcome."),
          ("Perfect.", "Happy to help with any other numbers.")]


def c_arith(r):
    a, b = r.randint(12, 99), r.randint(3, 40)
    p = a * b
    turns = [(pick(r, [f"Can you work out {a} × {b} for me?", f"What's {a} times {b}?",
                       f"Quick one: {a} multiplied by {b}?"]),
              f"{a} × {b} = {p}.")]
    k = pick(r, [2, 4, 5, 10])
    if r.random() < 0.6:
        v = Decimal(p) / k
        turns.append((f"Now divide that by {k}.", f"{p} ÷ {k} = {plain(v)}."))
    if r.random() < 0.3:
        turns.append(pick(r, THANKS))
    return turns


def c_units(r):
    x = pick(r, [Decimal(5), Decimal(8), Decimal(10), Decimal(12), Decimal(15), Decimal("21.1")])
    mins = r.randint(int(x * 4), int(x * 8))
    mi = x * KM_TO_MI
    pace = Decimal(mins * 60) / mi                     # seconds per mile
    ps = int(q(pace, 0))
    turns = [(pick(r, [f"How many miles is a {plain(x)} km run?",
                       f"I ran {plain(x)} km today. What is that in miles?"]),
              f"{plain(x)} km × 0.621371 ≈ {fixed(mi, 2)} miles.")]
    if r.random() < 0.7:
        turns.append((f"I finished in {mins} minutes. What was my pace per mile?",
                      f"{mins} minutes ÷ {fixed(mi, 2)} miles ≈ {ps // 60}:{ps % 60:02d} per mile."))
    if r.random() < 0.25:
        turns.append(pick(r, THANKS))
    return turns


def c_oven(r):
    c = pick(r, [140, 150, 160, 170, 175, 180, 190, 200, 210, 220, 230, 240])
    f = Decimal(c) * 9 / 5 + 32
    mins = r.randint(15, 70)
    extra = pick(r, [5, 10, 15])
    turns = [(f"My oven only shows Fahrenheit. The recipe says {c} °C. What should I set?",
              f"{c} × 9/5 + 32 = {plain(f)} °F.")]
    if r.random() < 0.6:
        start = 17 * 60 + r.randint(0, 5) * 5
        turns.append((f"It bakes for {mins} minutes plus {extra} minutes to rest. If I start at "
                      f"{hhmm(start)}, when is it ready?",
                      f"{mins} + {extra} = {mins + extra} minutes after {hhmm(start)}, "
                      f"so it is ready at {hhmm(start + mins + extra)}."))
    return turns


def c_rice(r):
    g, n = pick(r, [75, 80, 90, 100]), r.randint(3, 12)
    total = g * n
    bag = pick(r, [Decimal("0.5"), Decimal(1), Decimal(2)])
    turns = [(f"I'm cooking rice for {n} people and the packet says {g} g per person. "
              f"How much rice do I need?", f"{n} × {g} g = {total} g, which is {plain(Decimal(total) / 1000)} kg.")]
    if r.random() < 0.7:
        cap = int(bag * 1000)
        if total <= cap:
            ans = f"Yes. {plain(bag)} kg is {cap} g, so you'll have {cap - total} g left over."
        else:
            ans = f"No. {plain(bag)} kg is only {cap} g; you are {total - cap} g short."
        turns.append((f"I have one {plain(bag)} kg bag. Is that enough?", ans))
    return turns


def c_trip(r):
    arrive = r.randint(7 * 12, 20 * 12) * 5
    drive, buffer = r.randint(15, 150), pick(r, [10, 15, 20, 30])
    leave = arrive - drive - buffer
    turns = [(f"I need to arrive by {hhmm(arrive)}. The drive takes {drive} minutes and I want "
              f"{buffer} minutes spare. When should I leave?",
              f"{drive} + {buffer} = {drive + buffer} minutes before {hhmm(arrive)} is {hhmm(leave)}.\n"
              f"Leave by {hhmm(leave)}.")]
    if r.random() < 0.6:
        x = pick(r, [10, 15, 20, 25])
        turns.append((f"What if traffic adds another {x} minutes?",
                      f"Then leave {x} minutes earlier, at {hhmm(leave - x)}."))
    if r.random() < 0.2:
        turns.append(pick(r, THANKS))
    return turns


def c_bill(r):
    n, bill, tip = r.randint(2, 8), r.randint(20, 400), pick(r, [10, 12, 15, 18, 20])
    tip_c = bill * tip                               # cents: bill dollars × tip% = cents
    total = bill * 100 + tip_c
    each = Decimal(total) / n
    shown = q(each, 0)
    turns = [(f"{n} of us are splitting a {money(bill * 100)} bill and want to leave a {tip}% tip. "
              f"How much does each person pay?",
              f"Tip: {tip}% of {money(bill * 100)} = {money(tip_c)}.\n"
              f"Total: {money(total)}.\nEach: {money(total)} ÷ {n} {approx(each, shown)} {money(shown)}.")]
    return turns


def c_study(r):
    while True:
        h, k, b = r.randint(2, 6), r.randint(2, 5), pick(r, [5, 10, 15])
        free = h * 60 - (k - 1) * b
        if free % k == 0:
            break
    turns = [(f"I have {h} hours to study {k} subjects, with a {b}-minute break between "
              f"subjects. How long can I spend on each?",
              f"{h} hours = {h * 60} minutes. Breaks: {k - 1} × {b} = {(k - 1) * b} minutes.\n"
              f"({h * 60} - {(k - 1) * b}) ÷ {k} = {free // k} minutes per subject.")]
    if r.random() < 0.4:
        turns.append(pick(r, THANKS))
    return turns


CHAT_KINDS = [(c_arith, 3), (c_units, 2), (c_oven, 2), (c_rice, 2), (c_trip, 2), (c_bill, 2),
              (c_study, 2)]


def s_paint(r):
    w, h = Decimal(r.randint(20, 80)) / 10, Decimal(r.randint(22, 30)) / 10
    coats, cov = r.randint(1, 3), pick(r, [8, 10, 12])
    area = w * h
    litres = area * coats / cov
    tins = math.ceil(litres / Decimal("2.5"))
    turns = [(f"How much paint do I need for a wall {plain(w)} m wide and {plain(h)} m high, "
              f"{coats} coat{'s' if coats > 1 else ''}, if a litre covers {cov} m²?",
              f"Area: {plain(w)} × {plain(h)} = {plain(area)} m².\n"
              f"With {coats} coat{'s' if coats > 1 else ''}: {plain(area * coats)} m².\n"
              f"Paint: {plain(area * coats)} ÷ {cov} ≈ {fixed(litres, 2)} L.")]
    if r.random() < 0.6:
        price = r.randint(12, 45)
        turns.append((f"Paint comes in 2.5 L tins at ${price} each. What will it cost?",
                      f"{fixed(litres, 2)} L needs {tins} tin{'s' if tins > 1 else ''} "
                      f"(rounding up). Cost: {tins} × ${price} = ${tins * price}."))
    return turns


def s_fuel(r):
    d, cons = r.randint(40, 900), Decimal(r.randint(45, 110)) / 10
    price = Decimal(r.randint(140, 210)) / 100
    fuel = d * cons / 100
    cost = fuel * price
    turns = [(f"A trip of {d} km in a car that uses {plain(cons)} L/100 km, with fuel at "
              f"${fixed(price, 2)} per litre. What does the fuel cost?",
              f"Fuel: {d} × {plain(cons)} ÷ 100 = {plain(fuel)} L.\n"
              f"Cost: {plain(fuel)} × ${fixed(price, 2)} ≈ ${fixed(cost, 2)}.")]
    if r.random() < 0.5:
        n = r.randint(2, 5)
        turns.append((f"We are {n} people sharing it equally. How much each?",
                      f"${fixed(cost, 2)} ÷ {n} ≈ ${fixed(cost / n, 2)} each."))
    return turns


def s_scale(r):
    base, want = pick(r, [2, 4, 6]), pick(r, [3, 5, 8, 10, 12])
    flour, milk, sugar = r.randint(10, 50) * 10, r.randint(10, 60) * 10, r.randint(2, 20) * 5
    f = Decimal(want) / base
    lines = [f"Factor: {want} ÷ {base} = {plain(q(f, 3))}{'' if f == q(f, 3) else '…'}."]
    for what, amt, unit in (("flour", flour, "g"), ("milk", milk, "ml"), ("sugar", sugar, "g")):
        lines.append(f"{what.capitalize()}: {amt} × {want}/{base} ≈ {fixed(amt * f, 0)} {unit}.")
    turns = [(f"My pancake recipe for {base} uses {flour} g flour, {milk} ml milk and {sugar} g "
              f"sugar. How much of each for {want} people?", "\n".join(lines))]
    return turns


def s_tiles(r):
    L, W = Decimal(r.randint(15, 60)) / 10, Decimal(r.randint(15, 45)) / 10
    side = pick(r, [20, 30, 40, 50, 60])
    along, across = math.ceil(L * 100 / side), math.ceil(W * 100 / side)
    tiles = along * across
    spare = math.ceil(Decimal(tiles) * Decimal("1.1"))
    turns = [(f"How many {side} cm square tiles cover a floor {plain(L)} m by {plain(W)} m?",
              f"Along: {plain(L * 100)} ÷ {side} → {along} tiles (rounding up).\n"
              f"Across: {plain(W * 100)} ÷ {side} → {across} tiles.\n"
              f"Total: {along} × {across} = {tiles} tiles.")]
    if r.random() < 0.6:
        turns.append(("Should I buy extra for cuts and breakage?",
                      f"Adding 10% is common: {tiles} × 1.1 = {plain(Decimal(tiles) * Decimal('1.1'))}, "
                      f"so buy {spare}."))
    return turns


def s_reading(r):
    pages, days = r.randint(120, 900), pick(r, [7, 10, 14, 21, 30])
    per = math.ceil(pages / days)
    turns = [(f"I want to finish a {pages}-page book in {days} days. How many pages a day?",
              f"{pages} ÷ {days} ≈ {fixed(Decimal(pages) / days, 1)}, so {per} pages a day.")]
    if r.random() < 0.6:
        rate = pick(r, [20, 25, 30, 40, 50])
        m = Decimal(per) * 60 / rate
        turns.append((f"I read about {rate} pages an hour. How long is that each day?",
                      f"{per} ÷ {rate} hours × 60 ≈ {fixed(m, 0)} minutes a day."))
    return turns


SHAREGPT_KINDS = [(s_paint, 1), (s_fuel, 1), (s_scale, 1), (s_tiles, 1), (s_reading, 1)]


def conversation(r: random.Random, kinds) -> tuple[str | None, list[tuple[str, str]]]:
    fns = [f for f, w in kinds for _ in range(w)]
    system = pick(r, SYSTEM_PROMPTS) if r.random() < 0.35 else None
    return system, pick(r, fns)(r)


def as_messages(system, turns) -> list[dict]:
    msgs = [{"role": "system", "content": system}] if system else []
    for u, a in turns:
        msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    return msgs


def as_sharegpt(messages: list[dict]) -> list[dict]:
    who = {"system": "system", "user": "human", "assistant": "gpt"}
    return [{"from": who[m["role"]], "value": m["content"]} for m in messages]


def unique_conversations(r, kinds, n, seen) -> list[Row]:
    rows = []
    while len(rows) < n:
        msgs = as_messages(*conversation(r, kinds))
        key = doc_key({"messages": msgs})
        if key in seen:
            continue
        seen.add(key)
        rows.append(Row({"messages": msgs}))
    return rows


def build_chat(seen: set) -> list[Row]:
    r = random.Random(f"{SEED}:chat")
    clean = unique_conversations(r, CHAT_KINDS, 117, seen)
    rows = list(clean)
    # Multi-turn originals make the duplicates more telling than a one-liner would.
    pool = [x for x in clean if len(x.obj["messages"]) >= 4]
    for orig in r.sample(pool, 3):
        dup = Row({"messages": [dict(m) for m in orig.obj["messages"]]},
                  "exact_duplicate_of", {"variant": "same_messages_new_id"}, orig)
        place_after(r, rows, orig, dup, 1)
    return rows


def build_sharegpt(seen: set, chat_rows: list[Row]) -> list[Row]:
    r = random.Random(f"{SEED}:sharegpt")
    rows = unique_conversations(r, SHAREGPT_KINDS, 58, seen)
    # Two conversations also collected in chat.jsonl, one with a system turn and one
    # without, so dedup has to see through the from/value vs role/content mapping.
    clean_chat = [x for x in chat_rows if x.kind is None]
    with_sys = [x for x in clean_chat if x.obj["messages"][0]["role"] == "system"]
    without = [x for x in clean_chat if x.obj["messages"][0]["role"] != "system"]
    for orig in (pick(r, with_sys), pick(r, without)):
        dup = Row({"messages": [dict(m) for m in orig.obj["messages"]]},
                  "exact_duplicate_of", {"variant": "cross_source_sharegpt_mapping"}, orig)
        place_anywhere(r, rows, dup, 1)
    return rows


# ----------------------------------------------------------------------------------------
# selfinstruct.jsonl.gz: tasks with 1-3 instances each.

def sentence(r):
    n = r.randint(2, 9)
    return (f"{pick(r, NAMES)} carried {n} {pick(r, COUNTABLES)} to {pick(r, PLACES)} "
            f"before {pick(r, ['breakfast', 'lunch', 'dinner', 'sunset', 'the rain started'])}.")


def t_c_to_f(r):
    c = r.randint(-30, 45)
    return f"{c} °C", f"{plain(Decimal(c) * 9 / 5 + 32)} °F"


def t_f_to_c(r):
    f = r.randint(-10, 110)
    return f"{f} °F", f"{fixed((Decimal(f) - 32) * 5 / 9, 1)} °C"


def t_sort_asc(r):
    xs = r.sample(range(1, 200), r.randint(4, 8))
    return ", ".join(map(str, xs)), ", ".join(map(str, sorted(xs)))


def t_sort_desc(r):
    xs = r.sample(range(1, 200), r.randint(4, 8))
    return ", ".join(map(str, xs)), ", ".join(map(str, sorted(xs, reverse=True)))


def t_total_cost(r):
    items = r.sample(GOODS, r.randint(2, 3))
    parts, total = [], 0
    for sing, plur, lo, hi in items:
        n = r.randint(1, 5)
        c = r.randint(lo // 25, hi // 25) * 25
        parts.append(f"{n} {sing if n == 1 else plur} at {money(c)} each")
        total += n * c
    return "; ".join(parts), money(total)


def t_round_ten(r):
    x = r.randint(11, 9999)
    return str(x), str(int(q(Decimal(x) / 10, 0)) * 10)


def t_round_hundred(r):
    x = r.randint(101, 99999)
    return str(x), str(int(q(Decimal(x) / 100, 0)) * 100)


def t_largest(r):
    xs = r.sample(range(-50, 500), r.randint(4, 7))
    return " ".join(map(str, xs)), str(max(xs))


def t_smallest(r):
    xs = r.sample(range(-50, 500), r.randint(4, 7))
    return " ".join(map(str, xs)), str(min(xs))


def t_count_words(r):
    s = sentence(r)
    return s, str(len(s.split()))


def t_minutes(r):
    m = r.randint(61, 600)
    return f"{m} minutes", f"{m // 60} h {m % 60} min"


def t_area(r):
    L, W = Decimal(r.randint(10, 120)) / 10, Decimal(r.randint(10, 80)) / 10
    return f"length {plain(L)} m, width {plain(W)} m", f"{plain(L * W)} m²"


def t_pct_change(r):
    old = r.randint(20, 400)
    new = old + r.randint(-old // 2, old)
    ch = (Decimal(new) - old) * 100 / old
    return f"from {old} to {new}", f"{'+' if ch >= 0 else ''}{fixed(ch, 1)}%"


def t_12h(r):
    h, m = r.randint(0, 23), r.randint(0, 11) * 5
    suffix = "a.m." if h < 12 else "p.m."
    return f"{h:02d}:{m:02d}", f"{(h % 12) or 12}:{m:02d} {suffix}"


def t_median(r):
    xs = [r.randint(1, 99) for _ in range(pick(r, [5, 6, 7]))]
    s = sorted(xs)
    mid = len(s) // 2
    med = Decimal(s[mid]) if len(s) % 2 else Decimal(s[mid - 1] + s[mid]) / 2
    return ", ".join(map(str, xs)), plain(med)


def t_fraction(r):
    den = pick(r, [2, 4, 5, 8, 10, 20, 25])
    num = r.randint(1, den - 1)
    return f"{num}/{den}", f"{plain(Decimal(num) / den)} ({plain(Decimal(num) * 100 / den)}%)"


def t_sum(r):
    xs = [r.randint(1, 250) for _ in range(r.randint(3, 6))]
    return " + ".join(map(str, xs)), str(sum(xs))


def t_evens(r):
    xs = r.sample(range(1, 100), r.randint(5, 9))
    ev = [x for x in xs if x % 2 == 0]
    return ", ".join(map(str, xs)), ", ".join(map(str, ev)) if ev else "none"


def t_km_to_mi(r):
    km = Decimal(r.randint(1, 500)) / pick(r, [1, 10])
    return f"{plain(km)} km", f"{fixed(km * KM_TO_MI, 2)} miles"


def t_weeks(r):
    w = r.randint(2, 60)
    return f"{w} weeks", f"{w * 7} days"


def t_better_buy(r):
    g1, g2 = r.sample([250, 400, 500, 750, 1000], 2)
    c1, c2 = r.randint(10, 60) * 10, r.randint(10, 60) * 10
    u1, u2 = Decimal(c1) * 100 / g1, Decimal(c2) * 100 / g2
    if u1 == u2:
        verdict = "Both cost the same per 100 g."
    else:
        best = "A" if u1 < u2 else "B"
        verdict = f"Pack {best} is the better buy."
    return (f"Pack A: {g1} g for {money(c1)}. Pack B: {g2} g for {money(c2)}.",
            f"A: {money(q(u1, 0))} per 100 g; B: {money(q(u2, 0))} per 100 g. {verdict}")


# Each task type has several phrasings; a task is one (type, phrasing) pair, so the 50
# instructions are distinct strings by construction.
TASK_TYPES = [
    (t_c_to_f, ["Convert the temperature from Celsius to Fahrenheit.",
                "Give this Celsius temperature in Fahrenheit.",
                "Convert the temperature to °F."]),
    (t_f_to_c, ["Convert the temperature from Fahrenheit to Celsius, to one decimal place.",
                "Express this Fahrenheit reading in Celsius (one decimal)."]),
    (t_sort_asc, ["Sort the numbers in ascending order.", "Put these numbers from smallest to largest.",
                  "Arrange the list in increasing order."]),
    (t_sort_desc, ["Sort the numbers in descending order.", "Order the numbers from largest to smallest."]),
    (t_total_cost, ["Compute the total cost of the shopping list.",
                    "Add up what this shopping costs.", "How much does everything on the list cost?"]),
    (t_round_ten, ["Round the number to the nearest ten.", "Round to the nearest multiple of 10.",
                   "What is this number rounded to the nearest 10?"]),
    (t_round_hundred, ["Round the number to the nearest hundred.", "Give the number rounded to hundreds."]),
    (t_largest, ["Find the largest number.", "Which number is the biggest?",
                 "Return the maximum of the numbers."]),
    (t_smallest, ["Find the smallest number.", "Which of these numbers is the lowest?",
                  "Return the minimum value in the list."]),
    (t_count_words, ["Count the words in the sentence.", "How many words does this sentence have?",
                     "Give the word count of the sentence."]),
    (t_minutes, ["Convert the minutes to hours and minutes.", "Write this duration in hours and minutes.",
                 "Express the number of minutes as hours plus minutes."]),
    (t_area, ["Compute the area of the rectangle.", "Find the area of a rectangle with these sides.",
              "How many square metres does this rectangle cover?"]),
    (t_pct_change, ["Compute the percentage change.", "By what percentage did the value change?"]),
    (t_12h, ["Convert the 24-hour time to 12-hour time.", "Write this time using a.m. or p.m.",
             "Rewrite the clock time in 12-hour format."]),
    (t_median, ["Find the median of the numbers.", "What is the median of this list?",
                "Sort the numbers and report the middle value."]),
    (t_sum, ["Add up the numbers.", "Compute the sum.", "What do these numbers add up to?"]),
    (t_evens, ["List the even numbers.", "Keep only the even numbers from the list."]),
    (t_km_to_mi, ["Convert the distance to miles.", "How many miles is this distance?",
                  "Express the distance in miles, to two decimal places."]),
    (t_weeks, ["How many days are in the given number of weeks?", "Convert the weeks to days."]),
    (t_better_buy, ["Which pack is the better buy?", "Compare the price per 100 g of the two packs."]),
    (t_fraction, ["Convert the fraction to a decimal and a percentage.",
                  "Write the fraction as a decimal, then as a percent."]),
]


def build_selfinstruct(seen: set) -> list[Row]:
    r = random.Random(f"{SEED}:selfinstruct")
    tasks = [(fn, text) for fn, texts in TASK_TYPES for text in texts]
    assert len(tasks) >= 50
    tasks = r.sample(tasks, 50)
    rows = []
    for fn, text in tasks:
        want = r.randint(1, 3)
        instances = []
        while len(instances) < want:
            inp, out = fn(r)
            key = doc_key(alpaca(text, inp, out))
            if key in seen:
                continue
            seen.add(key)
            instances.append({"input": inp, "output": out})
        rows.append(Row({"instruction": text, "instances": instances}))
    return rows


# ----------------------------------------------------------------------------------------
# notes/*.txt: one plain-text document per file.

def n_rain(r):
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    mm = [r.randint(0, 30) if r.random() < 0.6 else 0 for _ in days]
    log = ", ".join(f"{d} {m} mm" for d, m in zip(days, mm))
    wet = sum(1 for m in mm if m)
    return "rain-gauge-week", (
        f"Rain gauge, week {r.randint(1, 52)}. Readings: {log}. Total {sum(mm)} mm over {wet} wet "
        f"day{'s' if wet != 1 else ''}; the average per day is {fixed(Decimal(sum(mm)) / 7, 1)} mm. "
        f"The funnel was cleared of leaves on {pick(r, days)}.\n")


def n_garden(r):
    L, W = Decimal(r.randint(12, 40)) / 10, Decimal(r.randint(6, 15)) / 10
    depth = pick(r, [15, 20, 25, 30])
    vol = L * W * depth / 100
    return "raised-bed", (
        f"Raised bed by the {pick(r, ['fence', 'shed', 'hedge', 'south wall'])}: {plain(L)} m by "
        f"{plain(W)} m, filled {depth} cm deep. Soil needed: {plain(L)} × {plain(W)} × "
        f"{plain(Decimal(depth) / 100)} = {plain(vol)} m³, or about {fixed(vol * 1000, 0)} litres. "
        f"Bags hold 50 L, so {math.ceil(vol * 1000 / 50)} bags.\n")


def n_shadow(r):
    stick, sshadow = Decimal(1), Decimal(r.randint(8, 25)) / 10
    tshadow = Decimal(r.randint(40, 300)) / 10
    h = tshadow * stick / sshadow
    return "tree-height", (
        f"Measured the {pick(r, ['oak', 'birch', 'pine', 'walnut', 'lime'])} by its shadow. A 1 m "
        f"stick cast a {plain(sshadow)} m shadow while the tree cast {plain(tshadow)} m. Same ratio, "
        f"so the tree is about {plain(tshadow)} ÷ {plain(sshadow)} {approx(h, q(h, 1))} "
        f"{plain(q(h, 1))} m tall.\n")


def n_commute(r):
    km = [Decimal(r.randint(30, 180)) / 10 for _ in range(5)]
    tot = sum(km)
    return "bike-commute", (
        f"Bike commute log: {', '.join(plain(k) for k in km)} km this week. Total {plain(tot)} km, "
        f"roughly {fixed(tot * KM_TO_MI, 1)} miles. Longest ride {plain(max(km))} km, when the "
        f"{pick(r, ['bridge', 'river path', 'park road', 'tunnel'])} was closed.\n")


def n_pancakes(r):
    base, want = 4, pick(r, [2, 6, 8, 10])
    f = Decimal(want) / base
    flour, eggs, milk = 200, 2, 300
    return "pancakes-scaled", (
        f"Pancakes, scaled from {base} to {want} servings (× {plain(f)}): flour {flour} g → "
        f"{plain(flour * f)} g, eggs {eggs} → {plain(eggs * f)}, milk {milk} ml → {plain(milk * f)} ml. "
        f"A pinch of salt stays a pinch.\n")


def n_bread(r):
    flour = r.randint(4, 10) * 100
    hyd = pick(r, [65, 68, 70, 72, 75])
    return "bread-hydration", (
        f"Bread at {hyd}% hydration: water = flour × {hyd}/100. With {flour} g flour that is "
        f"{plain(Decimal(flour) * hyd / 100)} g water, plus {plain(Decimal(flour) * 2 / 100)} g salt "
        f"(2%) and {plain(Decimal(flour) / 100)} g yeast (1%).\n")


def n_lemonade(r):
    parts = (1, pick(r, [3, 4, 5]), pick(r, [1, 2]))
    total = r.randint(2, 8)
    unit = Decimal(total * 1000) / sum(parts)
    return "lemonade-ratio", (
        f"Lemonade ratio {parts[0]}:{parts[1]}:{parts[2]} (lemon juice : water : syrup). For "
        f"{total} litres, one part is {total * 1000} ÷ {sum(parts)} {approx(unit, q(unit, 0))} "
        f"{fixed(unit, 0)} ml, so "
        f"{fixed(unit * parts[0], 0)} ml juice, {fixed(unit * parts[1], 0)} ml water and "
        f"{fixed(unit * parts[2], 0)} ml syrup.\n")


def n_spaced(r):
    first = pick(r, [1, 2])
    gaps = [first]
    for _ in range(4):
        gaps.append(gaps[-1] * 2 + pick(r, [0, 1]))
    day, days = 0, []
    for g in gaps:
        day += g
        days.append(day)
    return "spaced-repetition", (
        f"Study tip: review new material after {', '.join(map(str, gaps))} days, each gap about "
        f"double the last. Starting on day 0, the reviews fall on days {', '.join(map(str, days))}.\n")


def n_pomodoro(r):
    hours = pick(r, [2, 3, 4, 5])
    work, brk = pick(r, [25, 30, 45]), pick(r, [5, 10])
    n = hours * 60 // (work + brk)
    return "pomodoro-plan", (
        f"Study tip: in {hours} hours, blocks of {work} minutes work and {brk} minutes rest fit "
        f"{hours * 60} ÷ {work + brk} = {n} times, {n * work} minutes of focused work in all.\n")


def n_flashcards(r):
    cards, per = r.randint(60, 400), pick(r, [10, 15, 20, 25])
    return "flashcards", (
        f"Study tip: {cards} flashcards at {per} new cards a day takes {math.ceil(cards / per)} days "
        f"to see once. Shuffle the deck each morning and put missed cards back in the middle.\n")


NOTE_KINDS = [n_rain, n_garden, n_shadow, n_commute, n_pancakes, n_bread, n_lemonade,
              n_spaced, n_pomodoro, n_flashcards]


def special_notes(r) -> list[tuple[str, str]]:
    """The notes with non-ASCII text: accents, CJK and emoji."""
    cream = r.randint(2, 4) * 100
    cafe = ("cafe-recipe-accents",
            f"Crème fraîche for the café's gâteau: the recipe for 8 uses {cream} g; for 12 use "
            f"{plain(Decimal(cream) * 3 / 2)} g. Señora Muñoz scales the crème brûlée by the "
            f"same 3:2 ratio; the jalapeño salsa for the naïve-art opening does not scale.\n")
    lo, hi = r.randint(5, 12), r.randint(15, 24)
    cjk = ("temperature-log-cjk",
           f"温度记录：早上 {lo}°C，中午 {hi}°C，温差 {hi - lo}°C。\n"
           f"今日の最高気温は{hi}度、最低気温は{lo}度でした。\n"
           f"Temperature log: morning {lo} °C, noon {hi} °C, a swing of {hi - lo} °C.\n")
    mm = r.randint(3, 25)
    emoji = ("weather-emoji",
             f"🌧️ Rain {mm} mm overnight, ☀️ clear by ten. 🌡️ {r.randint(12, 22)} °C at noon. "
             f"Watering skipped 🪴: the shed roof gives about 2 L per mm, so the water butt "
             f"gained ≈ {mm * 2} L.\n")
    return [cafe, cjk, emoji]


def build_notes(seen: set) -> list[Row]:
    r = random.Random(f"{SEED}:notes")
    bodies: list[tuple[str, str]] = []
    slugs_used: dict[str, int] = {}
    texts = special_notes(r)
    while len(texts) < 22:
        slug, text = pick(r, NOTE_KINDS)(r)
        if all(norm(text) != norm(t) for _, t in texts):
            texts.append((slug, text))
    r.shuffle(texts)
    for slug, text in texts:
        key = doc_key({"text": text})
        assert key not in seen
        seen.add(key)
        slugs_used[slug] = slugs_used.get(slug, 0) + 1
        n = slugs_used[slug]
        bodies.append((slug if n == 1 else f"{slug}-{n}", text))

    rows = [Row({"slug": s, "text": t}) for s, t in bodies]
    # The empty, blank and copied notes go among the others; the copy must come after
    # its original in file-name order, which is the order a folder is read in.
    place_anywhere(r, rows, Row({"slug": "empty-draft", "text": ""}, "empty",
                                {"what": "0 bytes"}), 1)
    place_anywhere(r, rows, Row({"slug": "blank-page", "text": " \n\t\n   \n"}, "empty",
                                {"what": "whitespace only"}), 1)
    orig = pick(r, rows[: len(rows) // 2])
    assert orig.kind is None
    place_after(r, rows, orig, Row({"slug": orig.obj["slug"] + "-copy", "text": orig.obj["text"]},
                                   "exact_duplicate_of", {"variant": "verbatim"}, orig))
    return rows


# ----------------------------------------------------------------------------------------
# Deflate with fixed Huffman codes and a simple greedy LZ77, written here so the .gz
# bytes do not depend on which zlib (or zlib-ng) build Python happens to link: zlib's
# output is only stable for one version, and the sha256 test must pass everywhere.

_LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83,
             99, 115, 131, 163, 195, 227, 258]
_LEN_EXTRA = [0] * 8 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [0]
_DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
              1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
_DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11,
               12, 12, 13, 13]


class _Bits:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, nbits: int) -> None:          # LSB first, as deflate wants
        self.acc |= value << self.n
        self.n += nbits
        while self.n >= 8:
            self.out.append(self.acc & 0xFF)
            self.acc >>= 8
            self.n -= 8

    def huff(self, code: int, nbits: int) -> None:          # Huffman codes go MSB first
        self.put(int(f"{code:0{nbits}b}"[::-1], 2), nbits)

    def flush(self) -> bytes:
        if self.n:
            self.out.append(self.acc & 0xFF)
        return bytes(self.out)


def _lit(bits: _Bits, sym: int) -> None:
    if sym < 144:
        bits.huff(0x30 + sym, 8)
    elif sym < 256:
        bits.huff(0x190 + sym - 144, 9)
    elif sym < 280:
        bits.huff(sym - 256, 7)
    else:
        bits.huff(0xC0 + sym - 280, 8)


def deflate_fixed(data: bytes) -> bytes:
    bits = _Bits()
    bits.put(1, 1)          # BFINAL
    bits.put(1, 2)          # BTYPE = 01, fixed Huffman
    chains: dict[bytes, list[int]] = {}
    i, n = 0, len(data)
    while i < n:
        best_len, best_dist = 0, 0
        if i + 3 <= n:
            for j in reversed(chains.get(data[i:i + 3], [])[-64:]):
                if i - j > 32768:
                    break
                k = 3
                while k < 258 and i + k < n and data[j + k] == data[i + k]:
                    k += 1
                if k > best_len:
                    best_len, best_dist = k, i - j
                    if k == 258:
                        break
        step = best_len if best_len >= 3 else 1
        for p in range(i, i + step):
            if p + 3 <= n:
                chains.setdefault(data[p:p + 3], []).append(p)
        if best_len >= 3:
            li = max(x for x in range(len(_LEN_BASE)) if _LEN_BASE[x] <= best_len)
            _lit(bits, 257 + li)
            bits.put(best_len - _LEN_BASE[li], _LEN_EXTRA[li])
            di = max(x for x in range(len(_DIST_BASE)) if _DIST_BASE[x] <= best_dist)
            bits.huff(di, 5)
            bits.put(best_dist - _DIST_BASE[di], _DIST_EXTRA[di])
        else:
            _lit(bits, data[i])
        i += step
    _lit(bits, 256)         # end of block
    return bits.flush()


def gzip_bytes(data: bytes) -> bytes:
    # ID1 ID2 CM=deflate FLG=0 (no name, no comment) MTIME=0 XFL=0 OS=255 (unknown)
    header = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x00\xff"
    trailer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return header + deflate_fixed(data) + trailer


# ----------------------------------------------------------------------------------------
# Document keys for the self-checks: what a source's record becomes as a document.

def doc_key(rec: dict) -> tuple:
    if "messages" in rec:
        return ("chat",) + tuple((m["role"], norm(m["content"])) for m in rec["messages"])
    if "text" in rec:
        return ("text", norm(rec["text"]))
    if "context" in rec:
        return ("instr", norm(rec["instruction"]), norm(rec["context"]), norm(rec["response"]))
    return ("instr", norm(rec["instruction"]), norm(rec["input"]), norm(rec.get("output", "")))


def documents(file: str, rows: list[Row]):
    """(row, instance index or None, key) for every record that should become a document."""
    for row in rows:
        if row.kind in ("malformed", "missing_field", "empty"):
            continue
        if file == "selfinstruct.jsonl.gz":
            for k, inst in enumerate(row.obj["instances"]):
                yield row, k, doc_key(alpaca(row.obj["instruction"], inst["input"], inst["output"]))
        elif file == "notes":
            yield row, None, doc_key({"text": row.obj["text"]})
        else:
            yield row, None, doc_key(row.obj)


def self_check(files: dict[str, list[Row]]) -> None:
    first: dict[tuple, Row] = {}
    for name in SOURCE_ORDER:
        for row, _, key in documents(name, files[name]):
            if key not in first:
                assert row.kind != "exact_duplicate_of", f"{name}:{row.num} duplicates nothing"
                first[key] = row
            else:
                assert row.kind == "exact_duplicate_of", \
                    f"{name}:{row.num} repeats {first[key].file}:{first[key].num} unplanned"
                assert row.dup_of is first[key], f"{name}:{row.num} points at a later copy"
    for name in SOURCE_ORDER:
        for row in files[name]:
            text = json.dumps(row.obj, ensure_ascii=False) if not isinstance(row.obj, str) else row.obj
            assert (AI_PHRASE.lower() in text.lower()) == (row.kind == "ai_phrase"), (name, row.num)
    for row in files["arith.jsonl"]:
        if isinstance(row.obj, dict) and row.kind not in ("missing_field", "empty"):
            size = sum(len(v) for v in row.obj.values())
            assert (size < 10) == (row.kind == "short"), (row.num, size)
            assert row.kind == "short" or size >= 40, (row.num, size)


# ----------------------------------------------------------------------------------------
# Serialisation and layout.

def render(r_files: dict[str, list[Row]]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}

    rows = r_files["arith.jsonl"]
    lines = [row.obj if isinstance(row.obj, str) else json.dumps(row.obj, ensure_ascii=False)
             for row in rows]
    out["arith.jsonl"] = ("\n".join(lines) + "\n").encode()

    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(["instruction", "context", "response", "category"])
    for row in r_files["units.csv"]:
        o = row.obj
        w.writerow([o["instruction"], o["context"], o["response"], o["category"]])
    out["units.csv"] = buf.getvalue().encode()

    lines = [json.dumps({"id": f"chat-{row.num:04d}", "messages": row.obj["messages"]},
                        ensure_ascii=False) for row in r_files["chat.jsonl"]]
    out["chat.jsonl"] = ("\n".join(lines) + "\n").encode()

    arr = [{"id": f"sg-{row.num:04d}", "conversations": as_sharegpt(row.obj["messages"])}
           for row in r_files["sharegpt.json"]]
    out["sharegpt.json"] = (json.dumps(arr, ensure_ascii=False, indent=1) + "\n").encode()

    lines = [json.dumps({"id": f"task-{row.num:03d}", "instruction": row.obj["instruction"],
                         "instances": row.obj["instances"]}, ensure_ascii=False)
             for row in r_files["selfinstruct.jsonl.gz"]]
    out["selfinstruct.jsonl.gz"] = gzip_bytes(("\n".join(lines) + "\n").encode())

    for row in r_files["notes"]:
        out[row.file] = row.obj["text"].encode()
    return out


EVAL_FRESH = 20
EVAL_COPIED = 4
NGRAM = 13


def ngrams(text: str, n: int = NGRAM) -> set:
    """Word n-grams as curate's decontamination sees them: runs of letters or digits,
    lowercased (punctuation, case and spacing do not matter)."""
    words = re.findall(r"[^\W_]+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def doc_text(obj: dict) -> str:
    """The text a training or eval document holds: prompt, then answer."""
    if "question" in obj:
        return obj["question"] + "\n\n" + obj["answer"]
    user = obj["instruction"] + ("\n\n" + obj["input"] if obj.get("input") else "")
    return user + "\n\n" + obj["output"]


def build_eval(seen: set, arith: list[Row]) -> tuple[list[dict], list[dict]]:
    """A small held-out test set in GSM8K's shape (`question`, `answer`) for the
    decontamination stage: fresh problems from the arithmetic templates, plus a few
    copied from arith.jsonl (the planted contamination). Every fresh item is checked to
    share no 13-word window with any training row, so the copies are the only overlap."""
    r = random.Random(f"{SEED}:eval")
    train_grams: set = set()
    for row in arith:
        if isinstance(row.obj, dict) and row.kind is None:
            train_grams |= ngrams(doc_text(row.obj))
    fresh = []
    while len(fresh) < EVAL_FRESH:
        ins, inp, out = pick(r, [f for f, w in ARITH_KINDS for _ in range(w)])(r)
        obj = alpaca(ins, inp, out)
        key = doc_key(obj)
        grams = ngrams(doc_text(obj))
        if key in seen or len(grams) == 0 or grams & train_grams:
            continue
        seen.add(key)
        fresh.append(obj)
    # Copies: clean rows long enough to hold a 13-word window, chosen by the seed.
    pool = [row for row in arith[5:] if row.kind is None and row.dup_of is None
            and isinstance(row.obj, dict) and ngrams(doc_text(row.obj))
            and not any(o.dup_of is row for o in arith)]
    copies = r.sample(pool, EVAL_COPIED)
    items = [(obj, None) for obj in fresh] + [(row.obj, row) for row in copies]
    r.shuffle(items)
    rows, plants = [], []
    for k, (obj, src) in enumerate(items, 1):
        question = obj["instruction"] + ("\n\n" + obj["input"] if obj["input"] else "")
        rows.append({"id": f"test-{k:03d}", "question": question, "answer": obj["output"]})
        if src is not None:
            plants.append({"row": k, "kind": "copied_into_training",
                           "of": {"file": "arith.jsonl", "row": src.num}})
    # The copies are the only overlap with any training row.
    for k, item in enumerate(rows, 1):
        hits = [row.num for row in arith if isinstance(row.obj, dict) and row.kind is None
                and ngrams(doc_text(item)) & ngrams(doc_text(row.obj))]
        want = [p["of"]["row"] for p in plants if p["row"] == k]
        assert hits == want, (k, hits, want)
    return rows, plants


def planted_json(files: dict[str, list[Row]], eval_plants: list[dict]) -> bytes:
    units = {"arith.jsonl": "line", "units.csv": "record", "chat.jsonl": "line",
             "sharegpt.json": "element", "selfinstruct.jsonl.gz": "line", "notes": "file"}
    doc = {
        "generator": "tools/make_sample.py",
        "seed": SEED,
        "about": ("Items planted in the sample sources. 'row' is 1-based: the physical line "
                  "for JSONL, the data record after the header for CSV, the element for a "
                  "JSON array; notes are named by file. A duplicate's 'of' is the first "
                  "occurrence in source order " + ", ".join(SOURCE_ORDER) + ". Duplicates "
                  "are equal after Unicode NFC, CRLF/CR to LF and trimming surrounding "
                  "whitespace; 'variant' says how the bytes differ."),
        "files": {},
        "eval": {
            "file": "eval/arith_test.jsonl",
            "records": EVAL_FRESH + EVAL_COPIED,
            "about": ("A held-out test set (question, answer) for decontamination: fresh "
                      "problems plus items copied from arith.jsonl, which a recipe that "
                      "declares this file `role = \"eval\"` must find in training."),
            "planted": eval_plants,
        },
    }
    for name in SOURCE_ORDER:
        rows = files[name]
        planted = []
        for row in rows:
            if row.kind is None:
                continue
            item: dict = {"file": row.file} if name == "notes" else {"row": row.num}
            item["kind"] = row.kind
            if row.dup_of is not None:
                o = row.dup_of
                item["of"] = {"file": o.file} if o.file.startswith("notes/") else \
                    {"file": o.file, "row": o.num}
            item.update(row.detail)
            planted.append(item)
        entry = {"unit": units[name], "records": len(rows)}
        if name == "selfinstruct.jsonl.gz":
            entry["instances"] = sum(len(x.obj["instances"]) for x in rows)
        counts: dict[str, int] = {}
        for p in planted:
            counts[p["kind"]] = counts.get(p["kind"], 0) + 1
        entry["counts"] = dict(sorted(counts.items()))
        entry["planted"] = planted
        doc["files"][name] = entry
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode()


def generate() -> tuple[dict[str, bytes], dict[str, list[Row]]]:
    seen: set = set()
    arith, cross_pool = build_arith(seen)
    files = {"arith.jsonl": arith}
    files["units.csv"] = build_units(seen, cross_pool)
    files["chat.jsonl"] = build_chat(seen)
    files["sharegpt.json"] = build_sharegpt(seen, files["chat.jsonl"])
    files["selfinstruct.jsonl.gz"] = build_selfinstruct(seen)
    files["notes"] = build_notes(seen)
    for name, rows in files.items():
        for i, row in enumerate(rows, 1):
            row.num = i
            row.file = f"notes/{i:02d}-{row.obj['slug']}.txt" if name == "notes" else name
    self_check(files)
    for name, (records, kinds) in EXPECTED.items():
        counts: dict[str, int] = {}
        for row in files[name]:
            if row.kind:
                counts[row.kind] = counts.get(row.kind, 0) + 1
        assert (len(files[name]), counts) == (records, kinds), (name, len(files[name]), counts)
    instances = sum(len(x.obj["instances"]) for x in files["selfinstruct.jsonl.gz"])
    assert instances == EXPECTED_INSTANCES, instances
    out = render(files)
    eval_rows, eval_plants = build_eval(seen, files["arith.jsonl"])
    out["eval/arith_test.jsonl"] = "".join(
        json.dumps(x, ensure_ascii=False) + "\n" for x in eval_rows).encode()
    out["PLANTED.json"] = planted_json(files, eval_plants)
    verify_rendered(out, files)
    assert sum(map(len, out.values())) < SIZE_BUDGET
    return out, files


def verify_rendered(out: dict[str, bytes], files: dict[str, list[Row]]) -> None:
    """Read the bytes back the way a consumer would, so layout bugs fail here, not in Rust."""
    import gzip
    lines = out["arith.jsonl"].decode().split("\n")[:-1]
    assert len(lines) == len(files["arith.jsonl"])
    for line, row in zip(lines, files["arith.jsonl"]):
        if row.kind == "malformed":
            continue
        assert json.loads(line) == row.obj
    recs = list(csv.reader(io.StringIO(out["units.csv"].decode(), newline="")))
    assert recs[0] == ["instruction", "context", "response", "category"]
    assert [r[:3] for r in recs[1:]] == [[x.obj["instruction"], x.obj["context"], x.obj["response"]]
                                          for x in files["units.csv"]]
    data = gzip.decompress(out["selfinstruct.jsonl.gz"])
    assert zlib.decompress(out["selfinstruct.jsonl.gz"][10:-8], -15) == data
    assert len(data.decode().split("\n")[:-1]) == len(files["selfinstruct.jsonl.gz"])
    arr = json.loads(out["sharegpt.json"])
    assert len(arr) == len(files["sharegpt.json"])
    for rel, blob in out.items():
        # CRs planted inside JSON strings are escaped, so none may appear raw.
        assert rel.endswith(".gz") or b"\r" not in blob, f"raw CR in {rel}"


# ----------------------------------------------------------------------------------------

def write_tree(out: dict[str, bytes], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for rel, blob in sorted(out.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
    # The generator owns notes/: a note left from an older version would silently become
    # an extra document, so remove it.
    for stale in sorted((root / "notes").glob("*.txt")):
        if f"notes/{stale.name}" not in out:
            stale.unlink()
            print(f"removed stale {stale.relative_to(root)}", file=sys.stderr)


def tree_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def check(out: dict[str, bytes], root: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        write_tree(out, fresh)
        want = tree_files(fresh)
        have = tree_files(root) if root.is_dir() else set()
        problems = []
        for rel in sorted(want | have):
            if rel not in have:
                problems.append(f"missing     {rel}")
            elif rel not in want:
                problems.append(f"unexpected  {rel}")
            elif (fresh / rel).read_bytes() != (root / rel).read_bytes():
                problems.append(f"differs     {rel}")
    if problems:
        print(f"{root} does not match what tools/make_sample.py generates:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        print("hint: run `python3 tools/make_sample.py` to regenerate", file=sys.stderr)
        return 1
    print(f"{root}: up to date ({len(want)} files)", file=sys.stderr)
    return 0


def summary(out: dict[str, bytes], files: dict[str, list[Row]]) -> str:
    lines = []
    for name in SOURCE_ORDER:
        rows = files[name]
        counts: dict[str, int] = {}
        for row in rows:
            if row.kind:
                counts[row.kind] = counts.get(row.kind, 0) + 1
        size = sum(len(b) for rel, b in out.items() if rel == name or rel.startswith(name + "/"))
        extra = ""
        if name == "selfinstruct.jsonl.gz":
            extra = f" ({sum(len(x.obj['instances']) for x in rows)} instances)"
        planted = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing planted"
        lines.append(f"  {name:<22} {len(rows):>4} records{extra}, {size:>6} bytes; {planted}")
    total = sum(len(b) for b in out.values())
    lines.append(f"  total {total} bytes in {len(out)} files")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="folder to write (default: recipes/data/ in this repository)")
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temporary folder and compare with --out; exit 1 "
                         "listing files that differ, are missing or are unexpected")
    args = ap.parse_args(argv)
    out, files = generate()
    if args.check:
        return check(out, args.out)
    write_tree(out, args.out)
    print(f"wrote {args.out}\n{summary(out, files)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
