"""fields3d: 3D neural fields and generative geometry on CPU and CUDA."""

from importlib.metadata import PackageNotFoundError, version

from .errors import BackendUnavailable, CheckpointError, FieldsError, InputError, ModelNotFound

try:
    __version__ = version("fields3d")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def info() -> dict:
    """Version, compiled backends (with CUDA architectures), threads, torch and visible GPUs."""
    from ._info import collect

    return collect()


__all__ = [
    "BackendUnavailable",
    "CheckpointError",
    "FieldsError",
    "InputError",
    "ModelNotFound",
    "__version__",
    "info",
]
