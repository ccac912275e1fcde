"""The viser server of ``fields3d view`` and ``--view``: ``Viewer``, ``free_port``.

The scene holds what the browser draws itself (meshes, point clouds, the field's box, occupancy
cells, training cameras as frustums with their pictures); a field is rendered by our core for
each client from that client's camera (:mod:`.session`, :mod:`.frames`) and shown as the
background image of that client alone. GUI values are shared by every tab; the camera is each
tab's own.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import FieldsError, InputError
from . import require_viser
from .camera import MAX_SIDE, MIN_SIDE, View, view_camera
from .frames import AXES, MODES, Look, field_box, render_frame
from .live import LiveTraining
from .session import RenderSession
from .sources import Source

DEFAULT_PORT = 8080
REFRESH_SHARE = 20  # live frames: wait 20 x the last render's time between re-renders (5%)
PRESETS = {"front": (0.0, -1.0, 0.35), "side": (1.0, 0.0, 0.35), "top": (0.0, -0.02, 1.0)}


def free_port(host: str = "127.0.0.1", start: int = DEFAULT_PORT, tries: int = 200) -> int:
    """The first port from ``start`` on that nothing listens on at ``host``."""
    for port in range(start, start + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise InputError(f"no free port from {start} to {start + tries - 1} on {host}; pass --port")


class Viewer:
    """A viser server showing ``source`` (or the model of a running ``live`` training).

    Args:
        source: what to show (:func:`~fields3d.viewer.sources.open_source`); for live training,
            a Source of kind ``nerf`` or ``sdf`` without a model (the snapshots are rendered).
        host, port: where to listen (``port`` None: :func:`free_port`).
        live: the :class:`~fields3d.viewer.live.LiveTraining` hook of a running fit, or None.
        preview, max_side: longer side of frames while the camera moves, and at rest.
        refresh: the fewest seconds between re-renders of live training frames (0: only on
            camera moves); longer when rendering would take over 1/20 of the time.
    """

    def __init__(
        self,
        source: Source,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        live: LiveTraining | None = None,
        preview: int = 128,
        max_side: int = 512,
        refresh: float = 2.0,
    ) -> None:
        viser = require_viser()
        self.source, self.live = source, live
        self.host = host
        self.port = free_port(host) if port is None else port
        self.preview, self.refresh = preview, refresh
        self.sessions: dict[int, RenderSession] = {}
        self.render_lock = threading.Lock()
        self.errors: list[str] = []
        self.saved: list[Path] = []
        self._sessions_lock = threading.Lock()
        self._closed = threading.Event()
        self.server = viser.ViserServer(host=host, port=self.port, verbose=False)
        self._rendered = source.model is not None or live is not None
        self._scene()
        self._gui(max_side)
        self._initial_camera()
        self.server.on_client_connect(self._connect)
        self.server.on_client_disconnect(self._disconnect)
        if live is not None:
            live.on_snapshot = self._snapshot_arrived
            self._ticker = threading.Thread(
                target=self._tick, name="fields3d-view-live", daemon=True
            )
            self._ticker.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def model(self):
        """The model to render now: the source's, or the latest snapshot of live training."""
        if self.live is not None:
            return self.live.model()
        return self.source.model

    def close(self) -> None:
        """Stop the render threads and the server."""
        self._closed.set()
        with self._sessions_lock:
            sessions = list(self.sessions.values())
            self.sessions.clear()
        for s in sessions:
            s.close(timeout=0)
        for s in sessions:  # a frame still rendering in the core must end before the process does
            s.close(timeout=60)
        self.server.stop()

    # --- scene -----------------------------------------------------------------------------
    def _scene(self) -> None:
        src, scene = self.source, self.server.scene
        box = src.box
        self._box = None
        self._diag = float(np.linalg.norm(box[1] - box[0])) if box is not None else 1.0
        if src.verts is not None:
            scene.add_mesh_simple(
                "/mesh",
                src.verts.astype(np.float32),
                src.faces.astype(np.uint32),
                color=(190, 200, 225),
            )
        if src.points is not None:
            colors = src.colors if src.colors is not None else (90, 140, 220)
            scene.add_point_cloud(
                "/points",
                src.points.astype(np.float32),
                colors,
                point_size=self._diag / 400,
                precision="float32",
            )
        if box is not None:
            self._box = scene.add_line_segments(
                "/box", box_edges(box), (120, 120, 120), thickness=self._diag / 600
            )
        self._frustums = []
        if src.cameras is not None:
            self._add_frustums(src.cameras, src.pictures)
        self._cells = None

    def _add_frustums(self, cameras, pictures) -> None:
        c2w = cameras.c2w.detach().double().cpu().numpy()
        n = min(len(c2w), 200)
        tf = require_viser().transforms
        for i in range(n):
            rot = c2w[i, :3, :3] @ np.diag([1.0, -1.0, -1.0])  # OpenGL -> OpenCV axes
            fov = 2 * math.atan(cameras.height / 2 / float(cameras.fy[i]))
            image = pictures[i] if pictures is not None and i < len(pictures) else None
            self._frustums.append(
                self.server.scene.add_camera_frustum(
                    f"/cameras/{i:03d}",
                    fov,
                    cameras.width / cameras.height,
                    scale=self._diag / 25,
                    thickness=self._diag / 1500,
                    color=(60, 90, 200),
                    image=image,
                    format="jpeg",
                    wxyz=tf.SO3.from_matrix(rot).wxyz,
                    position=c2w[i, :3, 3],
                )
            )

    def _show_cells(self, visible: bool) -> None:
        model = self.model()
        if self._cells is not None:
            self._cells.remove()
            self._cells = None
        if not visible or model is None or not hasattr(model, "grid"):
            return
        grid = model.grid
        index = torch.nonzero((grid.occupied & grid.live.to(grid.occupied.device)).flatten())[:, 0]
        if len(index) > 100_000:
            index = index[torch.randperm(len(index))[:100_000]]
        points = grid.cell_points(index, jitter=False).cpu().numpy().astype(np.float32)
        size = float(2 * min(grid.half)) / grid.resolution
        self._cells = self.server.scene.add_point_cloud(
            "/occupancy", points, (240, 150, 40), point_size=size * 0.6, precision="float32"
        )

    def _initial_camera(self) -> None:
        box = self.source.box
        if box is None:
            return
        centre = (box[0] + box[1]) / 2
        up = self._up()
        eye = centre + self._preset_offset("front", up)
        cam = self.server.initial_camera
        cam.up = tuple(up)
        cam.look_at = tuple(centre)
        cam.position = tuple(eye)
        cam.fov = math.radians(50)

    def _up(self) -> np.ndarray:
        """+z for NeRF scenes (Blender's NeRF-synthetic convention), +y for the rest."""
        nerf = self.source.kind in ("nerf", "scene")
        return np.array([0.0, 0.0, 1.0]) if nerf else np.array([0.0, 1.0, 0.0])

    def _preset_offset(self, name: str, up: np.ndarray) -> np.ndarray:
        x, y, z = PRESETS[name]
        if up[2] == 1.0:
            d = np.array([x, y, z])
        else:  # y up: the same views with (x, z, y)
            d = np.array([x, z, -y])
        return d / np.linalg.norm(d) * 1.1 * self._diag

    # --- GUI -------------------------------------------------------------------------------
    def _gui(self, max_side: int) -> None:
        gui = self.server.gui
        src = self.source
        rendered = self._rendered
        with gui.add_folder("Render"):
            self.mode = gui.add_dropdown("Mode", MODES, initial_value="rgb", visible=rendered)
            self.cap = gui.add_slider(
                "Resolution cap", 64, 1024, 32, min(max_side, 1024), visible=rendered
            )
            self.background = gui.add_rgb("Background", (255, 255, 255))
            self.axis = gui.add_dropdown("Slice axis", AXES, initial_value="z", visible=rendered)
            self.offset = gui.add_slider("Slice offset", 0.0, 1.0, 0.01, 0.5, visible=rendered)
        box = src.box if src.box is not None else np.array([[-1.0] * 3, [1.0] * 3])
        with gui.add_folder("Crop box", expand_by_default=False):
            self.crop = gui.add_checkbox("Crop", False, visible=rendered)
            step = float(self._diag) / 200
            self.crop_min = gui.add_vector3("Min", tuple(box[0]), step=step)
            self.crop_max = gui.add_vector3("Max", tuple(box[1]), step=step)
        with gui.add_folder("Show"):
            self.show_box = gui.add_checkbox("Bounding box", True)
            self.show_cells = gui.add_checkbox("Occupancy cells", False, visible=rendered)
            self.show_cameras = gui.add_checkbox("Training cameras", bool(self._frustums))
        with gui.add_folder("Views"):
            for name in PRESETS:
                gui.add_button(name.capitalize()).on_click(
                    lambda event, name=name: self._preset(event.client, name)
                )
        with gui.add_folder("Save"):
            self.screenshot = gui.add_button("Save screenshot", visible=rendered)
            self.mesh_resolution = gui.add_slider(
                "Mesh resolution", 32, 512, 32, 128, visible=rendered
            )
            self.extract = gui.add_button("Extract mesh", visible=rendered)
            self.turntable = gui.add_button(
                "Turntable GIF", visible=src.kind == "nerf" and self.live is None
            )
            self.status = gui.add_markdown("")
        for handle in (self.mode, self.cap, self.background, self.axis, self.offset, self.crop):
            handle.on_update(lambda _: self._settings_changed())
        for handle in (self.crop_min, self.crop_max):
            handle.on_update(lambda _: self.crop.value and self._settings_changed())
        self.show_box.on_update(
            lambda _: self._box is not None and setattr(self._box, "visible", self.show_box.value)
        )
        self.show_cameras.on_update(lambda _: self._toggle_frustums())
        self.show_cells.on_update(lambda _: self._show_cells(self.show_cells.value))
        self.screenshot.on_click(lambda event: self._guarded(self._save_screenshot, event.client))
        self.extract.on_click(lambda _: self._guarded(self._extract_mesh))
        self.turntable.on_click(lambda _: self._guarded(self._turntable))
        if self.live is not None:
            self._live_gui()

    def _live_gui(self) -> None:
        viser = require_viser()
        gui = self.server.gui
        with gui.add_folder("Training"):
            self.progress = gui.add_markdown("starting")
            self.curve = gui.add_uplot(
                (np.zeros(1), np.zeros(1)),
                (
                    viser.uplot.Series(label="step"),
                    viser.uplot.Series(label="value", stroke="blue"),
                ),
                title="train PSNR (dB)" if self.source.kind == "nerf" else "loss",
                aspect=1.6,
            )
            self.pause = gui.add_button("Pause")
            self.resume = gui.add_button("Resume", visible=False)
            self.stop = gui.add_button("Stop and save", color="red")
        self.pause.on_click(lambda _: self._set_paused(True))
        self.resume.on_click(lambda _: self._set_paused(False))
        self.stop.on_click(lambda _: self._stop())

    def _set_paused(self, paused: bool) -> None:
        (self.live.pause if paused else self.live.resume)()
        self.pause.visible, self.resume.visible = not paused, paused
        if paused:  # the cores are free: the field's own frame instead of the bake
            with self._sessions_lock:
                sessions = list(self.sessions.values())
            for s in sessions:
                s.refresh()

    def _stop(self) -> None:
        self.live.stop()
        self.pause.disabled = self.resume.disabled = self.stop.disabled = True

    def _tick(self) -> None:
        """Live training: the curve and the step count, and a new snapshot for the clients."""
        last_refresh = 0.0
        while not self._closed.wait(0.5):
            live = self.live
            curve = list(live.curve)
            state = "stopping" if live.stopping else "paused" if live.paused else "training"
            last = curve[-1][1] if curve else {}
            shown = ", ".join(f"{k} {v:.3g}" for k, v in last.items())
            self.progress.content = f"**{state}**: step {live.step_count}" + (
                f", {shown}" if shown else ""
            )
            if curve:
                keep = curve[:: max(1, len(curve) // 500)]
                steps = np.array([c[0] for c in keep], dtype=np.float64)
                values = np.array([_curve_value(c[1]) for c in keep])
                self.curve.data = (steps, values)
            with self._sessions_lock:
                sessions = list(self.sessions.values())
            # re-render from new weights at most every `refresh` seconds, and so that rendering
            # takes at most 1/REFRESH_SHARE of the time: the training keeps the cores
            # (and never while a frame of the last snapshot is still rendering)
            interval = max(
                self.refresh, REFRESH_SHARE * sum(s.stats.last_seconds for s in sessions)
            )
            now = time.monotonic()
            busy = any(s.busy for s in sessions)
            if sessions and (
                live.model() is None
                or (self.refresh and not busy and now - last_refresh >= interval)
            ):
                live.request_snapshot()
                last_refresh = now

    def _snapshot_arrived(self) -> None:
        if self.source.box is None:  # live training: the first snapshot tells where the field is
            model = self.live.model()
            self.source.box = field_box(model)
            self._diag = float(np.linalg.norm(self.source.box[1] - self.source.box[0]))
            self._box = self.server.scene.add_line_segments(
                "/box", box_edges(self.source.box), (120, 120, 120), thickness=self._diag / 600
            )
            self._initial_camera()
        with self._sessions_lock:
            sessions = list(self.sessions.values())
        for s in sessions:
            s.refresh()

    def _toggle_frustums(self) -> None:
        for f in self._frustums:
            f.visible = self.show_cameras.value

    def look(self) -> Look:
        crop = None
        if self.crop.value:
            crop = (tuple(self.crop_min.value), tuple(self.crop_max.value))
        bg = tuple(c / 255 for c in self.background.value)
        return Look(self.mode.value, bg, crop, self.axis.value, float(self.offset.value))

    def _settings_changed(self) -> None:
        look, cap = self.look(), int(self.cap.value)
        with self._sessions_lock:
            sessions = list(self.sessions.values())
        for s in sessions:
            if s.request is not None:
                s.submit(s.request.view, look, cap, moving=False)
        if not self._rendered:  # meshes and clouds: the background colour is all there is
            return

    def _preset(self, client, name: str) -> None:
        if client is None or self.source.box is None:
            return
        box = self.source.box
        centre = (box[0] + box[1]) / 2
        up = self._up()
        with client.atomic():
            client.camera.up_direction = tuple(up)
            client.camera.look_at = tuple(centre)
            client.camera.position = tuple(centre + self._preset_offset(name, up))

    def _guarded(self, fn, *args) -> None:
        """Run a button's work; a FieldsError or OSError becomes a status line, not a crash."""
        try:
            fn(*args)
        except (FieldsError, OSError, RuntimeError, ValueError) as exc:
            self.status.content = f"error: {exc}"
            self.errors.append(str(exc))

    def _next_path(self, pattern: str) -> Path:
        for k in range(10_000):
            path = self.source.save_dir / pattern.format(stem=self.source.stem, k=k)
            if not path.exists():
                return path
        raise InputError(f"too many files named like {pattern} in {self.source.save_dir}")

    def _save_screenshot(self, client) -> Path:
        """Render the client's view at the resolution cap; PNG beside the checkpoint."""
        from ..pipelines._common import write_png

        model = self.model()
        session = self.sessions.get(client.client_id) if client is not None else None
        if model is None or session is None or session.request is None:
            raise InputError("no picture to save yet: wait for the first frame")
        request = session.request
        with self.render_lock:
            frame = render_frame(model, request.view.cameras(int(self.cap.value)), self.look())
        path = write_png(
            self._next_path("{stem}-view-{k:03d}.png"),
            torch.from_numpy(frame["image"]).float() / 255,
        )
        self.saved.append(path)
        self.status.content = f"saved {path}"
        return path

    def _extract_mesh(self) -> Path:
        """Marching cubes of the field at the chosen resolution: added to the scene, saved as PLY."""
        from ..geometry import mesh_io
        from ..geometry.marching_cubes import mesh_field

        model = self.model()
        if model is None:
            raise InputError("no field to mesh yet: wait for the first frame")
        res = int(self.mesh_resolution.value)
        self.status.content = f"meshing at {res}^3 ..."
        box = field_box(model)
        with self.render_lock, torch.no_grad():
            if hasattr(model, "grid"):
                level = 10.0  # the density fields3d nerf --mesh uses (NerfConfig.mesh_level)
                verts, faces = mesh_field(
                    lambda x: -model.field.density(x),
                    box.tolist(),
                    res,
                    -level,
                    device=model.device,
                    narrow_band=False,
                )
            else:
                verts, faces = mesh_field(
                    lambda x: model.sdf(x.double()).float(),
                    box.tolist(),
                    res,
                    0.0,
                    device=model.device,
                )
        verts = verts.detach().cpu().numpy().astype(np.float64)
        faces = faces.cpu().numpy()
        if len(faces) == 0:
            raise InputError(
                f"no surface in the field at {res}^3; train longer or raise the resolution"
            )
        path = mesh_io.save_mesh(
            verts, faces, self._next_path("{stem}-mesh-" + str(res) + "-{k:03d}.ply")
        )
        self.server.scene.add_mesh_simple(
            "/extracted", verts.astype(np.float32), faces.astype(np.uint32), color=(230, 170, 90)
        )
        self.saved.append(path)
        self.status.content = f"{len(verts)} vertices, {len(faces)} faces: saved {path}"
        return path

    def _turntable(self) -> Path:
        from ..pipelines.orbit import render_orbit

        self.status.content = "rendering the turntable ..."
        out = self._next_path("{stem}-turntable-{k:03d}")
        with self.render_lock:
            result = render_orbit(self.source.path, out, frames=24, width=256, progress=False)
        self.saved.append(result.gif)
        self.status.content = f"saved {result.gif}"
        return result.gif

    # --- clients ---------------------------------------------------------------------------
    def _connect(self, client) -> None:
        if not self._rendered or self._closed.is_set():
            return

        def deliver(frame, request) -> None:
            client.scene.set_background_image(frame["image"], format="jpeg", jpeg_quality=90)

        session = RenderSession(
            self._render,
            deliver,
            preview=self.preview,
            render_lock=self.render_lock,
            on_error=lambda exc: self.errors.append(f"{type(exc).__name__}: {exc}"),
        )
        with self._sessions_lock:
            self.sessions[client.client_id] = session
        client.camera.on_update(lambda camera: self._camera_moved(client.client_id, camera))
        self._camera_moved(client.client_id, client.camera)
        # A page that is still replaying the scene drops a background image sent now: send the
        # frame again once it has loaded.
        timer = threading.Timer(1.5, session.resend)
        timer.daemon = True
        timer.start()

    def _disconnect(self, client) -> None:
        with self._sessions_lock:
            session = self.sessions.pop(client.client_id, None)
        if session is not None:
            session.close(timeout=0)

    def _camera_moved(self, client_id: int, camera) -> None:
        session = self.sessions.get(client_id)
        if session is None:
            return
        try:
            view = view_camera(
                camera.wxyz, camera.position, camera.fov, camera.image_width, camera.image_height
            )
        except InputError as exc:  # a client sending garbage: ignored, the last view stays
            self.errors.append(str(exc))
            return
        if self.live is not None and self.live.model() is None:
            self.live.request_snapshot()
        session.submit(view, self.look(), int(self.cap.value))

    def _render(self, request, side: int) -> dict:
        model = self.model()
        if model is None:
            raise InputError("no model yet: the first snapshot comes at the next training step")
        # the fast picture while the camera moves, and while a live run trains (its frames then
        # take the cores from the training for a fraction of a second, not seconds; pause for
        # the field's own frame)
        training = self.live is not None and not (self.live.paused or self.live.stopping)
        preview = training or side < max(MIN_SIDE, request.max_side)
        side = min(max(side, 8), MAX_SIDE)
        return render_frame(model, request.view.cameras(side), request.look, preview=preview)


def _curve_value(metrics: dict) -> float:
    """The number a live curve plots: PSNR (NeRF), else the loss, else the first metric."""
    for key in ("psnr", "loss"):
        if key in metrics:
            return float(metrics[key])
    return float(next(iter(metrics.values()), 0.0))


def box_edges(box: np.ndarray) -> np.ndarray:
    """``(12, 2, 3)`` float32 segments of the edges of a ``(2, 3)`` box."""
    lo, hi = np.asarray(box, dtype=np.float64)
    corners = np.array([[(lo, hi)[i >> k & 1][k] for k in range(3)] for i in range(8)])
    edges = [(i, i | 1 << k) for i in range(8) for k in range(3) if not i >> k & 1]
    return np.stack([corners[[a, b]] for a, b in edges]).astype(np.float32)


def serve(viewer: Viewer, stop: threading.Event | None = None) -> None:
    """Block until Ctrl-C (or ``stop`` is set), then close ``viewer``."""
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        viewer.close()


__all__ = ["View", "Viewer", "box_edges", "free_port", "serve"]
