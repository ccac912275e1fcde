"""Text-guided editing of a radiance field (Vox-E): ``edit(EditConfig(checkpoint=..., prompt=...))``.

The source (a NeRF, a generated object or an earlier edit) is distilled into a voxel field
(:mod:`.grid`, :mod:`.distill`), a copy is edited by score distillation with Vox-E's
correlation regulariser (:mod:`.train`, :mod:`.regularise`), the edit is localised by a graph cut
of the prior's cross-attention or of the departure from the original (:mod:`.localise`) and
merged into the original; the result is a checkpoint of kind ``"edit"`` (:mod:`.checkpoint`)
that ``fields3d render`` and ``fields3d view`` open.
"""

from .checkpoint import load_edit, save_voxels
from .config import EditConfig
from .grid import VoxelField
from .model import EditModel
from .pipeline import EditResult, edit

__all__ = [
    "EditConfig",
    "EditModel",
    "EditResult",
    "VoxelField",
    "edit",
    "load_edit",
    "save_voxels",
]
