"""Check curate's token ids against the Python `tokenizers` package.

    python check_reference.py OUT EXPECTED.json TOKENIZER.json

EXPECTED.json maps a train sequence index to the text curate rendered for it. Each
text is encoded here with `tokenizers` (no added special tokens: the rendering writes
them) and compared with the ids curate wrote, read back through curate_shards.
Exits 1 listing the first differences.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from curate_shards import IndexedDataset  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def main():
    out, expected_path, tokenizer_path = sys.argv[1:4]
    expected = json.loads(Path(expected_path).read_text(encoding="utf-8"))
    tok = Tokenizer.from_file(tokenizer_path)
    shards = IndexedDataset(Path(out) / "train")
    bad = []
    for seq, text in sorted(expected.items(), key=lambda kv: int(kv[0])):
        want = tok.encode(text, add_special_tokens=False).ids
        got = shards[int(seq)].tolist()
        if got != want:
            bad.append((seq, text[:80], got[:20], want[:20]))
    if bad:
        for b in bad[:10]:
            print("sequence %s %r\n  curate: %s\n  python: %s" % b)
        print(f"{len(bad)} of {len(expected)} sequences differ")
        sys.exit(1)
    print(f"{len(expected)} sequences match")


if __name__ == "__main__":
    main()
