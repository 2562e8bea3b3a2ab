"""No cross-document attention: the packed forward pass of a real pack equals each
document's forward pass alone, for Mistral- and Llama-shaped models, with the mask
the trainer builds."""

import numpy as np
import pytest

from conftest import needs_torch

pytestmark = needs_torch


def tiny(kind, **extra):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig

    common = dict(vocab_size=2048, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, **extra)
    cfg = MistralConfig(**common) if kind == "mistral" else LlamaConfig(**common)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa", dtype=torch.float32).eval()


def multi_doc_packs(shards, at_least=4, count=2):
    from curate_train import data

    split = data.Split(shards, "train")
    found = [split.pack(i) for i in range(len(split)) if len(split.pack(i).lengths) >= at_least]
    assert found, "the quickstart has packs of several documents"
    return found[:count]


@pytest.mark.parametrize("kind", ["mistral", "llama"])
def test_packed_forward_equals_each_document_alone(shards, kind):
    import torch
    from curate_train import data
    from curate_train import model as M

    m = tiny(kind)
    packs = multi_doc_packs(shards)
    b = data.batch(packs, flat=False, pad_id=2)  # two rows, the shorter one padded
    inputs, _ = M.to_device(b, torch.device("cpu"), "sdpa", None)
    with torch.no_grad():
        packed = m(**inputs).logits
        for r, p in enumerate(packs):
            at = 0
            for n in p.lengths.tolist():
                alone = m(input_ids=torch.from_numpy(p.input_ids[at:at + n])[None]).logits[0]
                diff = (packed[r, at:at + n] - alone).abs().max().item()
                assert diff < 1e-4, f"document at {at} of pack row {r}: max |diff| {diff}"
                at += n


def test_the_mask_is_what_separates_documents(shards):
    """Without the per-document mask (plain causal attention over the pack) later
    documents do see earlier ones: the test above is not vacuous."""
    import torch

    m = tiny("mistral")
    p = multi_doc_packs(shards, count=1)[0]
    ids = torch.from_numpy(p.input_ids)[None]
    first = int(p.lengths[0])
    with torch.no_grad():
        causal = m(input_ids=ids, position_ids=torch.from_numpy(p.position_ids)[None],
                   attention_mask=torch.ones_like(ids)).logits
        alone = m(input_ids=ids[:, first:first + int(p.lengths[1])]).logits
    assert (causal[0, first:first + int(p.lengths[1])] - alone[0]).abs().max().item() > 1e-3


def test_sliding_window_is_kept_inside_documents():
    import torch
    from curate_train import model as M

    seg = torch.tensor([[0, 0, 0, 0, 1, 1]])
    mask = M.block_mask(seg, window=2)[0, 0]
    assert mask.tolist()[3] == [False, False, True, True, False, False]
    assert mask.tolist()[5] == [False, False, False, False, True, True]


def test_loss_counts_only_trained_tokens_within_documents(shards):
    import torch
    import torch.nn.functional as F
    from curate_train import data
    from curate_train import model as M

    m = tiny("llama")
    p = multi_doc_packs(shards, count=1)[0]
    b = data.batch([p], flat=False, pad_id=2)
    inputs, labels = M.to_device(b, torch.device("cpu"), "sdpa", None)
    with torch.no_grad():
        total, n = M.loss_sum(m(**inputs).logits, labels)
        want, count, at = 0.0, 0, 0
        for k, length in enumerate(p.lengths.tolist()):
            ids = torch.from_numpy(p.input_ids[at:at + length])[None]
            lab = torch.from_numpy(p.labels[at:at + length])
            logits = m(input_ids=ids).logits[0]
            want += F.cross_entropy(logits[:-1], lab[1:], ignore_index=-100, reduction="sum").item()
            count += int((lab[1:] != -100).sum())
            at += length
    assert n == count and n > 0
    assert abs(total.item() - want) < 1e-3 * max(1.0, want)
    assert np.all(p.labels[np.concatenate([[0], np.cumsum(p.lengths)[:-1]])] == -100)


@pytest.mark.parametrize("flat", [True, False])
def test_gpu_smoke_attention_check_on_cpu(shards, flat):
    """The smoke script's own packed-vs-alone check, run here with SDPA on CPU."""
    import torch

    import gpu_smoke

    worst = gpu_smoke.attention_check(shards, torch.device("cpu"), "sdpa", flat, torch.float32)
    assert worst < 1e-4
