"""The batch's progress bar: shapes done / failed / running, elapsed time and ETA (rich)."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class BatchProgress:
    """``with BatchProgress(total, enabled) as bar: bar.start(task); bar.finish(record)``."""

    def __init__(self, total: int, enabled: bool = True):
        self.done = self.failed = self.running = 0
        self._progress = Progress(
            TextColumn("[bold]shapes"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            disable=not enabled,
        )
        self._task = self._progress.add_task("shapes", total=total, counts=self._counts())

    def __enter__(self) -> BatchProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def start(self, task: dict) -> None:
        self.running += 1
        self._progress.update(self._task, counts=self._counts())

    def finish(self, record: dict) -> None:
        self.running = max(0, self.running - 1)
        if record["status"] == "done":
            self.done += 1
        else:
            self.failed += 1
        self._progress.update(self._task, advance=1, counts=self._counts())

    def _counts(self) -> str:
        return f"done {self.done} · failed {self.failed} · running {self.running}"
