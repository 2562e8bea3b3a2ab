"""The settings file `curate train` writes (`settings.json` in the training folder).

Every key has the default `curate train` would resolve, so a hand-written file only
needs `shards`, `output` and `base`. Unknown keys are refused: a setting the trainer
ignored silently would make the run impossible to reproduce.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from . import TrainerError

FORMAT = "curate-train-settings"
METHODS = ("qlora", "lora", "full")
ATTENTION = ("auto", "flash", "sdpa", "eager")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class Base:
    # What `from_pretrained` is given: a hub id or a local folder.
    model: str
    # The model id the compliance verdicts are checked against.
    id: str = ""
    # Where `id` came from (`train.base`, `train.base_id`, `target.model`).
    id_from: str = ""
    # Its family in curate's licenses/models.toml, resolved by `curate train`.
    family: str | None = None
    # Build the model from its config.json with random weights.
    random_init: bool = False


@dataclass
class Lora:
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    targets: list = field(default_factory=lambda: ["all-linear"])


@dataclass
class Settings:
    shards: Path
    output: Path
    base: Base
    format: str = FORMAT
    version: int = 1
    recipe: dict = field(default_factory=dict)
    # What `curate train` concluded about the base (verdict, rules); recorded.
    compliance: dict | None = None
    method: str = "qlora"
    lora: Lora = field(default_factory=Lora)
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    epochs: float | None = None
    max_tokens: int | None = None
    max_steps: int | None = None
    micro_batch: int = 1
    grad_accum: int = 8
    warmup: float = 0.03
    budget_hours: float = 24.0
    seed: int = 0
    merge: bool = False
    checkpoint_minutes: float = 30.0
    eval_every: int | None = None
    eval_max_packs: int = 200
    gradient_checkpointing: bool = True
    attention: str = "auto"
    device: str = "auto"
    restart: bool = False
    offline: bool = False

    def to_json(self):
        d = asdict(self)
        d["shards"] = str(self.shards)
        d["output"] = str(self.output)
        return d

    def fingerprint(self):
        """sha256 of what decides the trained weights: a checkpoint resumes only
        under the same fingerprint. The budget, checkpoint cadence, evaluation and
        merge may change between sessions."""
        d = self.to_json()
        for k in ("budget_hours", "checkpoint_minutes", "eval_every", "eval_max_packs", "merge",
                  "restart", "offline", "compliance", "recipe", "device"):
            d.pop(k, None)
        d["base"].pop("id_from", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def _build(cls, data, where):
    if not isinstance(data, dict):
        raise TrainerError(f"settings: `{where}` must be an object")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TrainerError(f"settings: unknown key(s) {', '.join(unknown)} in `{where}`",
                           hint=f"known keys: {', '.join(sorted(known))}")
    return data


def parse(data):
    """Settings from a decoded JSON object; every value checked."""
    d = dict(_build(Settings, data, "settings"))
    for req in ("shards", "output", "base"):
        if req not in d:
            raise TrainerError(f"settings: `{req}` is required")
    if d.get("format", FORMAT) != FORMAT:
        raise TrainerError(f"settings: format is {d.get('format')!r}, expected {FORMAT!r}")
    base = d["base"]
    if isinstance(base, str):
        base = {"model": base}
    base = Base(**_build(Base, base, "base"))
    if not base.id:
        base.id = base.model
    lora = Lora(**_build(Lora, d.get("lora") or {}, "lora"))
    if isinstance(lora.targets, str):
        lora.targets = [lora.targets]
    d["base"], d["lora"] = base, lora
    d["shards"], d["output"] = Path(d["shards"]), Path(d["output"])
    s = Settings(**d)
    problems = []
    if s.method not in METHODS:
        problems.append(f"method {s.method!r} is not one of {', '.join(METHODS)}")
    if s.attention not in ATTENTION:
        problems.append(f"attention {s.attention!r} is not one of {', '.join(ATTENTION)}")
    if s.device not in DEVICES:
        problems.append(f"device {s.device!r} is not one of {', '.join(DEVICES)}")
    if not 0 < s.learning_rate < 1:
        problems.append(f"learning_rate must be in (0, 1), got {s.learning_rate}")
    if s.micro_batch < 1 or s.grad_accum < 1:
        problems.append("micro_batch and grad_accum must be at least 1")
    if not 0 <= s.warmup <= 0.5:
        problems.append(f"warmup must be in [0, 0.5], got {s.warmup}")
    if not s.budget_hours > 0:
        problems.append(f"budget_hours must be positive, got {s.budget_hours}")
    if not s.checkpoint_minutes > 0:
        problems.append(f"checkpoint_minutes must be positive, got {s.checkpoint_minutes}")
    for k in ("epochs", "max_tokens", "max_steps", "eval_every"):
        v = getattr(s, k)
        if v is not None and not v > 0:
            problems.append(f"{k} must be positive, got {v}")
    if s.lora.rank < 1 or not s.lora.alpha > 0 or not 0 <= s.lora.dropout < 1:
        problems.append("lora: rank >= 1, alpha > 0 and dropout in [0, 1) are required")
    if problems:
        raise TrainerError("settings: " + "; ".join(problems))
    return s


def load(path):
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TrainerError(f"settings file `{path}` does not exist") from None
    except json.JSONDecodeError as e:
        raise TrainerError(f"settings file `{path}` is not valid JSON: {e}") from None
    return parse(data)
