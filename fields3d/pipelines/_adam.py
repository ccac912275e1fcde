"""Adam on one parameter tensor, without ``torch.optim``.

``torch.optim``'s first step imports ``torch._dynamo``: 1.7 s of CPU, as long as importing torch
itself, and a tenth of a whole GridPull reconstruction of a 50k-point scan on 2 cores. This is the
update of ``torch.optim.Adam`` on the CPU (its single-tensor path, without weight decay, AMSGrad or
maximisation), value for value, with the learning rate an attribute a schedule may change.
"""

from __future__ import annotations

import torch


class Adam:
    """Adam (Kingma & Ba) on ``param``, as ``torch.optim.Adam(param, lr, betas, eps)`` steps it.

    Args:
        param: the tensor to optimise (a leaf that requires grad), any shape and float dtype.
        lr: the learning rate; ``lr`` may be changed between steps (a schedule).
        betas: the decay rates of the gradient's first and second moment averages.
        eps: added to the root of the second moment average.

    Example:
        >>> import torch
        >>> from fields3d.pipelines._adam import Adam
        >>> x = torch.tensor([1.0, -2.0], requires_grad=True)  # (2,) float32
        >>> opt = Adam(x, lr=0.1)
        >>> for _ in range(3):
        ...     opt.zero_grad()
        ...     (x**2).sum().backward()
        ...     opt.step()
        ...     opt.lr *= 0.5  # an exponential schedule
        >>> x.detach()  # each step moves each value by about lr (0.1, 0.05, 0.025) downhill
        tensor([ 0.8254, -1.8252])
    """

    def __init__(
        self,
        param: torch.Tensor,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.steps = 0

    def zero_grad(self) -> None:
        """Drop the gradient (``set_to_none``): the next backward writes a new one."""
        self.param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update from ``param.grad`` (none without a gradient)."""
        grad = self.param.grad
        if grad is None:
            return
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = self.lr / (1 - beta1**self.steps)
        root_correction = (1 - beta2**self.steps) ** 0.5
        denom = (self.exp_avg_sq.sqrt() / root_correction).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-step_size)
