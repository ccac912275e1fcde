"""Surface reconstruction from point clouds: ``reconstruct(ReconConfig(...))``.

Methods: ``gridpull`` (default; a learned distance grid, :mod:`.gridpull`), ``neural`` (hash grid
+ MLP with Neural-Pull and eikonal losses, :mod:`.neural`) and ``poisson`` (Open3D's Screened
Poisson, the baseline). See :mod:`.pipeline` for the outputs; ``load_sdf`` renders a saved field.
"""

from .model import SdfModel, load_sdf
from .pipeline import METHODS, ReconConfig, ReconResult, reconstruct

__all__ = ["METHODS", "ReconConfig", "ReconResult", "SdfModel", "load_sdf", "reconstruct"]
