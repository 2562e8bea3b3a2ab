"""The training run: plan, loop, checkpoint, evaluate, finish within the budget."""

import hashlib
import json
import math
import os
import platform
import resource
import shutil
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from . import EXIT_INTERRUPTED, EXIT_OK, TrainerError, __version__
from . import compliance, data, settings as settings_mod
from . import model as modeling
from .budget import Budget, Planner, cosine_lr

CHECKPOINTS = "checkpoints"


class Log:
    """Progress lines on stdout and the same facts in log.jsonl."""

    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8")

    def say(self, line):
        print(line, flush=True)

    def event(self, kind, **fields):
        fields = {"event": kind, "time": round(time.time(), 3), **fields}
        self.f.write(json.dumps(fields) + "\n")
        self.f.flush()


def memory_gb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 2**20 if sys.platform != "darwin" else kb / 2**30


def hms(seconds):
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def requested_steps(s, split, per_step):
    """Optimizer steps the settings ask for: the least of `max_steps`, `epochs` and
    the token budget (`max_tokens`, real tokens); one epoch when none is given."""
    n = len(split)
    mean = float(split.pack_tokens.mean()) if n else 0.0
    asks = {}
    if s.max_steps:
        asks["max_steps"] = s.max_steps
    if s.epochs:
        asks["epochs"] = math.ceil(s.epochs * n / per_step)
    if s.max_tokens:
        asks["max_tokens"] = math.ceil(s.max_tokens / max(1.0, per_step * mean))
    if not asks:
        asks["epochs"] = math.ceil(n / per_step)
    by = min(asks, key=asks.get)
    return max(1, asks[by]), by


class Stop:
    """Set by SIGINT / SIGTERM (and by CURATE_TRAIN_STOP_AFTER, which stands in for
    a signal after that many steps in tests); the loop stops at the next step."""

    def __init__(self):
        self.signal = None
        self.after = int(os.environ["CURATE_TRAIN_STOP_AFTER"]) if os.environ.get("CURATE_TRAIN_STOP_AFTER") else None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame):
        self.signal = signal.Signals(signum).name

    def check(self, step):
        if self.signal:
            return self.signal
        if self.after is not None and step >= self.after:
            return "CURATE_TRAIN_STOP_AFTER"
        return None


def rng_state():
    st = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st):
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def latest_checkpoint(out):
    p = Path(out) / CHECKPOINTS / "latest"
    if not p.exists():
        return None
    d = Path(out) / CHECKPOINTS / p.read_text().strip()
    return d if (d / "state.json").exists() else None


def save_checkpoint(out, model, opt, state):
    """Write a checkpoint atomically (a folder renamed into place, then `latest`),
    and remove the older ones."""
    from safetensors.torch import save_file

    root = Path(out) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{state['step']:07d}"
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(modeling.trainable_state(model), str(tmp / "trainable.safetensors"))
    torch.save({"optimizer": opt.state_dict(), "rng": rng_state()}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1) + "\n")
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    (root / "latest.tmp").write_text(name + "\n")
    (root / "latest.tmp").rename(root / "latest")
    for old in root.iterdir():
        if old.is_dir() and old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(d, model, opt):
    from safetensors.torch import load_file

    weights = load_file(str(d / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [n for n in weights if n not in params]
    if missing:
        raise TrainerError(f"checkpoint `{d}` does not fit this model (e.g. `{missing[0]}`)",
                           hint="train again from the start with `curate train --restart`")
    with torch.no_grad():
        for n, t in weights.items():
            params[n].copy_(t.to(params[n].device, params[n].dtype))
    extra = torch.load(d / "optimizer.pt", map_location="cpu", weights_only=False)
    opt.load_state_dict(extra["optimizer"])
    set_rng_state(extra["rng"])


def evaluate(model, split, s, device, attn, window, autocast, pad_id):
    """Mean loss over the trained tokens of the first `eval_max_packs` valid packs."""
    model.eval()
    total, count = 0.0, 0
    n = min(len(split), s.eval_max_packs)
    flat = attn == "flash_attention_2"
    with torch.no_grad():
        for i in range(0, n, s.micro_batch):
            b = data.batch([split.pack(j) for j in range(i, min(n, i + s.micro_batch))], flat, pad_id)
            inputs, labels = modeling.to_device(b, device, attn, window)
            with autocast():
                logits = model(**inputs).logits
            ls, k = modeling.loss_sum(logits, labels)
            total += float(ls)
            count += k
    model.train()
    return (total / count if count else float("nan")), n


def write_weights(s, model, dest, manifest, record):
    """The adapter (or the whole model for full fine-tuning) with the shards'
    tokenizer, NOTICE, dataset card and a README stating the obligations."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp))
    tok = Path(s.shards) / "tokenizer"
    if tok.is_dir():
        for f in tok.iterdir():
            if f.is_file():
                shutil.copyfile(f, tmp / f.name)
    copied = compliance.copy_files(s.shards, tmp)
    lines = compliance.lines(manifest, s.base.id)
    kind = "LoRA adapter" if s.method in ("qlora", "lora") else "fine-tuned model"
    front = ["---", f"base_model: {json.dumps(s.base.id)}"]
    if s.method in ("qlora", "lora"):
        front.append("library_name: peft")
    front += ["tags:", "- curate", "---", ""]
    body = [f"# {kind} for `{s.base.id}`", "",
            f"Trained by curate's trainer on the shards of recipe `{manifest['recipe']['name']}` "
            f"(manifest sha256 `{record['manifest_sha256'][:16]}…`), method `{s.method}`, "
            f"{record['steps']} optimizer steps, stopped: {record['stop_reason']}.", ""]
    if s.base.random_init:
        body += [f"The base weights were random (built from the config in `{s.base.model}`, seed {s.seed}): "
                 "a stand-in for tests and smoke runs, judged as the model above.", ""]
    body += ["## Obligations from the training data", ""] + [f"- {x}" for x in lines]
    if copied:
        body += ["", f"Copied here from the shards: {', '.join(copied)}."]
    (tmp / "README.md").write_text("\n".join(front + body) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return copied


def merge(s, base_path, adapter_dir, dest, dtype):
    """The base with the adapter folded in, in bf16 (fp32 on CPU)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(base_path), dtype=dtype, local_files_only=s.offline)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(str(tmp))
    for f in Path(adapter_dir).iterdir():
        if f.is_file() and not f.name.startswith("adapter_"):
            shutil.copyfile(f, tmp / f.name)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def quiet_libraries():
    """Progress bars and deprecation chatter of the libraries would drown the
    trainer's own lines."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*autograd kernel was not registered.*")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def run(settings_path, started):
    s = settings_mod.load(settings_path)
    quiet_libraries()
    out = Path(s.output)
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "log.jsonl")
    manifest = data.load_manifest(s.shards)
    manifest_sha = sha256_file(Path(s.shards) / "manifest.json")
    check = compliance.check(manifest, s.base)
    log.say(f"curate-train {__version__}: base `{s.base.id}`"
            + (f" ({s.base.model})" if s.base.model != s.base.id else "")
            + f", method {s.method}, shards `{s.shards}`")
    if check["checked"]:
        log.say(f"  compliance: {check['decision']} (policy `{check['policy']}`)")
    else:
        log.say(f"  compliance: {check['note']}")

    train = data.Split(s.shards, "train")
    valid = data.Split(s.shards, "valid") if (Path(s.shards) / "valid.idx").exists() else None
    tk = manifest["shards"]["tokenizer"]
    pad_id = (tk.get("pad") or tk.get("eos") or {}).get("id", 0)
    per_step = s.micro_batch * s.grad_accum
    requested, asked_by = requested_steps(s, train, per_step)

    # Resume: the last checkpoint, when it was made with the same settings and shards.
    fp = s.fingerprint()
    ckpt = None if s.restart else latest_checkpoint(out)
    state = None
    if s.restart and (out / CHECKPOINTS).exists():
        shutil.rmtree(out / CHECKPOINTS)
    if ckpt is not None:
        state = json.loads((ckpt / "state.json").read_text())
        if state["fingerprint"] != fp or state["manifest_sha256"] != manifest_sha:
            what = "settings" if state["fingerprint"] != fp else "shards (manifest.json)"
            raise TrainerError(f"the checkpoint `{ckpt}` was made with other {what}",
                               hint="restore them, or train from the start with `curate train --restart`")
        if state["step"] >= state["planned"]:
            log.say(f"  the checkpoint `{ckpt.name}` finished its plan ({state['step']} steps, {state['stop_reason']}); nothing to do")
            log.say("  hint: `curate train --restart` trains again from the start")
            return EXIT_OK
    budget = Budget(s.budget_hours, spent_before=state["spent_s"] if state else 0.0, started=started)
    if budget.left() <= 0:
        raise TrainerError(f"the budget of {s.budget_hours} h is spent ({hms(budget.spent())} used)",
                           hint="raise `budget_hours`, or `--restart`")

    device = modeling.pick_device(s.device)
    attn = modeling.pick_attention(s.attention, device)
    dtype = modeling.pick_dtype(device)
    if s.base.random_init:
        base_path = modeling.make_random_base(s, device, dtype, out / "random-base")
    else:
        base_path = s.base.model
    if modeling.is_local(str(base_path)):
        modeling.tokenizer_check(base_path, s.shards)
    torch.manual_seed(s.seed)  # the adapters' initialisation
    model = modeling.load(s, device, attn, dtype, base_path)
    modeling.vocab_check(model, manifest)
    if device.type == "cuda":
        # Peak memory is reported for training, not for building or loading the model.
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    window = modeling.sliding_window(model)
    params = [p for p in model.parameters() if p.requires_grad]
    n_train = sum(p.numel() for p in params)
    # 4-bit weights are stored two to a byte.
    n_all = sum(p.numel() * (2 if p.dtype == torch.uint8 else 1) for p in model.parameters())
    opt = torch.optim.AdamW(params, lr=s.learning_rate, weight_decay=s.weight_decay,
                            fused=device.type == "cuda")
    step, tokens_seen, trained_seen, history, evals = 0, 0, 0, [], []
    if state:
        load_checkpoint(ckpt, model, opt)
        step, tokens_seen, trained_seen = state["step"], state["tokens"], state["trained_tokens"]
        history, evals = state["history"], state["evals"]
    autocast = (lambda: torch.autocast("cuda", dtype=dtype)) if dtype != torch.float32 else nullcontext
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    log.say(f"  device {device.type} ({gpu}), attention {attn}, {str(dtype).replace('torch.', '')}, "
            f"{n_train:,} of {n_all:,} parameters trained")

    merge_estimate = 0.0
    if s.merge and s.method != "full":
        # Reading the base and writing the merged model, at a conservative 200 MB/s.
        merge_estimate = 10.0 + 2 * n_all * 2 / 200e6
    planner = Planner(budget, requested, done=step, merge_estimate=merge_estimate)
    if state:
        planner.total, planner.fitted = state["planned"], state["fitted"]
        planner.save_s, planner.eval_s = state.get("save_s"), state.get("eval_s")
    order = data.Order(len(train), s.seed)
    stop = Stop()
    flat = attn == "flash_attention_2"
    mean_pack = float(train.pack_tokens.mean())
    log.say(f"  plan: {requested} steps asked by `{asked_by}` ({per_step} packs of ~{mean_pack:.0f} tokens a step, "
            f"{len(train)} packs an epoch); budget {hms(budget.left())} left of {s.budget_hours:g} h")
    log.event("start", step=step, requested=requested, asked_by=asked_by, device=device.type, attention=attn,
              resumed=bool(state), budget_left_s=budget.left())

    session_first = step
    last_save = time.monotonic()
    stop_reason = None
    model.train()

    def snapshot(reason):
        return {"fingerprint": fp, "manifest_sha256": manifest_sha, "step": step, "planned": planner.total,
                "requested": requested, "fitted": planner.fitted, "tokens": tokens_seen,
                "trained_tokens": trained_seen, "spent_s": budget.spent(), "history": history, "evals": evals,
                "save_s": planner.save_s, "eval_s": planner.eval_s, "stop_reason": reason}

    def checkpoint(reason=None):
        nonlocal last_save
        t = time.monotonic()
        save_checkpoint(out, model, opt, snapshot(reason))
        write_weights(s, model, out / weights_dir, manifest,
                      {"manifest_sha256": manifest_sha, "steps": step, "stop_reason": reason or "in progress"})
        took = time.monotonic() - t
        planner.save_s = max(took, planner.save_s or 0.0)
        last_save = time.monotonic()
        log.event("checkpoint", step=step, seconds=round(took, 3))
        return took

    def run_eval():
        if valid is None:
            return None
        t = time.monotonic()
        loss, n = evaluate(model, valid, s, device, attn, window, autocast, pad_id)
        took = time.monotonic() - t
        planner.eval_s = took
        evals.append({"step": step, "loss": loss, "packs": n, "seconds": round(took, 3)})
        log.say(f"  eval at step {step}: loss {loss:.4f} over {n} valid packs ({took:.1f} s)")
        log.event("eval", step=step, loss=loss, packs=n, seconds=round(took, 3))
        return loss

    weights_dir = "adapter" if s.method in ("qlora", "lora") else "model"
    window_tokens = []
    session_tokens, session_steps = 0, []
    while True:
        if step >= planner.total:
            stop_reason = "completed" if planner.total >= requested else "budget"
            break
        why = stop.check(step)
        if why:
            stop_reason = f"interrupted ({why})"
            break
        if not planner.can_step():
            stop_reason = "budget"
            break
        t0 = time.monotonic()
        idx = order.take(step * per_step, per_step)
        micro = [data.batch([train.pack(j) for j in idx[i:i + s.micro_batch]], flat, pad_id)
                 for i in range(0, per_step, s.micro_batch)]
        n_step = sum(int((m["labels"][:, 1:] != data.IGNORE).sum()) for m in micro)
        lr = cosine_lr(s.learning_rate, step, planner.total, s.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        loss_total = 0.0
        for m in micro:
            inputs, labels = modeling.to_device(m, device, attn, window)
            with autocast():
                logits = model(**inputs).logits
            ls, _ = modeling.loss_sum(logits, labels)
            del logits
            (ls / max(1, n_step)).backward()
            loss_total += float(ls.detach())
        if s.max_grad_norm > 0:
            gnorm = float(torch.nn.utils.clip_grad_norm_(params, s.max_grad_norm))
        else:
            gnorm = float("nan")
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.monotonic() - t0
        step += 1
        tokens = sum(m["tokens"] for m in micro)
        tokens_seen += tokens
        trained_seen += n_step
        loss = loss_total / max(1, n_step)
        history.append(round(loss, 6))
        first = step == session_first + 1
        planner.record_step(dt, first)
        if first and valid is not None and planner.eval_s is None:
            planner.eval_estimate = min(len(valid), s.eval_max_packs) / per_step * dt
        session_tokens += tokens
        session_steps.append(dt)
        window_tokens.append((tokens, dt))
        del window_tokens[:-20]
        tps = sum(t for t, _ in window_tokens) / max(1e-9, sum(d for _, d in window_tokens))
        mem = memory_gb(device)
        log.say(f"step {step}/{planner.total}  loss {loss:.4f}  lr {lr:.2e}  {tps:,.0f} tok/s  "
                f"mem {mem:.2f} GB  spent {hms(budget.spent())}  left {hms(budget.left())}")
        log.event("step", step=step, loss=loss, lr=lr, tokens=tokens, trained_tokens=n_step, seconds=round(dt, 4),
                  tokens_per_s=round(tps, 1), memory_gb=round(mem, 3), grad_norm=gnorm)
        msg = planner.fit(step)
        if msg:
            log.say("  " + msg)
            log.event("plan", planned=planner.total, requested=requested, step_s=planner.step_estimate())
        # The first step of a session saves at once: a usable adapter exists from
        # then on, and the time a save takes is measured for the reserve.
        due = time.monotonic() - last_save >= s.checkpoint_minutes * 60
        if (first and planner.save_s is None) or (due and step < planner.total):
            if budget.left() - planner.reserve() > (planner.save_s or 0) + (planner.eval_s or planner.eval_estimate):
                if due:
                    run_eval()
                checkpoint()
        elif s.eval_every and step % s.eval_every == 0 and step < planner.total:
            if budget.left() - planner.reserve() > (planner.eval_s or planner.eval_estimate) * 1.2:
                run_eval()

    # Finishing: the final evaluation (when it fits), the weights, the checkpoint.
    notes = []
    final_eval = None
    if valid is not None and step > 0:
        need = 1.2 * ((planner.eval_s or planner.eval_estimate) + (planner.save_s or 2.0) + merge_estimate) + 1
        if not evals or evals[-1]["step"] != step:
            if budget.left() > need:
                final_eval = run_eval()
            else:
                notes.append("the final evaluation was skipped: it did not fit in the budget")
        else:
            final_eval = evals[-1]["loss"]
    checkpoint(stop_reason)
    merged = False
    if s.merge and s.method != "full":
        if budget.left() > 1.2 * merge_estimate:
            t = time.monotonic()
            del opt, params, model
            if device.type == "cuda":
                torch.cuda.empty_cache()
            merge(s, base_path, out / "adapter", out / "merged", dtype)
            merged = True
            log.say(f"  merged model written to {out / 'merged'} ({time.monotonic() - t:.1f} s)")
        else:
            notes.append("the merge was skipped: it did not fit in the budget (run `curate train` again with more budget, or merge the adapter yourself)")
    for n in notes:
        log.say("  note: " + n)

    result = {
        "format": "curate-train-report",
        "version": 1,
        "trainer": __version__,
        "settings": s.to_json(),
        "fingerprint": fp,
        "shards": {"path": str(s.shards), "manifest_sha256": manifest_sha, "recipe": manifest.get("recipe"),
                   "seq_len": manifest["shards"]["seq_len"], "train_packs": len(train),
                   "train_tokens": int(train.pack_tokens.sum()), "valid_packs": len(valid) if valid else 0},
        "compliance": check,
        "obligations": compliance.lines(manifest, s.base.id),
        "device": {"type": device.type, "name": gpu, "attention": attn, "dtype": str(dtype).replace("torch.", ""),
                   "torch": torch.__version__, "python": platform.python_version()},
        "parameters": {"trained": n_train, "total": n_all},
        "plan": {"requested_steps": requested, "asked_by": asked_by, "planned_steps": planner.total,
                 "packs_per_step": per_step, "fitted_to_budget": planner.total < requested},
        "result": {
            "steps": step, "stop_reason": stop_reason, "tokens": tokens_seen, "trained_tokens": trained_seen,
            "epochs": round(step * per_step / max(1, len(train)), 4),
            "first_loss": history[0] if history else None, "last_loss": history[-1] if history else None,
            "final_eval_loss": final_eval, "evals": evals, "loss_history": history,
            "step_seconds_median": round(float(np.median(session_steps)), 4) if session_steps else None,
            "tokens_per_second": round(session_tokens / sum(session_steps), 1) if session_steps else None,
            "peak_memory_gb": round(memory_gb(device), 3),
            "budget_seconds": budget.total, "spent_seconds": round(budget.spent(), 3),
            "merged": merged, "notes": notes,
        },
        "files": sorted(str(p.relative_to(out)) for p in out.rglob("*")
                        if p.is_file() and CHECKPOINTS not in p.parts and "random-base" not in p.parts),
    }
    (out / "report.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "report.md").write_text(report_markdown(result))
    log.event("end", step=step, stop_reason=stop_reason, spent_s=budget.spent())
    log.say(f"  stopped: {stop_reason} after {step} steps; {weights_dir} in {out / weights_dir}; "
            f"report in {out / 'report.md'}; {hms(budget.spent())} of the {s.budget_hours:g} h budget used")
    return EXIT_INTERRUPTED if stop_reason.startswith("interrupted") else EXIT_OK


def report_markdown(r):
    res, plan, dev = r["result"], r["plan"], r["device"]
    lines = [
        f"# Training report: `{r['settings']['base']['id']}` on recipe `{(r['shards']['recipe'] or {}).get('name')}`",
        "",
        f"- method `{r['settings']['method']}`, {r['parameters']['trained']:,} of {r['parameters']['total']:,} parameters trained",
        f"- device {dev['type']} ({dev['name']}), attention `{dev['attention']}`, {dev['dtype']}, torch {dev['torch']}",
        f"- plan: {plan['requested_steps']} steps asked by `{plan['asked_by']}`, {plan['planned_steps']} planned"
        + (" (fitted to the budget)" if plan["fitted_to_budget"] else ""),
        f"- stopped: **{res['stop_reason']}** after {res['steps']} steps ({res['epochs']} epochs), "
        f"{res['tokens']:,} tokens ({res['trained_tokens']:,} trained)",
        f"- loss {res['first_loss']} → {res['last_loss']}; final eval loss {res['final_eval_loss']}",
        f"- {res['tokens_per_second']} tokens/s, peak memory {res['peak_memory_gb']} GB",
        f"- time: {res['spent_seconds']:.0f} s of the {res['budget_seconds']:.0f} s budget",
        "",
        "## Compliance",
        "",
    ]
    c = r["compliance"]
    lines.append(f"- {c.get('decision') or c.get('note')}")
    lines += [f"- {x}" for x in r["obligations"]]
    if res["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in res["notes"]]
    lines += ["", "## Evaluations", "", "| step | loss | packs |", "|---|---|---|"]
    lines += [f"| {e['step']} | {e['loss']:.4f} | {e['packs']} |" for e in res["evals"]]
    return "\n".join(lines) + "\n"
