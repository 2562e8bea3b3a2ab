#!/usr/bin/env python3
"""GPU smoke run of curate's trainer: a Mistral-7B-shaped model with random weights,
QLoRA, on real shards, in under five minutes on one H100/H200-class GPU, offline.

    python trainer/gpu_smoke.py --shards recipes/out/quickstart

What it measures and prints:

1. attention: which kernel the trainer picks (flash-attention varlen when the
   flash-attn package is importable, SDPA with a block-diagonal mask otherwise), and,
   on a tiny model in bf16 with that kernel, the largest difference between a packed
   forward pass and each document's forward pass alone (it should be at bf16
   rounding level, about 1e-2, never the O(1) of cross-document attention);
2. the trainer itself (`python -m curate_train`, the code `curate train` runs) with
   `method = "qlora"`, a Mistral-7B-v0.1-shaped config (32 layers, hidden 4096, GQA 8
   heads, vocab 32000) built with random weights, LoRA rank 64 on all linear layers,
   gradient checkpointing, bf16, packs flattened to about `--tokens-per-step` tokens
   a micro-batch, under a wall-clock budget of `--minutes` (model building,
   4-bit loading and the final save included);
3. from its training report: tokens per second, seconds per step, peak GPU memory,
   and the extrapolation to a 24-hour budget on this card (tokens, and epochs of the
   given shards).

Nothing is downloaded: the config is written here, the weights are random. The random
base (about 15 GB in bf16) is written under `--out` and removed at the end unless
`--keep`. The Python running this needs trainer/requirements.txt (flash-attn is
optional and not pinned: it builds against the local CUDA toolkit).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "python"))

MISTRAL_7B = {
    "architectures": ["MistralForCausalLM"],
    "model_type": "mistral",
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "sliding_window": 4096,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "initializer_range": 0.02,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
}


def attention_check(shards, device, attn, flat, dtype):
    """The largest |difference| between a packed forward pass and each document's
    forward pass alone, on a tiny Mistral-shaped model with the given kernel."""
    import torch
    from transformers import AutoModelForCausalLM, MistralConfig

    from curate_train import data
    from curate_train import model as M
    cfg = MistralConfig(vocab_size=32000, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=4096)
    torch.manual_seed(0)
    m = AutoModelForCausalLM.from_config(cfg, attn_implementation=attn, dtype=dtype).to(device).eval()
    split = data.Split(shards, "train")
    packs = [split.pack(i) for i in range(min(len(split), 8))]
    packs = [p for p in packs if len(p.lengths) > 1][:2] or packs[:1]
    b = data.batch(packs, flat, 0)
    inputs, _ = M.to_device(b, device, attn, M.sliding_window(m))
    worst = 0.0
    with torch.no_grad():
        packed = m(**inputs).logits.float()
        offset = 0  # where the pack starts in the (flat) row
        for r, p in enumerate(packs):
            at = 0
            for n in p.lengths.tolist():
                alone = m(input_ids=torch.from_numpy(p.input_ids[at:at + n])[None].to(device)).logits.float()[0]
                got = packed[0, offset + at:offset + at + n] if flat else packed[r, at:at + n]
                worst = max(worst, (got - alone).abs().max().item())
                at += n
            if flat:
                offset += at
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", required=True, help="a curate output folder with shards (manifest.json)")
    ap.add_argument("--minutes", type=float, default=4.0, help="the trainer's wall-clock budget (default 4)")
    ap.add_argument("--tokens-per-step", type=int, default=8192,
                    help="tokens per micro-batch: packs are flattened (flash) or stacked (SDPA) up to about this")
    ap.add_argument("--rank", type=int, default=64, help="LoRA rank (default 64)")
    ap.add_argument("--out", help="working folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the random base and the adapter")
    args = ap.parse_args()

    started = time.monotonic()
    import torch

    if not torch.cuda.is_available():
        print("error: no CUDA GPU: this script measures the trainer on a GPU", file=sys.stderr)
        return 2
    from curate_train import data

    shards = Path(args.shards).resolve()
    manifest = data.load_manifest(shards)
    seq_len = manifest["shards"]["seq_len"]
    if manifest["shards"]["tokenizer"]["vocab_size"] > MISTRAL_7B["vocab_size"]:
        print("error: the shards' vocabulary is larger than Mistral-7B's (32000)", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(0)
    total_gb = torch.cuda.get_device_properties(0).total_memory / 2**30
    print(f"gpu: {name} ({total_gb:.0f} GiB), torch {torch.__version__}, CUDA {torch.version.cuda}")

    from curate_train import model as M

    attn = M.pick_attention("auto", torch.device("cuda"))
    worst = attention_check(shards, torch.device("cuda"), attn, attn == "flash_attention_2", torch.bfloat16)
    print(f"attention: {attn}; packed vs per-document forward (tiny model, bf16): max |diff| {worst:.3g}")
    torch.cuda.empty_cache()

    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="curate-gpu-smoke-"))
    work.mkdir(parents=True, exist_ok=True)
    cfg_dir = work / "mistral-7b-config"
    cfg_dir.mkdir(exist_ok=True)
    (cfg_dir / "config.json").write_text(json.dumps(MISTRAL_7B, indent=1))
    out = work / "train"
    micro = max(1, args.tokens_per_step // seq_len)
    spent = time.monotonic() - started
    budget_s = max(60.0, args.minutes * 60 - spent)
    settings = {
        "shards": str(shards), "output": str(out),
        "base": {"model": str(cfg_dir), "id": "mistralai/Mistral-7B-v0.1", "id_from": "train.base_id",
                 "family": "mistral", "random_init": True},
        "method": "qlora", "lora": {"rank": args.rank, "alpha": 2 * args.rank, "dropout": 0.05, "targets": ["all-linear"]},
        "learning_rate": 2e-4, "max_steps": 100000, "micro_batch": micro, "grad_accum": 1, "warmup": 0.03,
        "budget_hours": budget_s / 3600, "seed": 0, "checkpoint_minutes": 60, "eval_max_packs": 16,
        "gradient_checkpointing": True, "attention": "auto", "device": "cuda", "restart": True, "offline": True,
    }
    path = work / "settings.json"
    path.write_text(json.dumps(settings, indent=1))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(REPO / "python")]),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    print(f"training: qlora r={args.rank}, {micro} packs of {seq_len} tokens a step, budget {budget_s:.0f} s "
          f"(model building and 4-bit loading included)", flush=True)
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "curate_train", "--settings", str(path)], env=env,
                       timeout=budget_s + 120)
    wall = time.monotonic() - t
    if r.returncode != 0:
        print(f"error: the trainer exited {r.returncode}", file=sys.stderr)
        return r.returncode
    rep = json.loads((out / "report.json").read_text())
    res = rep["result"]
    tps = res["tokens_per_second"] or 0.0
    day = tps * 24 * 3600
    train_tokens = rep["shards"]["train_tokens"]
    print()
    print(f"card:               {name}")
    print(f"attention:          {rep['device']['attention']}, {rep['device']['dtype']}")
    print(f"steps:              {res['steps']} in {wall:.0f} s ({res['stop_reason']}); "
          f"{res['step_seconds_median']} s a step of ~{micro * seq_len} tokens")
    print(f"throughput:         {tps:,.0f} tokens/s (real tokens, padding excluded)")
    print(f"peak GPU memory:    {res['peak_memory_gb']:.1f} GiB allocated "
          f"({torch.cuda.max_memory_reserved() / 2**30:.1f} GiB reserved by this process)")
    print(f"24-hour budget:     about {day / 1e9:.2f} billion tokens at this pace "
          f"({day / max(1, train_tokens):,.0f} epochs of these shards' {train_tokens:,} train tokens)")
    print(f"loss:               {res['first_loss']} -> {res['last_loss']} (random weights: only a sanity check)")
    if not args.keep:
        shutil.rmtree(out / "random-base", ignore_errors=True)
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
