"""curate's trainer: fine-tune a base model on curate's training shards.

`curate train RECIPE` resolves the recipe's `[train]` section into a settings file
and runs `python -m curate_train --settings FILE`. The trainer

- reads the Megatron shards memory-mapped (no re-tokenizing): one pack is one
  flattened row, position ids restart at every document, and attention never
  crosses a document (flash-attention varlen on a GPU, a block-diagonal mask with
  SDPA elsewhere);
- trains the tokens the loss mask marks, never the first token of a document;
- uses QLoRA (4-bit NF4), LoRA or full fine-tuning, bf16 on a GPU, gradient
  checkpointing, a cosine schedule with warmup and gradient accumulation;
- plans its steps from measured throughput so that the wall-clock budget is never
  overrun, checkpoints, resumes, and always leaves a usable adapter;
- refuses a base model that the verdicts in the shards' manifest do not allow, and
  copies the data's obligations (NOTICE, dataset card, license) next to the weights.

See docs/trainer.md in the repository.
"""

__version__ = "0.1.0"

# Exit codes, the same as curate's.
EXIT_OK = 0
EXIT_POLICY = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class TrainerError(Exception):
    """Bad input or an environment the trainer cannot work in (exit 2)."""

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.hint = hint


class Refusal(Exception):
    """The compliance verdicts do not allow this training run (exit 1)."""

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.hint = hint
