"""Training rows straight from curate's shards.

The shards are read memory-mapped with the numpy-only reader the repository ships
(python/curate_shards.py): nothing is tokenized again. A pack is the documents
between two boundaries of `SPLIT.packs.npy`; it becomes one flattened row of
token ids with position ids that restart at 0 for every document, the loss mask,
and the documents' lengths, from which attention is confined to each document.

Labels: a token is trained where the loss mask is 1, except the first token of
every document. The model predicts token t from tokens before t; the first token of
a document would be predicted from the previous document's last tokens, across a
boundary that attention does not cross, so it is never a target.
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import TrainerError

try:
    from curate_shards import IndexedDataset
except ImportError:  # a checkout: python/ sits beside trainer/
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
    from curate_shards import IndexedDataset

IGNORE = -100


def load_manifest(shards):
    path = Path(shards) / "manifest.json"
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise TrainerError(f"`{shards}` has no manifest.json: it holds no curate shards",
                           hint="run `curate RECIPE` with `[target] tokenizer` first") from None
    if m.get("format") != "curate-shards" or "shards" not in m:
        raise TrainerError(f"`{path}` is not a curate shard manifest")
    return m


def labels_for(input_ids, loss_mask, lengths):
    """Targets for one pack: the token where the loss mask is 1, IGNORE elsewhere and
    at every document's first token."""
    labels = np.where(np.asarray(loss_mask) == 1, np.asarray(input_ids, dtype=np.int64), IGNORE)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    labels[starts] = IGNORE
    return labels


@dataclass
class Pack:
    input_ids: np.ndarray     # int64 [n]
    labels: np.ndarray        # int64 [n], IGNORE where not trained
    position_ids: np.ndarray  # int64 [n], 0 at every document start
    lengths: np.ndarray       # int64 [documents]

    @property
    def tokens(self):
        return len(self.input_ids)

    @property
    def trained(self):
        return int((self.labels != IGNORE).sum())


class Split:
    """One split of the shards (`train` or `valid`), memory-mapped."""

    def __init__(self, shards, split):
        out = Path(shards)
        if not (out / f"{split}.idx").exists():
            raise TrainerError(f"`{out}` has no `{split}` split")
        self.tokens = IndexedDataset(out / split)
        self.loss = IndexedDataset(out / f"{split}.loss")
        self.bounds = np.load(out / f"{split}.packs.npy", mmap_mode="r")
        if len(self.tokens) != len(self.loss) or not np.array_equal(self.tokens.lengths, self.loss.lengths):
            raise TrainerError(f"`{out}`: the {split} token and loss shards disagree on sequence lengths")
        if len(self.bounds) < 2 or int(self.bounds[-1]) != len(self.tokens):
            raise TrainerError(f"`{out}/{split}.packs.npy` does not cover the {split} sequences")
        cum = np.concatenate([[0], np.cumsum(self.tokens.lengths, dtype=np.int64)])
        self.pack_tokens = cum[np.asarray(self.bounds[1:])] - cum[np.asarray(self.bounds[:-1])]

    def __len__(self):
        return len(self.bounds) - 1

    def _span(self, ds, s, e, n):
        """Sequences s..e of `ds` as one array: they are stored one after another in
        pack order, so this is a single slice of the memory map when it can be."""
        size = ds.dtype.itemsize
        start = int(ds.pointers[s]) // size
        if int(ds.pointers[e - 1]) // size + int(ds.lengths[e - 1]) == start + n:
            return np.asarray(ds.bin[start:start + n])
        return np.concatenate([ds[i] for i in range(s, e)])

    def pack(self, p):
        s, e = int(self.bounds[p]), int(self.bounds[p + 1])
        lengths = np.asarray(self.tokens.lengths[s:e], dtype=np.int64)
        n = int(lengths.sum())
        ids = self._span(self.tokens, s, e, n).astype(np.int64)
        mask = self._span(self.loss, s, e, n)
        pos = np.arange(n, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return Pack(ids, labels_for(ids, mask, lengths), pos, lengths)


def batch(packs, flat, pad_id):
    """Numpy arrays for one forward pass over `packs`.

    flat: every pack one after another in a single row (no padding), with
    `cu_seqlens` for a varlen attention kernel. Otherwise one row per pack, padded
    to the longest; `segments` numbers the documents of each row (padding is a
    segment of its own) so that a block-diagonal causal mask can be built.
    """
    if flat:
        lengths = np.concatenate([p.lengths for p in packs])
        seg = np.repeat(np.arange(len(lengths)), lengths)
        return {
            "input_ids": np.concatenate([p.input_ids for p in packs])[None],
            "labels": np.concatenate([p.labels for p in packs])[None],
            "position_ids": np.concatenate([p.position_ids for p in packs])[None],
            "segments": seg[None],
            "cu_seqlens": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32),
            "max_seqlen": int(lengths.max()),
            "tokens": int(lengths.sum()),
        }
    width = max(p.tokens for p in packs)
    b = len(packs)
    ids = np.full((b, width), pad_id, dtype=np.int64)
    labels = np.full((b, width), IGNORE, dtype=np.int64)
    pos = np.zeros((b, width), dtype=np.int64)
    seg = np.zeros((b, width), dtype=np.int64)
    for r, p in enumerate(packs):
        n = p.tokens
        ids[r, :n], labels[r, :n], pos[r, :n] = p.input_ids, p.labels, p.position_ids
        seg[r, :n] = np.repeat(np.arange(len(p.lengths)), p.lengths)
        seg[r, n:] = len(p.lengths)
        pos[r, n:] = np.arange(width - n)
    return {"input_ids": ids, "labels": labels, "position_ids": pos, "segments": seg,
            "tokens": int(sum(p.tokens for p in packs))}


class Order:
    """The packs of the train split in a seeded order, epoch after epoch: position k
    of the stream is pack `perm(k // n)[k % n]`. A step is a slice of the stream,
    so a resumed run sees exactly the packs it would have seen."""

    def __init__(self, n, seed):
        self.n, self.seed, self._cache = n, seed, {}

    def _perm(self, epoch):
        if epoch not in self._cache:
            if len(self._cache) > 1:
                self._cache.pop(min(self._cache))
            self._cache[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return self._cache[epoch]

    def take(self, start, count):
        return [int(self._perm(k // self.n)[k % self.n]) for k in range(start, start + count)]
