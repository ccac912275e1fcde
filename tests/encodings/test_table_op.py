"""The lattice encodings' backward computes only the gradients the engine will use: an eikonal
loss's grad(y, x) skips the table's scatter, with the same parameter gradients as before."""

import torch

import fields3d.encodings._table_op as table_op
from fields3d.encodings import HashGrid


def _eikonal_grads(grid, x0):
    grid.params.grad = None
    x = x0.clone().requires_grad_()
    y = grid(x).sum(1)
    (dx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (dx.square().sum() + y.sum()).backward()
    return grid.params.grad.clone()


def test_grad_wrt_positions_skips_the_table_gradient(monkeypatch):
    torch.manual_seed(0)
    grid = HashGrid(3, 4, 2, 12, 4, 1.5)
    calls, real = [], table_op._core_ops.lattice_backward

    def spy(layout, x, table, dy, dx, dtable, *args, **kwargs):
        calls.append((dx is not None, dtable is not None))
        return real(layout, x, table, dy, dx, dtable, *args, **kwargs)

    monkeypatch.setattr(table_op._core_ops, "lattice_backward", spy)
    x = torch.rand(64, 3, requires_grad=True)
    torch.autograd.grad(grid(x).sum(), x, create_graph=True)
    assert calls == [(True, False)]  # positions only: no scatter into the table
    grid(x).sum().backward()
    assert calls[-1] == (True, True)  # backward() accumulates both


def test_the_eikonal_gradients_are_unchanged(monkeypatch):
    torch.manual_seed(1)
    grid = HashGrid(3, 6, 2, 14, 4, 1.6)
    x0 = torch.rand(3000, 3)
    skipping = _eikonal_grads(grid, x0)
    monkeypatch.setattr(table_op, "engine_uses", lambda inputs, needs: list(needs))
    computing_all = _eikonal_grads(grid, x0)
    assert torch.equal(skipping, computing_all)
