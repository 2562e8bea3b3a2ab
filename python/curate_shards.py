"""Read curate's training shards with numpy alone.

    from curate_shards import packs
    for p in packs("out/my-build", split="train"):
        p["input_ids"], p["loss_mask"], p["position_ids"], p["sequence_lengths"]

Each pack is one flattened row: its documents' tokens one after another, the loss
mask (1 where a token is trained), and position ids that restart at 0 for every
document, so that a varlen attention kernel (or a block-diagonal mask) keeps
documents from attending to each other.

The shards are Megatron-LM indexed datasets (`.idx`: magic, version, dtype code,
counts, int32 lengths, int64 byte offsets, int64 document indices; `.bin`: the
values), plus `SPLIT.packs.npy` with the pack boundaries in sequence indices.
"""

from pathlib import Path

import numpy as np

_MAGIC = b"MMIDIDX\x00\x00"
_DTYPES = {1: np.uint8, 4: np.int32, 8: np.uint16}


class IndexedDataset:
    """One Megatron `.bin`/`.idx` pair, memory-mapped."""

    def __init__(self, prefix):
        idx = np.memmap(f"{prefix}.idx", dtype=np.uint8, mode="r")
        if bytes(idx[:9]) != _MAGIC:
            raise ValueError(f"{prefix}.idx is not a Megatron indexed dataset")
        version, = idx[9:17].view("<u8")
        if version != 1:
            raise ValueError(f"{prefix}.idx has version {version}, expected 1")
        self.dtype = np.dtype(_DTYPES[int(idx[17])]).newbyteorder("<")
        n, _docs = idx[18:34].view("<u8")
        off = 34
        self.lengths = idx[off:off + 4 * n].view("<i4")
        self.pointers = idx[off + 4 * n:off + 12 * n].view("<i8")
        self.bin = np.memmap(f"{prefix}.bin", dtype=self.dtype, mode="r")

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, i):
        start = self.pointers[i] // self.dtype.itemsize
        return self.bin[start:start + self.lengths[i]]


def packs(out_dir, split="train"):
    """Yield the packs of a split in order, as dicts of numpy arrays."""
    out = Path(out_dir)
    tokens = IndexedDataset(out / split)
    loss = IndexedDataset(out / f"{split}.loss")
    bounds = np.load(out / f"{split}.packs.npy", mmap_mode="r")
    if len(tokens) != len(loss) or not np.array_equal(tokens.lengths, loss.lengths):
        raise ValueError("token and loss shards disagree on sequence lengths")
    for p in range(len(bounds) - 1):
        seqs = range(int(bounds[p]), int(bounds[p + 1]))
        lengths = np.array([tokens.lengths[i] for i in seqs], dtype=np.int64)
        yield {
            "input_ids": np.concatenate([tokens[i] for i in seqs]).astype(np.int64),
            "loss_mask": np.concatenate([loss[i] for i in seqs]).astype(np.int64),
            "position_ids": np.concatenate([np.arange(n, dtype=np.int64) for n in lengths]),
            "sequence_lengths": lengths,
            "sequences": np.array(list(seqs), dtype=np.int64),
        }
