"""One client's render state: ``RenderSession``.

Each connected browser tab gets a session with a one-slot mailbox and a render thread. A new
camera (or a new setting) replaces whatever request waits in the slot; the thread always renders
the latest one, so requests never queue behind a slow frame. Progressive refinement: while the
camera moves (its last change is younger than ``settle`` seconds) frames are rendered at the
``preview`` side, and once it rests one frame at the full resolution cap follows. A frame whose
request was replaced while it rendered is dropped, never delivered: the client only sees frames of
its newest camera. Renders of all sessions share one lock (``render_lock``): on a CPU two frames
at once would each take twice as long.

Errors in a render are caught and reported through ``on_error`` (a bad request must not end the
thread or the server); :meth:`close` ends the thread (a tab closed mid-render: the frame is
dropped).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .camera import MIN_SIDE, View


@dataclass
class Request:
    """What a client asked for: its ``view``, settings the renderer reads (``look``), the cap of
    the picture's longer side, and a ``version`` that grows with every change."""

    view: View
    look: object
    max_side: int
    version: int = 0
    changed: float = field(default_factory=time.monotonic)


@dataclass
class SessionStats:
    rendered: int = 0  # frames rendered
    delivered: int = 0  # frames sent to the client
    dropped: int = 0  # frames of a replaced request, not sent
    errors: int = 0
    last_side: int = 0  # longer side of the last delivered frame
    last_seconds: float = 0.0  # time of the last render


class RenderSession:
    """Renders the latest request of one client on its own thread (module docstring).

    Args:
        render: ``render(request, side) -> frame`` (a dict with ``image`` ``(H, W, 3)`` uint8).
        deliver: ``deliver(frame, request)`` sends a frame to the client.
        preview: the longer side while the camera moves (capped by the request's ``max_side``).
        settle: seconds without a change after which the full resolution follows.
        render_lock: shared by the sessions of one server (one frame renders at a time).
        on_error: called with the exception of a failed render or delivery.
    """

    def __init__(
        self,
        render: Callable[[Request, int], dict],
        deliver: Callable[[dict, Request], None],
        *,
        preview: int = 128,
        settle: float = 0.25,
        render_lock: threading.Lock | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._render, self._deliver = render, deliver
        self.preview, self.settle = max(MIN_SIDE, preview), settle
        self._lock = render_lock or threading.Lock()
        self._on_error = on_error
        self._cond = threading.Condition()
        self._request: Request | None = None
        self._version = 0
        self._done_version, self._done_side = -1, 0
        self._closed = False
        self._last: tuple[dict, Request] | None = None  # the last frame delivered, its request
        self.stats = SessionStats()
        self._thread = threading.Thread(target=self._run, name="fields3d-view-render", daemon=True)
        self._thread.start()

    def submit(self, view: View, look, max_side: int, *, moving: bool = True) -> int:
        """Put a request in the slot (replacing any waiting one); returns its version. ``moving``:
        a camera change (preview first); False for a setting change (full resolution at once)."""
        with self._cond:
            self._version += 1
            changed = time.monotonic() if moving else time.monotonic() - self.settle
            self._request = Request(view, look, max_side, self._version, changed)
            self._cond.notify_all()
            return self._version

    def resend(self) -> None:
        """Deliver the last frame again if it shows the newest request at full resolution (a page
        that was still loading dropped it), else render the request again."""
        with self._cond:
            last, r = self._last, self._request
        if last is not None and r is not None and last[1] is r and not self.busy:
            try:
                self._deliver(*last)
                self.stats.delivered += 1
                return
            except Exception as exc:
                self._report(exc)
        self.refresh()

    def refresh(self) -> None:
        """Render the current request again at full resolution (the model changed)."""
        with self._cond:
            if self._request is not None:
                r = self._request
                self.submit(r.view, r.look, r.max_side, moving=False)

    @property
    def request(self) -> Request | None:
        return self._request

    def close(self, timeout: float = 5.0) -> None:
        """End the render thread (a frame being rendered is dropped)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def busy(self) -> bool:
        """True while the newest request's full-resolution frame is not delivered yet."""
        with self._cond:
            r = self._request
            return r is not None and (self._done_version != r.version or self._done_side < _full(r))

    @property
    def closed(self) -> bool:
        return self._closed

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until the newest request's full-resolution frame is delivered (tests, benchmarks)."""
        end = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                r = self._request
                if (
                    r is not None
                    and self._done_version == r.version
                    and self._done_side == min(r.max_side, _full(r))
                ):
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return False

    def _next(self) -> tuple[Request, int] | None:
        """The request to render and its side, waiting until there is one (None: closed)."""
        with self._cond:
            while not self._closed:
                r = self._request
                if r is not None:
                    full = _full(r)
                    if self._done_version != r.version:
                        moving = time.monotonic() - r.changed < self.settle
                        return r, (min(self.preview, full) if moving else full)
                    if self._done_side < full:
                        age = time.monotonic() - r.changed
                        if age >= self.settle:
                            return r, full
                        self._cond.wait(self.settle - age)
                        continue
                self._cond.wait(0.5)
        return None

    def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            request, side = job
            try:
                with self._lock:
                    if self._stale(request):
                        self.stats.dropped += 1
                        continue
                    start = time.perf_counter()
                    frame = self._render(request, side)
                    self.stats.last_seconds = time.perf_counter() - start
                self.stats.rendered += 1
                if self._stale(request):
                    self.stats.dropped += 1
                    continue
                self._deliver(frame, request)
                self.stats.delivered += 1
                self.stats.last_side = max(np.shape(frame["image"])[:2])
                with self._cond:
                    self._last = (frame, request)
            except Exception as exc:
                self._report(exc)
            with self._cond:
                self._done_version, self._done_side = request.version, side
                self._cond.notify_all()

    def _report(self, exc: BaseException) -> None:
        self.stats.errors += 1
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:
                pass

    def _stale(self, request: Request) -> bool:
        return self._closed or self._version != request.version


def _full(request: Request) -> int:
    return max(MIN_SIDE, request.max_side)
