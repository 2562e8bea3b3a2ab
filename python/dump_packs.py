"""Print every pack of a curate output as JSON lines, read through curate_shards.

    python dump_packs.py OUT [SPLIT]

Used by the test suite to check the shards from outside curate: the test compares
what this prints with the documents it rendered itself. Each line:
{"pack": p, "sequences": [...], "input_ids": [...], "loss_mask": [...],
 "position_ids": [...], "sequence_lengths": [...]}.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from curate_shards import packs  # noqa: E402


def main():
    out = sys.argv[1]
    split = sys.argv[2] if len(sys.argv) > 2 else "train"
    for p, pack in enumerate(packs(out, split)):
        row = {"pack": p}
        row.update({k: v.tolist() for k, v in pack.items()})
        print(json.dumps(row))


if __name__ == "__main__":
    main()
