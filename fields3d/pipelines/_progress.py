"""Progress display for the pipelines: one line per stage, a bar for the optimisation steps."""

from __future__ import annotations

import contextlib
import time

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


class Stages:
    """``with Stages(enabled) as s: with s.stage("fit", total=800) as update: update(step, "loss ...")``."""

    def __init__(self, enabled: bool):
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            disable=not enabled,
        )

    def __enter__(self) -> Stages:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    @contextlib.contextmanager
    def stage(self, name: str, total: int | None = None):
        task = self._progress.add_task(name, total=total or 1, info="")
        last = [0.0]

        def update(completed: int, info: str = "") -> None:
            now = time.perf_counter()
            if now - last[0] > 0.1 or completed == total:
                self._progress.update(task, completed=completed, info=info)
                last[0] = now

        yield update
        self._progress.update(task, completed=total or 1)
