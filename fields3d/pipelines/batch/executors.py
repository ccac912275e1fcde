"""Where the shapes run: :class:`LocalPool` (worker processes on this machine) or :class:`RayExecutor`.

Both take the tasks still to do and call ``on_start(task)`` / ``on_done(record)`` in the driver as
shapes start and finish; the driver alone writes the manifest. A task's own errors come back as
failed records from :func:`.worker.run_shape`; what an executor handles is the death of the
process running it.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import wait

from ...errors import BackendUnavailable, first_line
from .worker import failed_record, pool_worker, ray_task

RAY_MISSING = (
    "--ray needs Ray, which is not installed; install it with pip install 'fields3d[ray]' "
    "(the same version on every machine of the cluster), or leave out --ray to use the local pool"
)


class LocalPool:
    """``workers`` processes (spawned, each running one shape at a time with ``threads`` threads).

    A process that dies mid-shape (killed, out of memory) fails that shape, with the signal or
    exit code in the error, and is replaced; the other shapes go on.
    """

    def __init__(self, workers: int, threads: int):
        self.workers = workers
        self.threads = threads
        self.pids: dict[str, int] = {}  # shape name -> pid of the process running it

    def run(self, tasks: list[dict], on_start: Callable, on_done: Callable) -> None:
        ctx = multiprocessing.get_context("spawn")
        todo = deque(tasks)
        slots: list[dict] = []
        try:
            for _ in range(min(self.workers, len(tasks))):
                slots.append(self._start(ctx))
            while todo or any(s["task"] is not None for s in slots):
                for slot in slots:
                    if slot["task"] is None and todo:
                        slot["task"], slot["since"] = todo.popleft(), time.perf_counter()
                        slot["conn"].send(slot["task"])
                        self.pids[slot["task"]["name"]] = slot["proc"].pid
                        on_start(slot["task"])
                busy = [s for s in slots if s["task"] is not None]
                ready = wait([s["conn"] for s in busy] + [s["proc"].sentinel for s in busy], 0.5)
                for slot in busy:
                    if slot["conn"] in ready or slot["proc"].sentinel in ready:
                        record = self._collect(slot)
                        if record is None:  # woken, yet no result and still alive: wait on
                            continue
                        if record is _DIED:  # record the shape failed, start another process
                            record = failed_record(
                                slot["task"],
                                _death(slot["proc"]),
                                "worker",
                                time.perf_counter() - slot["since"],
                            )
                            slot["conn"].close()
                            slot.update(self._start(ctx))  # idle
                        self.pids.pop(record["name"], None)
                        slot["task"] = None
                        on_done(record)
        finally:
            for slot in slots:
                _stop(slot)

    def _start(self, ctx) -> dict:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=pool_worker, args=(child, self.threads), daemon=True)
        proc.start()
        child.close()
        return {"proc": proc, "conn": parent, "task": None, "since": 0.0}

    @staticmethod
    def _collect(slot: dict):
        """The slot's record, ``_DIED`` when its process is gone without one, else None."""
        try:
            if slot["conn"].poll():
                return slot["conn"].recv()
        except (EOFError, OSError):
            pass
        return None if slot["proc"].is_alive() else _DIED


_DIED = object()


def _death(proc) -> str:
    proc.join(1)
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the worker process died ({name}) while reconstructing this shape"
    return f"the worker process exited with status {code} while reconstructing this shape"


def _stop(slot: dict) -> None:
    proc = slot["proc"]
    if proc.is_alive() and slot["task"] is None:
        try:
            slot["conn"].send(None)
        except OSError:
            pass
        proc.join(2)
    if proc.is_alive():
        proc.terminate()
        proc.join(2)
    if proc.is_alive():
        proc.kill()
        proc.join()
    slot["conn"].close()


def import_ray():
    """The ``ray`` module, or BackendUnavailable saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BackendUnavailable(RAY_MISSING) from None
    return ray


class RayExecutor:
    """Each shape a Ray task with ``cpus`` CPUs and ``gpus`` GPUs, retried ``retries`` times when
    its worker process dies (Ray's ``max_retries``; a shape's own errors are not retried).

    ``address``: None starts a local Ray with ``local_cpus`` CPUs for this batch (stopped at the
    end); ``"auto"`` or ``"HOST:PORT"`` joins a running cluster. Every machine of the cluster
    needs fields3d (and its extras) installed at the same version, and INPUTS and OUTDIR on a
    file system all of them see.
    """

    def __init__(
        self,
        address: str | None,
        cpus: float,
        gpus: float,
        retries: int,
        local_cpus: int | None = None,
    ):
        self.address = address
        self.cpus = cpus
        self.gpus = gpus
        self.retries = retries
        self.local_cpus = local_cpus
        self.slots = 1

    def run(self, tasks: list[dict], on_start: Callable, on_done: Callable) -> None:
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            import logging

            kwargs = {"address": self.address} if self.address else {"num_cpus": self.local_cpus}
            try:
                ray.init(
                    **kwargs,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    configure_logging=False,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
                raise BackendUnavailable(
                    f"cannot start or join {where}: {first_line(exc)}; start a cluster with "
                    "`ray start --head` (then --ray-address auto), or leave out --ray-address "
                    "for a local Ray"
                ) from None
        try:
            self._run(ray, tasks, on_start, on_done)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, tasks, on_start, on_done) -> None:
        remote = ray.remote(
            num_cpus=self.cpus,
            num_gpus=self.gpus,
            max_retries=self.retries,
            retry_exceptions=False,
        )(ray_task)
        total_cpus = ray.cluster_resources().get("CPU", 1)
        self.slots = max(1, int(total_cpus // max(self.cpus, 1e-9)))
        pending = {}
        for task in tasks:
            pending[remote.options(name=f"recon {task['name']}").remote(task)] = (
                task,
                time.perf_counter(),
            )
        for task in tasks[: self.slots]:  # Ray does not say which have started; the first fit
            on_start(task)
        queued = deque(tasks[self.slots :])
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in ready:
                    task, since = pending.pop(ref)
                    try:
                        record = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        record = failed_record(
                            task,
                            f"Ray gave up on this shape after {self.retries + 1} attempts: "
                            f"{type(exc).__name__}",
                            "worker",
                            time.perf_counter() - since,
                        )
                    on_done(record)
                    if queued:
                        on_start(queued.popleft())
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
