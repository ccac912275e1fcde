"""Composite encodings: concatenation of several encodings of the same input.

``Concat([a, b])`` feeds the same positions to ``a`` and ``b`` and returns their features side by
side, ``(N, a.n_output_dims + b.n_output_dims)``. As a dict::

    {"type": "concat", "encodings": [{"type": "hash_grid", ...}, {"type": "hash_grid", ...}]}

A NeuRBF-style hybrid (Chen et al., ICCV 2023) is this shape too: NeuRBF concatenates the
features of its adaptive radial basis functions with those of a multi-resolution grid and feeds
both to one MLP, so with an RBF encoding registered as ``"rbf"`` it reads
``{"type": "concat", "encodings": [{"type": "rbf", ...}, {"type": "hash_grid", ...}]}``. NeuRBF's
sinusoidal composition of the RBF features belongs to the RBF encoding (or the field after the
encoding), not to ``Concat``. A hybrid that adds features instead of concatenating them would be
one more composite registered beside this one.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from .base import Encoding
from .factory import MAX_CONFIG_DEPTH, create, register


@register("concat")
class Concat(Encoding):
    """Several encodings of the same positions, their features concatenated in order.

    Args:
        encodings: a non-empty list of :class:`Encoding` modules with the same ``n_input_dims``;
            they become children (``encodings.0``, ``encodings.1``, ... in the ``state_dict``).
            Concats nest at most ``MAX_CONFIG_DEPTH`` (16) encodings deep, this one included, as
            their configs do in :func:`~fields3d.encodings.create`.

    ``forward(x)``: ``(N, n_input_dims)`` positions, in whatever domain and dtype the parts take
    (``[0, 1]^d`` float32 for grid encodings) -> ``(N, sum of the parts' n_output_dims)``, part 0's
    features first. Derivatives (double backward included) are those of the parts.

    ``config()`` is ``{"type": "concat", "encodings": [<each part's config>]}``.

    Example:
        >>> import torch
        >>> from fields3d.encodings import Concat, DenseGrid, HashGrid, create
        >>> grid = HashGrid(n_levels=4, log2_hashmap_size=12, base_resolution=4)  # 4 x 2 features
        >>> enc = Concat([grid, DenseGrid(resolution=8, n_features=3)])
        >>> enc.n_input_dims, enc.n_output_dims  # 8 + 3
        (3, 11)
        >>> x = torch.rand(5, 3)  # (N, 3) float32 in [0, 1]^3
        >>> y = enc(x)
        >>> y.shape, torch.equal(y[:, :8], grid(x))  # part 0's features first
        (torch.Size([5, 11]), True)
        >>> [c["type"] for c in enc.config()["encodings"]]
        ['hash_grid', 'dense_grid']
        >>> create(enc.config()).n_output_dims
        11
    """

    def __init__(self, encodings: list[Encoding]) -> None:
        super().__init__()
        if not isinstance(encodings, (list, tuple)) or not encodings:
            got = (
                "an empty list"
                if isinstance(encodings, (list, tuple))
                else type(encodings).__name__
            )
            raise InputError(f"encodings must be a non-empty list of Encoding modules, got {got}")
        for i, e in enumerate(encodings):
            if not isinstance(e, Encoding):
                raise InputError(f"encodings[{i}] must be an Encoding, got {type(e).__name__}")
        dims = [e.n_input_dims for e in encodings]
        if len(set(dims)) > 1:
            raise InputError(
                f"the encodings of a Concat must all take the same n_input_dims, got {dims}; "
                "give every part the same n_input_dims"
            )
        depth = 1 + max(e.nesting_depth for e in encodings)
        if depth > MAX_CONFIG_DEPTH:
            raise InputError(
                f"a Concat nests at most {MAX_CONFIG_DEPTH} encodings deep, itself included, got {depth}; "
                "list the parts in one Concat instead of nesting them"
            )
        self.encodings = nn.ModuleList(encodings)
        self.nesting_depth = depth
        self.n_input_dims = dims[0]
        self.n_output_dims = sum(e.n_output_dims for e in encodings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([e(x) for e in self.encodings], dim=1)

    def config(self) -> dict:
        return {"type": self.type_name, "encodings": [e.config() for e in self.encodings]}

    @classmethod
    def from_config(cls, settings: dict, *, device: torch.device | str | None = None) -> Concat:
        configs = settings["encodings"]
        if not isinstance(configs, list) or not configs:
            got = "an empty list" if isinstance(configs, list) else type(configs).__name__
            raise InputError(
                f'a "concat" config\'s "encodings" must be a non-empty list of encoding configs, got {got}'
            )
        parts = []
        for i, c in enumerate(configs):
            try:
                parts.append(create(c, device=device))
            except InputError as e:
                raise InputError(f"encodings[{i}]: {e}") from e
        return cls(parts)
