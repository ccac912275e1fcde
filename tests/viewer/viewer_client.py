"""A minimal viser protocol client for in-process tests: connects over the websocket, sends a
camera, and decodes the frames (background images) the server sends back."""

from __future__ import annotations

import io
import time

import msgspec
import numpy as np
import viser
import zstandard
from PIL import Image
from websockets.sync.client import connect


def camera_message(position, look_at=(0.0, 0.0, 0.0), fov=0.9, width=400, height=300, up=(0, 1, 0)):
    """A ViewerCameraMessage of a camera at ``position`` looking at ``look_at`` (OpenCV pose)."""
    position, look_at, up = (np.asarray(v, dtype=np.float64) for v in (position, look_at, up))
    forward = look_at - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rot = np.stack([right, down, forward], 1)
    wxyz = viser.transforms.SO3.from_matrix(rot).wxyz
    return {
        "type": "ViewerCameraMessage",
        "wxyz": [float(v) for v in wxyz],
        "position": [float(v) for v in position],
        "fov": fov,
        "near": 0.01,
        "far": 1000.0,
        "image_height": height,
        "image_width": width,
        "look_at": [float(v) for v in look_at],
        "up_direction": [float(v) for v in up],
    }


class Client:
    def __init__(self, port: int) -> None:
        self.ws = connect(
            f"ws://127.0.0.1:{port}", subprotocols=[f"viser-v{viser.__version__}"], max_size=None
        )

    def send(self, message: dict) -> None:
        self.ws.send(msgspec.msgpack.encode(message))

    def send_raw(self, data: bytes) -> None:
        self.ws.send(data)

    def frames(self, timeout: float = 60.0):
        """Yield decoded background images (``(H, W, 3)`` uint8) until ``timeout``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                raw = self.ws.recv(timeout=max(0.01, end - time.monotonic()))
            except TimeoutError:
                return
            yield from _images(raw)

    def frame(self, timeout: float = 60.0, min_side: int = 0) -> np.ndarray:
        for image in self.frames(timeout):
            if max(image.shape[:2]) >= min_side:
                return image
        raise TimeoutError("no frame")

    def close(self) -> None:
        self.ws.close()


def _images(raw: bytes) -> list[np.ndarray]:
    inner_len = int.from_bytes(raw[:8], "little")
    comp_len = int.from_bytes(raw[8:16], "little")
    inner = zstandard.ZstdDecompressor().decompress(raw[16 : 16 + comp_len], inner_len)
    payload = msgspec.msgpack.decode(inner)
    buffers, offset = [], 16 + comp_len
    for n in payload["binaryBufferLengths"]:
        offset += (8 - offset % 8) % 8
        buffers.append(raw[offset : offset + n])
        offset += n
    out = []
    for m in payload["messages"]:
        if m.get("type") != "BackgroundImageMessage" or m.get("rgb_data") is None:
            continue
        data = m["rgb_data"]
        if isinstance(data, dict):
            data = buffers[data["__binary_index"]]
        out.append(np.asarray(Image.open(io.BytesIO(bytes(data))).convert("RGB")))
    return out
