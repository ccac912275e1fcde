"""The interface every encoding implements (tiny-cuda-nn's shape: n_input_dims, n_output_dims, forward).

An encoding is an ``nn.Module`` that maps positions to features:

- **input** ``(N, n_input_dims)`` float32 (float64 on the CPU where the encoding supports it, for
  ``gradcheck``). Grid encodings (hash grid, dense grid, tri-plane, simplex) take positions in
  ``[0, 1]^d``: the caller maps its scene box there; what happens outside is the encoding's own
  documented convention (the hash grid clamps).
- **output** ``(N, n_output_dims)`` in the input's dtype, on its device, differentiable w.r.t. the
  input and the parameters (twice, where the encoding promises double backward).

Each encoding also describes itself as a plain dict, so job files can name it and checkpoints can
rebuild it: ``config()`` returns ``{"type": <registered name>, **constructor settings}`` and
:func:`fields3d.encodings.create` turns that dict back into a freshly initialised encoding with
the same config; the parameters travel separately, in its ``state_dict``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class Encoding(nn.Module):
    """Maps positions ``(N, n_input_dims)`` to features ``(N, n_output_dims)``.

    Subclasses set ``n_input_dims`` and ``n_output_dims`` in ``__init__``, implement
    :meth:`forward` and :meth:`config`, and register themselves with one line,
    ``@register("name")`` (:func:`fields3d.encodings.register`), which sets :attr:`type_name`.

    ``forward(x)``: ``x`` ``(N, n_input_dims)`` float32 (float64 on the CPU where the encoding
    supports it) -> ``(N, n_output_dims)`` in ``x``'s dtype and on its device.

    Example:
        >>> import torch
        >>> from fields3d.encodings import Encoding, create
        >>> enc = create({"type": "dense_grid", "resolution": 8, "n_features": 2})
        >>> isinstance(enc, Encoding), enc.type_name, enc.n_input_dims, enc.n_output_dims
        (True, 'dense_grid', 3, 2)
        >>> enc(torch.rand(5, 3)).shape  # (N, n_input_dims) -> (N, n_output_dims)
        torch.Size([5, 2])
        >>> enc.n_params  # an 8^3 grid of 2 features
        1024
        >>> again = create(enc.config())  # the same settings, freshly initialised
        >>> again.config() == enc.config(), again.load_state_dict(enc.state_dict())
        (True, <All keys matched successfully>)
    """

    #: The name this encoding is registered under (the ``"type"`` of its config dict). Not
    #: ``type``: that would shadow ``nn.Module.type(dtype)``.
    type_name: ClassVar[str]
    n_input_dims: int
    n_output_dims: int
    #: Encodings nested in this one, itself included: 1; a composite is one more than its deepest
    #: part, at most ``MAX_CONFIG_DEPTH`` (16, :mod:`fields3d.encodings.factory`).
    nesting_depth: int = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """``(N, n_input_dims)`` positions -> ``(N, n_output_dims)`` features."""
        raise NotImplementedError

    def config(self) -> dict:  # pragma: no cover - interface
        """The settings as a JSON-able dict with a ``"type"`` key.

        ``create(enc.config())`` builds an encoding of the same type whose ``config()`` is equal
        and whose ``state_dict`` has the same keys and shapes (so ``load_state_dict`` carries the
        parameters across). Parameters themselves are not part of the config.
        """
        raise NotImplementedError

    @classmethod
    def from_config(cls, settings: dict, *, device: torch.device | str | None = None) -> Encoding:
        """Build from a config's settings (the dict without ``"type"``, keys already checked).

        The default calls ``cls(**settings, device=device)``; composites that hold other
        encodings' configs override it. Values are validated by the constructor.
        """
        return cls(**settings, device=device)

    @property
    def n_params(self) -> int:
        """Number of trainable scalars (all parameters, children included)."""
        return sum(p.numel() for p in self.parameters())
