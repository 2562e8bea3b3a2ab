"""The wall-clock budget and the step plan.

The budget counts every second the trainer runs, across resumed sessions, from the
moment the process starts (model loading included). Before each optimizer step the
trainer asks whether one more step, at the pace measured so far, still leaves the
reserve: the time to write the final adapter, evaluate, merge when asked, and write
the report, each measured when it has happened once and estimated before. When it
does not, training stops and the finishing work runs inside the budget.

The plan: the steps the recipe asks for (epochs, a token budget or `max_steps`)
are cut, after a few measured steps, to the steps the budget affords, and the
cosine schedule is fitted to that number, so that a budget-limited run still ends
its schedule at a low learning rate instead of being cut off at its peak.
"""

import math
import statistics
import time

# Steps measured before the plan is fitted to the budget (the first step after a
# start or a resume is slower and is never measured).
CALIBRATION_STEPS = 3
# Headroom on every estimate.
SAFETY = 1.2


class Budget:
    def __init__(self, hours, spent_before=0.0, started=None, clock=time.monotonic):
        self.total = hours * 3600.0
        self.spent_before = spent_before
        self.clock = clock
        self.started = clock() if started is None else started

    def spent(self):
        return self.spent_before + self.clock() - self.started

    def left(self):
        return self.total - self.spent()


class Planner:
    """Step times, finishing-work estimates and the planned number of steps."""

    def __init__(self, budget, requested, done=0, merge_estimate=0.0):
        self.budget = budget
        self.requested = requested
        self.total = requested          # the schedule's length
        self.step_times = []
        self.first_step_s = None        # the session's first step, slower than the rest
        self.save_s = None              # measured writing of an adapter + checkpoint
        self.eval_s = None              # measured evaluation pass
        self.eval_estimate = 0.0
        self.merge_estimate = merge_estimate
        self.fitted = False
        self.calibration_start = done

    def record_step(self, seconds, first):
        if first:
            self.first_step_s = seconds
        else:
            self.step_times.append(seconds)
            del self.step_times[:-50]

    def step_estimate(self):
        """The median of the recent steps; the first step's time until there are any."""
        if not self.step_times:
            return self.first_step_s
        return statistics.median(self.step_times)

    def reserve(self):
        """Seconds kept for the finishing work."""
        save = self.save_s if self.save_s is not None else 2.0
        ev = self.eval_s if self.eval_s is not None else self.eval_estimate
        return SAFETY * (save + ev + self.merge_estimate) + 1.0

    def can_step(self):
        """Whether one more step fits before the reserve. Before any step of the
        session is measured, only the reserve is checked."""
        est = self.step_estimate() or 0.0
        return self.budget.left() - self.reserve() > SAFETY * est

    def affordable(self):
        est = statistics.median(self.step_times) if self.step_times else None
        if not est:
            return None
        return max(0, math.floor((self.budget.left() - self.reserve()) / (SAFETY * est)))

    def fit(self, done):
        """Fit the schedule to the budget once enough steps are measured; later,
        shorten it when the pace has fallen behind. Returns a message when the plan
        changed."""
        if len(self.step_times) < CALIBRATION_STEPS and done - self.calibration_start < self.total:
            return None
        afford = self.affordable()
        if afford is None:
            return None
        end = min(self.requested, done + afford)
        if not self.fitted:
            self.fitted = True
            old, self.total = self.total, max(end, done)
            if self.total < self.requested:
                return (f"plan: the budget affords {self.total} of the {self.requested} requested steps "
                        f"({self.step_estimate():.2f} s a step); the schedule is fitted to {self.total}")
            return f"plan: {self.total} steps ({self.step_estimate():.2f} s a step) fit in the budget"
        if end < self.total:
            old, self.total = self.total, max(end, done)
            return f"plan: the pace fell behind; the schedule is shortened from {old} to {self.total} steps"
        return None


def cosine_lr(base, step, total, warmup_fraction):
    """The learning rate for optimizer step `step` (0-based) of `total`: linear
    warmup over `warmup_fraction` of the steps, then a cosine decay to zero."""
    warm = math.ceil(warmup_fraction * total) if warmup_fraction > 0 else 0
    if step < warm:
        return base * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
