"""Serving a running optimisation: ``LiveTraining``, the viewer's
:class:`~fields3d.pipelines.hooks.TrainingHook`.

The training thread calls :meth:`LiveTraining.step` between steps. It records the curve, and
only when a viewer asked for one (:meth:`request_snapshot`) copies the model there, where the
weights are consistent; the copy is what every client renders until the next one, so a frame
never mixes two steps. With no one asking, a step costs a lock and a list append: training with
the viewer open but idle runs as fast as without it. Pause blocks the training thread in
:meth:`step` (not counted as training time); stop makes :meth:`should_stop` true, and the loop
saves and ends as if its budget ran out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..pipelines.hooks import TrainingHook


class LiveTraining(TrainingHook):
    """The state a viewer shares with a training loop (module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resume = threading.Event()
        self._resume.set()
        self._stop = False
        self._want = False
        self._model = None
        self.step_count = 0
        self.curve: list[tuple[int, dict[str, float]]] = []
        self.snapshots = 0
        self.on_snapshot: Callable[[], None] | None = None  # called after each new snapshot
        self.started = time.monotonic()

    # the training thread's side
    def step(self, step: int, metrics: dict[str, float], snapshot: Callable[[], object]) -> None:
        with self._lock:
            self.step_count = step
            self.curve.append((step, dict(metrics)))
            want, self._want = self._want, False
        if want:
            model = snapshot()
            with self._lock:
                self._model = model
                self.snapshots += 1
            if self.on_snapshot is not None:
                self.on_snapshot()
        while not self._resume.wait(0.1):  # paused
            if self._stop:
                break

    def should_stop(self) -> bool:
        return self._stop

    # the viewer's side
    def request_snapshot(self) -> None:
        """Ask for a copy of the model at the next step."""
        with self._lock:
            self._want = True

    def model(self):
        """The latest snapshot (None before the first)."""
        with self._lock:
            return self._model

    def pause(self) -> None:
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    def stop(self) -> None:
        """End the run at the next step (a paused run too); the loop then saves its checkpoint."""
        self._stop = True
        self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop
