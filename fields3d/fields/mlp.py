"""A plain multilayer perceptron of ``torch.nn.Linear`` layers (tiny-cuda-nn's layer counting)."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_size, dtype_str
from ..errors import InputError

#: Hidden-layer width: a 4096 x 4096 float32 layer is 64 MB (and its Adam state twice that); the
#: widest MLPs in the papers these fields follow are 256-512, so past 4096 is a typing slip that
#: would otherwise fail in the allocator (n_hidden=10**9 asks for tens of GB).
MAX_WIDTH = 4096
#: Features in or out of an MLP (an encoding's output, a field's channels): a concat of encodings
#: can be wide, so more room than the hidden width; 2^16 x 4096 float32 weights are 1 GB.
MAX_FEATURES = 2**16
#: Hidden layers: these fields use 1-8; each is a Python-level module call per forward, and
#: 10**6 layers exhaust memory while being built.
MAX_HIDDEN_LAYERS = 16

ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "softplus": nn.Softplus}
OUTPUT_ACTIVATIONS = {None: nn.Identity, "sigmoid": nn.Sigmoid}


class MLP(nn.Module):
    """``n_input -> [n_hidden] * n_hidden_layers -> n_output``, activation after each hidden layer.

    ``n_hidden_layers`` counts hidden layers as tiny-cuda-nn does: 2 hidden layers are 3 Linear
    layers; 0 is a single Linear layer from input to output.

    Args:
        n_input, n_output: feature sizes in and out (1 to ``MAX_FEATURES``, 2^16).
        n_hidden: width of each hidden layer (1 to ``MAX_WIDTH``, 4096).
        n_hidden_layers: number of hidden layers (0 to ``MAX_HIDDEN_LAYERS``, 16).
        activation: ``"relu"``, ``"silu"`` or ``"softplus"``, after each hidden layer.
        output_activation: ``None`` (linear output) or ``"sigmoid"`` (outputs in ``(0, 1)``).

    ``forward(x)``: ``(N, n_input)`` in the weights' dtype and on their device -> ``(N, n_output)``.

    Example:
        >>> import torch
        >>> from fields3d.fields import MLP
        >>> _ = torch.manual_seed(0)
        >>> mlp = MLP(3, 1, n_hidden=16, n_hidden_layers=2, output_activation="sigmoid")
        >>> [m.out_features for m in mlp.layers if isinstance(m, torch.nn.Linear)]  # 3 Linear layers
        [16, 16, 1]
        >>> y = mlp(torch.rand(5, 3))  # (N, n_input) float32
        >>> y.shape, y.dtype, bool(((y > 0) & (y < 1)).all())
        (torch.Size([5, 1]), torch.float32, True)
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        n_hidden: int = 64,
        n_hidden_layers: int = 2,
        activation: str = "relu",
        output_activation: str | None = None,
    ) -> None:
        super().__init__()
        check_size("n_input", n_input, 1, MAX_FEATURES)
        check_size("n_output", n_output, 1, MAX_FEATURES)
        check_size("n_hidden", n_hidden, 1, MAX_WIDTH)
        check_size("n_hidden_layers", n_hidden_layers, 0, MAX_HIDDEN_LAYERS)
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise InputError(f"activation must be 'relu', 'silu' or 'softplus', got {activation!r}")
        if output_activation is not None and (
            not isinstance(output_activation, str) or output_activation not in OUTPUT_ACTIVATIONS
        ):
            raise InputError(
                f"output_activation must be None or 'sigmoid', got {output_activation!r}"
            )
        self.n_input, self.n_output = n_input, n_output
        widths = [n_input] + [n_hidden] * n_hidden_layers
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out), ACTIVATIONS[activation]()]
        layers += [nn.Linear(widths[-1], n_output), OUTPUT_ACTIVATIONS[output_activation]()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.n_input:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"MLP input must have shape (N, {self.n_input}), got {got}")
        w = self.layers[0].weight
        if x.dtype != w.dtype and not torch.is_autocast_enabled(x.device.type):
            raise InputError(
                f"MLP input must be {dtype_str(w.dtype)} like its weights, got {dtype_str(x.dtype)}; "
                f"convert it with .to(torch.{dtype_str(w.dtype)})"
            )
        if x.device != w.device:
            raise InputError(
                f"MLP input must be on {w.device} like its weights, got {x.device}; "
                "move one of them with .to(device)"
            )
        return self.layers(x)
