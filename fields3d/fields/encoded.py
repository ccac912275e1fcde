"""Any registered encoding followed by an MLP: ``EncodedField({"type": ..., ...}, n_output)``.

The encoding comes from a plain dict (:func:`fields3d.encodings.create`) or is passed built, so
one field serves every encoding of the shoot-out (hash grid, dense grid, tri-plane, simplex grid).
Positions are the encoding's: ``(N, n_input_dims)`` float32 in ``[0, 1]^d`` for grid encodings.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_device, dtype_str
from ..encodings import Encoding, create
from ..errors import InputError
from .mlp import MLP


class EncodedField(nn.Module):
    """``encoding`` then ``MLP(encoding.n_output_dims -> [n_hidden] * n_hidden_layers -> n_output)``.

    Args:
        encoding: an encoding config dict (``{"type": "hash_grid", ...}``) or an :class:`Encoding`
            module (used as it is, not copied).
        n_output: values out per position (>= 1).
        n_hidden, n_hidden_layers, activation, output_activation: the MLP's (see :class:`MLP`).
        device: where a dict-built encoding and the MLP's parameters are allocated.

    ``forward(x)``: ``(N, encoding.n_input_dims)`` float32 -> ``(N, n_output)`` float32.

    Example:
        >>> import torch
        >>> from fields3d.fields import EncodedField
        >>> _ = torch.manual_seed(0)
        >>> field = EncodedField({"type": "hash_grid", "n_levels": 4, "log2_hashmap_size": 12}, 2, n_hidden=16)
        >>> field.n_input_dims, field.encoding.n_output_dims  # 4 levels of 2 features
        (3, 8)
        >>> y = field(torch.rand(5, 3))  # (N, 3) float32 in [0, 1]^3
        >>> y.shape, y.dtype
        (torch.Size([5, 2]), torch.float32)
    """

    def __init__(
        self,
        encoding: dict | Encoding,
        n_output: int,
        n_hidden: int = 64,
        n_hidden_layers: int = 2,
        activation: str = "relu",
        output_activation: str | None = None,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        device = check_device(device)
        if isinstance(encoding, dict):
            encoding = create(encoding, device=device)
        elif not isinstance(encoding, Encoding):
            raise InputError(
                f"encoding must be an encoding config dict or an Encoding, got {type(encoding).__name__}"
            )
        self.encoding = encoding
        self.n_input_dims = encoding.n_input_dims
        self.mlp = MLP(
            encoding.n_output_dims,
            n_output,
            n_hidden,
            n_hidden_layers,
            activation,
            output_activation,
        )
        self.mlp.to(device)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def n_params(self) -> int:
        """Trainable scalars of the encoding and the MLP together."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.n_input_dims
        if not isinstance(x, torch.Tensor):
            raise InputError(f"positions must be float32 of shape (N, {d}), got {type(x).__name__}")
        if x.dtype != torch.float32 or x.dim() != 2 or x.shape[1] != d:
            shape = "(" + ", ".join(str(s) for s in x.shape) + ")"
            raise InputError(
                f"positions must be float32 of shape (N, {d}), got {dtype_str(x.dtype)} {shape}"
            )
        return self.mlp(self.encoding(x))


def has_double_backward(encoding: Encoding) -> bool:
    """Whether gradients w.r.t. the parameters flow through ``d encoding / d x`` (an eikonal loss needs it).

    Probes the encoding on 4 points at the centre of its domain, on its own device: builds
    ``g = d sum(encoding(x)) / d x`` with ``create_graph=True`` and asks for ``d sum(g) / d params``.

    Args:
        encoding: an :class:`~fields3d.encodings.Encoding` module.

    Returns:
        True when that second derivative reaches a parameter; False for an encoding without
        trainable parameters or without a double backward.

    Example:
        >>> from fields3d.encodings import create
        >>> from fields3d.fields import has_double_backward
        >>> has_double_backward(create({"type": "hash_grid", "n_levels": 2, "log2_hashmap_size": 10}))
        True
        >>> frozen = create({"type": "dense_grid", "resolution": 4, "n_features": 2})
        >>> _ = frozen.requires_grad_(False)
        >>> has_double_backward(frozen)  # nothing to train
        False
    """
    if not isinstance(encoding, Encoding):
        raise InputError(f"encoding must be an Encoding module, got {type(encoding).__name__}")
    params = [p for p in encoding.parameters() if p.requires_grad]
    if not params:
        return False
    x = (
        torch.full((4, encoding.n_input_dims), 0.5, device=params[0].device)
        .add_(torch.linspace(-0.1, 0.1, 4, device=params[0].device)[:, None])
        .requires_grad_(True)
    )
    try:
        with torch.enable_grad():
            (g,) = torch.autograd.grad(encoding(x).sum(), x, create_graph=True)
            if not g.requires_grad:
                return False
            grads = torch.autograd.grad(g.sum(), params, allow_unused=True)
    except (RuntimeError, NotImplementedError):
        return False
    return any(gr is not None for gr in grads)
