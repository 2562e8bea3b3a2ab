"""Loading the base model for QLoRA, LoRA or full fine-tuning, and the packed forward
pass with attention confined to each document."""

import json
import os
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F

from . import TrainerError
from .data import IGNORE


def pick_device(setting):
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainerError("`device = cuda` but torch sees no CUDA GPU")
        return torch.device("cuda")
    return torch.device("cpu")


def has_flash_attn():
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


def pick_attention(setting, device):
    """`flash_attention_2` (varlen over cu_seqlens) on a GPU with flash-attn; `sdpa`
    with an explicit block-diagonal mask otherwise."""
    if setting == "flash" or (setting == "auto" and device.type == "cuda" and has_flash_attn()):
        if device.type != "cuda":
            raise TrainerError("`attention = \"flash\"` needs a CUDA GPU")
        if not has_flash_attn():
            raise TrainerError("`attention = \"flash\"` but the flash-attn package is not installed",
                               hint="pip install flash-attn (built for this torch and CUDA), or use attention = \"auto\"")
        return "flash_attention_2"
    if setting == "eager":
        return "eager"
    return "sdpa"


def pick_dtype(device):
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return torch.float32


def is_local(model):
    return os.path.isdir(model)


def make_random_base(settings, device, dtype, dest):
    """Build the base from its config with random weights (seeded) and save it, so
    that every later load (resume, quantization, merge) sees the same weights. A
    saved base is reused only when it was made from the same config and seed."""
    import hashlib

    from transformers import AutoConfig, AutoModelForCausalLM

    dest = Path(dest)
    cfg = AutoConfig.from_pretrained(settings.base.model, local_files_only=settings.offline)
    made_from = {"config_sha256": hashlib.sha256(cfg.to_json_string(use_diff=False).encode()).hexdigest(),
                 "seed": settings.seed}
    marker = dest / "curate-random-init.json"
    if marker.exists() and json.loads(marker.read_text()) == made_from:
        return dest
    torch.manual_seed(settings.seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    (tmp / "curate-random-init.json").write_text(json.dumps(made_from) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def load(settings, device, attn, dtype, base_path):
    """The model ready to train: quantized and wrapped with LoRA adapters, or whole."""
    from transformers import AutoModelForCausalLM

    kwargs = {"attn_implementation": attn, "dtype": dtype, "local_files_only": settings.offline}
    if settings.method == "qlora":
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ImportError as e:
            raise TrainerError(f"QLoRA needs bitsandbytes: {e}", hint="pip install -r trainer/requirements.txt") from None
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": device.index or 0} if device.type == "cuda" else {"": "cpu"}
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base_path), **kwargs)
    except OSError as e:
        raise TrainerError(f"cannot load the base model `{base_path}`: {e}",
                           hint="give a local folder with config.json and weights, or a hub id reachable from here") from None
    if settings.method != "qlora":
        model.to(device)
    model.config.use_cache = False
    ckpt = {"use_reentrant": False}
    if settings.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=settings.gradient_checkpointing,
            gradient_checkpointing_kwargs=ckpt)
    elif settings.gradient_checkpointing:
        enable = getattr(model, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(ckpt)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=ckpt)
    if settings.method in ("qlora", "lora"):
        from peft import LoraConfig, get_peft_model

        targets = settings.lora.targets
        cfg = LoraConfig(
            r=settings.lora.rank, lora_alpha=settings.lora.alpha, lora_dropout=settings.lora.dropout,
            target_modules=targets[0] if targets == ["all-linear"] else targets,
            bias="none", task_type="CAUSAL_LM")
        try:
            model = get_peft_model(model, cfg)
        except ValueError as e:
            raise TrainerError(f"LoRA: {e}", hint="check `lora_targets` against the model's module names") from None
    return model


def vocab_check(model, manifest):
    """The shards' token ids must fit the model's embedding."""
    vocab = manifest["shards"]["tokenizer"]["vocab_size"]
    emb = model.get_input_embeddings().num_embeddings
    if emb < vocab:
        raise TrainerError(
            f"the shards were tokenized with {vocab} tokens but the base model's embedding has {emb}",
            hint="train the model whose tokenizer made the shards (`[target] tokenizer`)")
    return emb


def tokenizer_check(base_path, shards):
    """When the base folder has a tokenizer.json, its vocabulary must be the shards'."""
    mine = Path(base_path) / "tokenizer.json"
    theirs = Path(shards) / "tokenizer" / "tokenizer.json"
    if not (mine.exists() and theirs.exists()):
        return None
    a = json.loads(mine.read_text()).get("model", {}).get("vocab")
    b = json.loads(theirs.read_text()).get("model", {}).get("vocab")
    if a != b:
        raise TrainerError(
            f"the base model's tokenizer ({mine}) is not the one that made the shards ({theirs})",
            hint="the token ids would mean different tokens: build the shards with the base model's tokenizer")
    return True


def block_mask(segments, window=None):
    """[B, 1, L, L] boolean mask: query q sees key k when both are in the same
    document and k <= q (and q - k < window for sliding-window models)."""
    L = segments.shape[1]
    q = torch.arange(L, device=segments.device)
    causal = q[:, None] >= q[None, :]
    if window:
        causal = causal & (q[:, None] - q[None, :] < window)
    same = segments[:, :, None] == segments[:, None, :]
    return (same & causal)[:, None]


def to_device(b, device, attn, window):
    """Torch inputs for one numpy batch from data.batch."""
    out = {
        "input_ids": torch.from_numpy(b["input_ids"]).to(device),
        "position_ids": torch.from_numpy(b["position_ids"]).to(device),
    }
    labels = torch.from_numpy(b["labels"]).to(device)
    if attn == "flash_attention_2":
        cu = torch.from_numpy(b["cu_seqlens"]).to(device)
        out.update(cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=b["max_seqlen"], max_length_k=b["max_seqlen"])
    else:
        out["attention_mask"] = block_mask(torch.from_numpy(b["segments"]).to(device), window)
    return out, labels


def sliding_window(model):
    cfg = getattr(model, "config", None)
    return getattr(cfg, "sliding_window", None) if cfg is not None else None


def loss_sum(logits, labels):
    """Summed cross-entropy of next-token predictions over the trained labels, and
    how many there were."""
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    shift_labels = labels[:, 1:].reshape(-1)
    n = int((shift_labels != IGNORE).sum())
    if n == 0:
        return shift_logits.sum() * 0.0, 0
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=IGNORE, reduction="sum"), n


def trainable_state(model):
    return {n: p.detach().to("cpu").contiguous() for n, p in model.named_parameters() if p.requires_grad}
