"""What needs no torch: reading packs and labels, the data order, the budget and the
plan, the compliance check, the settings."""

import json

import numpy as np
import pytest

from curate_shards import packs as reference_packs
from curate_train import Refusal, TrainerError
from curate_train import budget as B
from curate_train import compliance, data, settings


def test_packs_match_the_reference_reader(shards):
    split = data.Split(shards, "train")
    ref = list(reference_packs(shards, "train"))
    assert len(split) == len(ref) > 0
    for p, r in zip((split.pack(i) for i in range(len(split))), ref):
        assert np.array_equal(p.input_ids, r["input_ids"])
        assert np.array_equal(p.position_ids, r["position_ids"])
        assert np.array_equal(p.lengths, r["sequence_lengths"])
        # Trained where the mask says, except at each document's first token.
        starts = np.concatenate([[0], np.cumsum(r["sequence_lengths"])[:-1]])
        want = np.where(r["loss_mask"] == 1, r["input_ids"], data.IGNORE)
        want[starts] = data.IGNORE
        assert np.array_equal(p.labels, want)
    assert split.pack_tokens.sum() == json.loads((shards / "manifest.json").read_text())["shards"]["train"]["tokens"]


def test_labels_never_target_a_document_start():
    ids = np.array([5, 6, 7, 8, 9, 10])
    mask = np.ones(6, dtype=np.uint8)
    labels = data.labels_for(ids, mask, np.array([2, 3, 1]))
    assert labels.tolist() == [-100, 6, -100, 8, 9, -100]


def test_padded_batch_gives_padding_its_own_segment():
    a = data.Pack(np.array([1, 2, 3]), np.array([-100, 2, 3]), np.array([0, 1, 0]), np.array([2, 1]))
    b = data.Pack(np.array([4]), np.array([-100]), np.array([0]), np.array([1]))
    out = data.batch([a, b], flat=False, pad_id=0)
    assert out["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert out["segments"].tolist() == [[0, 0, 1], [0, 1, 1]]
    assert out["labels"][1].tolist() == [-100, -100, -100]
    flat = data.batch([a, b], flat=True, pad_id=0)
    assert flat["cu_seqlens"].tolist() == [0, 2, 3, 4]
    assert flat["position_ids"].tolist() == [[0, 1, 0, 0]]


def test_order_is_seeded_and_covers_each_epoch():
    o = data.Order(10, seed=3)
    first = o.take(0, 10)
    assert sorted(first) == list(range(10))
    assert data.Order(10, seed=3).take(5, 10) == first[5:] + o.take(10, 5)
    assert o.take(10, 10) != first


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_budget_counts_earlier_sessions():
    c = Clock()
    b = B.Budget(1.0, spent_before=600.0, clock=c)
    c.t = 60.0
    assert b.spent() == 660.0 and b.left() == 3600.0 - 660.0


def test_plan_is_fitted_to_the_budget_and_never_steps_past_the_reserve():
    c = Clock()
    b = B.Budget(100 / 3600, clock=c)  # 100 s
    p = B.Planner(b, requested=1000)
    p.save_s, p.eval_s = 4.0, 2.0
    step = 0
    while step < p.total and p.can_step():
        c.t += 1.0  # one second a step
        step += 1
        p.record_step(1.0, first=step == 1)
        p.fit(step)
    assert p.fitted and p.total < 1000
    # Enough is left for the finishing work the reserve stands for.
    assert b.left() >= B.SAFETY * (p.save_s + p.eval_s)
    assert step <= p.total


def test_cosine_schedule_warms_up_then_decays_to_zero():
    lrs = [B.cosine_lr(1.0, s, 100, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert B.cosine_lr(1.0, 100, 100, 0.1) == pytest.approx(0.0)


def manifest_with(families, models, same_family=()):
    return {"compliance": {"policy": "neurips-2023", "verdict": "allow",
                           "target": {"model": models[0], "family": families[0] if families else None},
                           "base_models": list(models), "base_families": list(families),
                           "same_family": list(same_family), "license": "Apache-2.0"}}


def test_compliance_allows_the_target_and_its_family():
    m = manifest_with(["mistral"], ["mistralai/Mistral-7B-v0.1"])
    ok = compliance.check(m, settings.Base(model="/m", id="mistralai/mistral-7b-v0.1"))
    assert ok["decision"].startswith("the base is the model")
    ok = compliance.check(m, settings.Base(model="x", id="mistralai/Mistral-7B-v0.3", family="mistral"))
    assert "family `mistral`" in ok["decision"]


def test_compliance_refuses_llama2_output_with_a_mistral_base():
    m = manifest_with(["llama-2"], ["meta-llama/Llama-2-7b-hf"],
                      [{"source": "gen", "families": ["llama-2"], "release_under": ["LicenseRef-Llama2-Community"]}])
    with pytest.raises(Refusal) as e:
        compliance.check(m, settings.Base(model="x", id="mistralai/Mistral-7B-v0.1", family="mistral"))
    msg = str(e.value)
    assert "family `mistral`" in msg and "may train only `llama-2`" in msg and "source `gen`" in msg
    # An unresolved family is refused too, unless it is the judged target itself.
    with pytest.raises(Refusal):
        compliance.check(m, settings.Base(model="x", id="someone/other-model"))


def test_shards_without_verdicts_are_not_checked():
    r = compliance.check({}, settings.Base(model="x"))
    assert r["checked"] is False and "no compliance verdicts" in r["note"]


def test_settings_refuse_unknown_keys_and_bad_values():
    base = {"shards": "/s", "output": "/o", "base": "org/m"}
    s = settings.parse(base)
    assert s.base.id == "org/m" and s.method == "qlora" and s.budget_hours == 24.0
    with pytest.raises(TrainerError, match="unknown key"):
        settings.parse({**base, "lerning_rate": 1})
    with pytest.raises(TrainerError, match="warmup"):
        settings.parse({**base, "warmup": 0.9})
    # The fingerprint ignores what may change between sessions.
    a = settings.parse({**base, "budget_hours": 1}).fingerprint()
    assert a == settings.parse({**base, "budget_hours": 2, "merge": True}).fingerprint()
    assert a != settings.parse({**base, "learning_rate": 1e-3}).fingerprint()
