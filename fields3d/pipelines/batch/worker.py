"""One shape of a batch, as a worker runs it: :func:`run_shape` (in a pool process or a Ray task).

A worker gets a plain dict (picklable, the same for both executors) and returns the shape's
manifest record; errors of the shape are caught and recorded, so only the death of the process
itself reaches the executor. Imports of torch and the pipeline happen here, in the worker.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import time
from pathlib import Path

THREAD_VARIABLES = ("FIELDS3D_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def set_threads(n: int) -> None:
    """Use ``n`` threads in torch and in our core (and tell libraries started later, by environment)."""
    n = max(1, int(n))
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)
    import torch

    from ... import _core_ops

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    _core_ops.set_num_threads(n)


def run_shape(task: dict) -> dict:
    """Reconstruct one shape and return its manifest record (see :mod:`.manifest`).

    ``task``: ``name``, ``input``, ``output`` (the mesh path), ``gt`` (or None), ``settings`` (the
    other :class:`fields3d.pipelines.recon.ReconConfig` fields), ``threads`` and ``fingerprint``.
    """
    start = time.perf_counter()
    # failed until it is done; seconds and finished are set at the end
    record = failed_record(task, None, None) | {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        set_threads(task["threads"])
        from ...errors import FieldsError, InputError, ModelNotFound
        from ..recon import ReconConfig, reconstruct

        try:
            config = ReconConfig(
                input=task["input"], output=task["output"], gt=task["gt"], **task["settings"]
            )
            result = reconstruct(config, progress=False)
        except (InputError, ModelNotFound) as exc:
            record.update(error=str(exc), error_kind="input")
        except FieldsError as exc:
            record.update(error=str(exc), error_kind="error")
        else:
            report = result.report
            record.update(
                status="done",
                outputs={k: str(p) for k, p in result.paths.items()},
                mesh=report["mesh"],
                metrics=report.get("metrics", {}),
                device=report["config"]["device"],
                timings=report["timings"],
            )
    except Exception as exc:  # any failure of one shape is recorded; the batch goes on
        from ...errors import first_line

        record.update(error=f"{type(exc).__name__}: {first_line(exc)}", error_kind="error")
    record["seconds"] = time.perf_counter() - start
    record["finished"] = _now()
    return record


def pool_worker(conn, threads: int) -> None:
    """A local pool process: set the threads, then run the tasks received on ``conn`` one by one
    until None or the driver's end closes."""
    set_threads(threads)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if task is None:
            return
        try:
            conn.send(run_shape(task))
        except (BrokenPipeError, OSError):
            return


def ray_task(task: dict) -> dict:
    """What a Ray task runs: :func:`run_shape`, with the threads Ray granted it."""
    return run_shape(task)


def failed_record(task: dict, error: str | None, kind: str | None, seconds: float = 0.0) -> dict:
    """The record of a shape whose worker died (or whose task Ray gave up on); :func:`run_shape`
    starts from it."""
    return {
        "name": task["name"],
        "input": task["input"],
        "gt": task["gt"],
        "status": "failed",
        "outputs": {},
        "mesh": {},
        "metrics": {},
        "error": error,
        "error_kind": kind,
        "fingerprint": task["fingerprint"],
        "seconds": seconds,
        "finished": _now(),
    }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def relative_outputs(record: dict, outdir: Path) -> dict:
    """``record`` with its output paths made relative to ``outdir`` (where they are under it)."""
    outs = {}
    for kind, path in record.get("outputs", {}).items():
        p = Path(path)
        try:
            outs[kind] = str(p.resolve().relative_to(outdir.resolve()))
        except ValueError:
            outs[kind] = str(p)
    return {**record, "outputs": outs}
