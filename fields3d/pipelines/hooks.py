"""``TrainingHook``: what a training loop tells an observer between its steps, and how the observer
answers (pause, stop). The loops call it; they never know who listens (a live viewer, a test).

A loop calls ``hook.step(step, metrics, snapshot)`` after each optimisation step, outside its
timed section, and stops early when ``hook.should_stop()`` says so (then saves as at the end).
``snapshot()`` returns a copy of the model as it stands between two steps, detached from the
training weights; it is only valid to call from inside ``step`` (the weights are consistent
there), so an observer on another thread asks for one and takes it at the next step. ``step`` may
block (a paused run waits there; the waiting is not counted as training time).

    class Printer(TrainingHook):
        def step(self, step, metrics, snapshot):
            print(step, metrics["psnr"])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class TrainingHook:
    """The observer interface of the training loops; this base class observes nothing."""

    def step(self, step: int, metrics: dict[str, float], snapshot: Callable[[], Any]) -> None:
        """After optimisation step ``step`` (1-based count of steps done): ``metrics`` holds floats
        such as ``loss`` and ``psnr``; ``snapshot()`` a consistent copy of the model."""

    def should_stop(self) -> bool:
        """True to end the run now; the loop then saves its checkpoint as at a normal end."""
        return False
