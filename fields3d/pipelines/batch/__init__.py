"""Many shapes reconstructed at once (``fields3d recon-batch``): a local process pool or Ray tasks.

:func:`run_batch` runs :func:`fields3d.pipelines.recon.reconstruct` on every shape of a
:class:`BatchConfig`, records each in ``OUTDIR/manifest.jsonl`` (:mod:`.manifest`) and writes a
summary (:mod:`.summary`). Importing this package does not import torch: workers do.
"""

from .inputs import Shape, collect_shapes, expand_inputs
from .manifest import MANIFEST, Manifest, read_manifest
from .pipeline import BatchConfig, BatchResult, run_batch

__all__ = [
    "MANIFEST",
    "BatchConfig",
    "BatchResult",
    "Manifest",
    "Shape",
    "collect_shapes",
    "expand_inputs",
    "read_manifest",
    "run_batch",
]
