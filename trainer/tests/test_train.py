"""Whole training runs on CPU, as `curate train` launches them: a tiny Mistral-shaped
model with random weights (recipes/models/tiny-mistral) on the quickstart's shards."""

import json

import pytest

from conftest import TINY, needs_torch, report, run_trainer, settings_for

pytestmark = needs_torch


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"


def test_loss_falls(shards, tmp_path):
    out = tmp_path / "train"
    r, _ = run_trainer(settings_for(shards, out, method="full", learning_rate=2e-3, max_steps=12,
                                    warmup=0.0), tmp_path)
    ok(r)
    h = report(out)["result"]["loss_history"]
    assert len(h) == 12
    first, last = sum(h[:3]) / 3, sum(h[-3:]) / 3
    assert last < first - 0.5, f"loss did not fall: {h}"
    assert "loss" in r.stdout and "tok/s" in r.stdout and "mem" in r.stdout


def test_lora_adapter_carries_the_obligations_and_merges(shards, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "train"
    r, _ = run_trainer(settings_for(shards, out, max_steps=3, merge=True), tmp_path)
    ok(r)
    rep = report(out)
    assert rep["result"]["stop_reason"] == "completed" and rep["result"]["merged"]
    assert rep["result"]["final_eval_loss"] is not None
    assert rep["compliance"]["checked"] and rep["device"]["attention"] == "sdpa"
    adapter = out / "adapter"
    for f in ("adapter_model.safetensors", "adapter_config.json", "NOTICE", "DATA_CARD.md", "README.md", "tokenizer.json"):
        assert (adapter / f).exists(), f
    assert (adapter / "NOTICE").read_text() == (shards / "NOTICE").read_text()
    readme = (adapter / "README.md").read_text()
    assert "Data license (all kept sources combined): `Apache-2.0`" in readme
    assert "base_model: \"mistralai/Mistral-7B-v0.1\"" in readme
    # The adapter loads onto the base, and the merged model computes the same.
    ids = torch.arange(3, 40)[None]
    base = AutoModelForCausalLM.from_pretrained(str(out / "random-base"))
    with torch.no_grad():
        plain = base(input_ids=ids).logits
        with_adapter = PeftModel.from_pretrained(base, str(adapter)).eval()(input_ids=ids).logits
        merged = AutoModelForCausalLM.from_pretrained(str(out / "merged"))(input_ids=ids).logits
    assert (with_adapter - plain).abs().max() > 1e-6, "the adapter changed nothing"
    assert (merged - with_adapter).abs().max() < 1e-4
    assert (out / "merged" / "NOTICE").exists()


def test_resume_continues_from_the_checkpoint(shards, tmp_path):
    from safetensors.torch import load_file

    kw = dict(max_steps=6, grad_accum=2, lora={"dropout": 0.1})
    straight = tmp_path / "straight"
    r, _ = run_trainer(settings_for(shards, straight, **kw), tmp_path)
    ok(r)

    cut = tmp_path / "cut"
    r, _ = run_trainer(settings_for(shards, cut, **kw), tmp_path, env={"CURATE_TRAIN_STOP_AFTER": "3"})
    assert r.returncode == 130, r.stderr
    state = json.loads((cut / "checkpoints" / "step-0000003" / "state.json").read_text())
    assert state["step"] == 3 and state["stop_reason"].startswith("interrupted")
    assert (cut / "adapter" / "adapter_model.safetensors").exists(), "an interrupted run leaves a usable adapter"

    r, _ = run_trainer(settings_for(shards, cut, **kw), tmp_path)
    ok(r)
    assert "step 4/6" in r.stdout and "step 1/6" not in r.stdout
    a, b = report(straight)["result"], report(cut)["result"]
    assert b["steps"] == 6 and b["stop_reason"] == "completed"
    assert b["loss_history"] == pytest.approx(a["loss_history"], rel=1e-4, abs=1e-5)
    wa = load_file(str(straight / "adapter" / "adapter_model.safetensors"))
    wb = load_file(str(cut / "adapter" / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert (wa[k] - wb[k]).abs().max() < 1e-5, k

    # A finished plan is not trained again; changed settings do not resume.
    r, _ = run_trainer(settings_for(shards, cut, **kw), tmp_path)
    ok(r)
    assert "nothing to do" in r.stdout
    r, _ = run_trainer(settings_for(shards, cut, **{**kw, "learning_rate": 1e-3}), tmp_path)
    assert r.returncode == 2 and "made with other settings" in r.stderr


def test_budget_stop_is_clean_and_never_overruns(shards, tmp_path):
    budget_s = 25.0
    out = tmp_path / "train"
    r, wall = run_trainer(settings_for(shards, out, max_steps=100000, budget_hours=budget_s / 3600), tmp_path)
    ok(r)
    rep = report(out)
    res = rep["result"]
    assert res["stop_reason"] == "budget"
    assert 0 < res["steps"] < 100000
    assert rep["plan"]["fitted_to_budget"] and rep["plan"]["planned_steps"] < 100000
    assert res["spent_seconds"] <= budget_s
    assert wall <= budget_s + 1.0, f"the process ran {wall:.1f} s on a {budget_s} s budget"
    assert (out / "adapter" / "adapter_model.safetensors").exists()
    assert "budget affords" in r.stdout


def test_refuses_a_base_the_verdicts_do_not_allow(shards_copy, tmp_path):
    m = json.loads((shards_copy / "manifest.json").read_text())
    c = m["compliance"]
    c["target"] = {"model": "meta-llama/Llama-2-7b-hf", "family": "llama-2", "verdict": "allow"}
    c["base_models"], c["base_families"] = ["meta-llama/Llama-2-7b-hf"], ["llama-2"]
    c["same_family"] = [{"source": "llama-chats", "families": ["llama-2"],
                         "release_under": ["LicenseRef-Llama2-Community"]}]
    (shards_copy / "manifest.json").write_text(json.dumps(m))
    out = tmp_path / "train"
    r, _ = run_trainer(settings_for(shards_copy, out), tmp_path)
    assert r.returncode == 1, r.stderr
    assert "may not train on these shards" in r.stderr and "source `llama-chats`" in r.stderr
    assert not (out / "adapter").exists()


def test_qlora_runs_on_cpu(shards, tmp_path):
    pytest.importorskip("bitsandbytes")
    out = tmp_path / "train"
    r, _ = run_trainer(settings_for(shards, out, method="qlora", max_steps=2), tmp_path)
    ok(r)
    rep = report(out)
    assert rep["result"]["steps"] == 2 and rep["parameters"]["trained"] > 0
    assert (out / "adapter" / "adapter_model.safetensors").exists()


def test_tiny_config_is_mistral_shaped():
    cfg = json.loads((TINY / "config.json").read_text())
    assert cfg["model_type"] == "mistral" and cfg["vocab_size"] == 2048
