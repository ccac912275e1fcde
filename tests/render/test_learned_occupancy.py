"""The learned occupancy network (LeC2O-NeRF) and the marcher's callable occupancy test: the tested
march against the box march filtered by hand, the losses' and the network's gradients against
plain torch, the grid derived for viewers, and the exact errors."""

import pytest
import torch

from fields3d.encodings.reference import hash_grid_reference
from fields3d.errors import InputError
from fields3d.render import GridSpec, OccupancyNetwork, OccupancyTest, march_rays
from fields3d.render.learned_occupancy import (
    density_supervision_loss,
    density_targets,
    imbalanced_occupancy_loss,
    occupancy_loss,
)

BOX = GridSpec.from_aabb([[-1, -1, -1], [1, 1, 1]])


def random_rays(n, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    origins = (torch.rand(n, 3, generator=g, dtype=dtype) * 2 - 1) * 3
    dirs = (torch.rand(n, 3, generator=g, dtype=dtype) * 2 - 1) * 0.8 - origins
    return origins, dirs / dirs.norm(dim=1, keepdim=True)


def ball(x):
    return x.norm(dim=1) < 0.6


@pytest.mark.parametrize("cone", [0.0, 0.01])
def test_tested_march_is_the_box_march_filtered_by_the_test(cone):
    origins, dirs = random_rays(300, 0)
    box = march_rays(origins, dirs, BOX, step=0.02, cone=cone, near=0.5)
    want = box.select(ball(box.midpoints(origins, dirs)))
    got = march_rays(origins, dirs, OccupancyTest(BOX, ball), step=0.02, cone=cone, near=0.5)
    assert 0 < got.n_samples < box.n_samples
    for name in ("t_starts", "t_ends", "ray_ids", "offsets"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    assert got.rays_dropped == 0


def test_subdivided_candidates_are_the_coarse_march_filtered_and_split():
    origins, dirs = random_rays(200, 4)
    coarse = march_rays(origins, dirs, BOX, step=0.08)
    kept = coarse.select(ball(coarse.midpoints(origins, dirs)))
    got = march_rays(origins, dirs, OccupancyTest(BOX, ball, subdivide=4), step=0.02)
    assert torch.equal(got.offsets, kept.offsets * 4)
    assert torch.equal(got.ray_ids, kept.ray_ids.repeat_interleave(4))
    torch.testing.assert_close(got.t_starts[::4], kept.t_starts, rtol=0, atol=0)
    torch.testing.assert_close(got.t_ends[3::4], kept.t_ends, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        got.t_ends - got.t_starts, (kept.t_ends - kept.t_starts).repeat_interleave(4) / 4
    )
    with pytest.raises(InputError) as err:
        march_rays(origins, dirs, OccupancyTest(BOX, ball, subdivide=0), step=0.02)
    assert str(err.value) == "subdivide must be an integer from 1 to 64, got 0"


def test_the_budget_drops_whole_rays_of_kept_samples():
    origins, dirs = random_rays(50, 1)
    full = march_rays(origins, dirs, OccupancyTest(BOX, ball), step=0.02)
    limit = int(full.offsets[20])  # the first 20 rays fit exactly
    cut = march_rays(origins, dirs, OccupancyTest(BOX, ball), step=0.02, max_samples=limit)
    first = 20 + int(torch.nonzero(full.counts[20:])[0])  # the first ray past the budget
    assert cut.n_samples == limit and cut.rays_dropped == 50 - first
    assert torch.equal(cut.counts[:20], full.counts[:20])
    assert int(cut.counts[20:].sum()) == 0
    assert torch.equal(cut.t_starts, full.t_starts[:limit])


def test_candidates_past_max_candidates_drop_rays():
    origins, dirs = random_rays(50, 2)
    box = march_rays(origins, dirs, BOX, step=0.02)
    test = OccupancyTest(BOX, ball, max_candidates=int(box.offsets[10]))
    got = march_rays(origins, dirs, test, step=0.02)
    assert got.rays_dropped == 40 and int(got.counts[10:].sum()) == 0


def test_a_test_returning_the_wrong_thing_is_refused():
    origins, dirs = random_rays(4, 3)
    n = march_rays(origins, dirs, BOX, step=0.1).n_samples
    with pytest.raises(InputError) as err:
        march_rays(origins, dirs, OccupancyTest(BOX, lambda x: x[:, 0]), step=0.1)
    assert str(err.value) == (
        f"the occupancy test must return a bool tensor of shape ({n},), one flag per candidate "
        f"midpoint, got float32 ({n},)"
    )
    with pytest.raises(InputError, match=r"got list$"):
        march_rays(origins, dirs, OccupancyTest(BOX, lambda x: [True]), step=0.1)


def reference_probs(net, x):
    """The network in plain torch: the hash grid's reference and the MLP's weights by hand."""
    u = ((x - net.aabb[0]) / (net.aabb[1] - net.aabb[0])).clamp(0, 1)
    h = hash_grid_reference(u, net.encoding.params, net.encoding.spec)
    w1, b1, w2, b2 = net.net[0].weight, net.net[0].bias, net.net[2].weight, net.net[2].bias
    logits = (torch.relu(h @ w1.T + b1) @ w2.T + b2)[:, 0]
    return logits


def test_network_and_losses_match_plain_torch_with_their_gradients():
    torch.manual_seed(0)
    net = OccupancyNetwork([[-1, -2, -1], [1, 2, 3]], n_levels=3, log2_hashmap_size=10)
    with torch.no_grad():
        net.encoding.params.normal_(0, 0.5)
    x = torch.rand(500, 3) * torch.tensor([2.0, 4.0, 4.0]) - torch.tensor([1.0, 2.0, 1.0])
    sigmas = torch.rand(500) * 5
    loss, share = occupancy_loss(net, x, sigmas, 0.01, 0.8)
    grads = torch.autograd.grad(loss, list(net.parameters()))

    logits = reference_probs(net, x)
    p = torch.sigmoid(logits)
    t = ((sigmas * 0.01) > min(0.01, float((sigmas * 0.01).mean()))).float()
    w = min(max(float((1 - t).sum() / t.sum()), 1.0), 20.0)  # occupied probes' weight
    bce = -(w * t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()
    f = (p.detach() > 0.5).float().mean()
    imbalance = 2 * (0.8 * f * p.mean() + 0.2 * (1 - f) * (1 - p.mean()))
    ref_grads = torch.autograd.grad(bce + imbalance, list(net.parameters()))
    torch.testing.assert_close(loss, bce + imbalance, rtol=1e-5, atol=1e-6)
    assert share == pytest.approx(float(f))
    for name, g, r in zip([n for n, _ in net.named_parameters()], grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6, msg=name)


def test_imbalanced_loss_pushes_toward_the_empty_share():
    p = torch.tensor([0.9, 0.8, 0.2, 0.1], requires_grad=True)  # half called occupied
    imbalanced_occupancy_loss(p, 0.9).backward()  # asks for 90% empty: push p down
    torch.testing.assert_close(p.grad, torch.full((4,), 2 * (0.9 * 0.5 - 0.1 * 0.5) / 4))
    q = torch.tensor([0.9, 0.2, 0.1, 0.1], requires_grad=True)  # 75% empty
    imbalanced_occupancy_loss(q, 0.5).backward()  # asks for 50%: push p up
    assert bool((q.grad < 0).all())


def test_density_targets_use_the_grid_threshold_or_the_mean():
    sig = torch.tensor([0.0, 0.5, 2.0, 100.0])
    assert density_targets(sig, 0.01).tolist() == [0.0, 0.0, 1.0, 1.0]  # cut 0.01
    assert density_targets(sig * 1e-3, 0.01).tolist() == [0.0, 0.0, 0.0, 1.0]  # cut: the mean
    logits = torch.tensor([5.0, -5.0, 0.0, 0.0], requires_grad=True)
    density_supervision_loss(logits, sig, 0.01).backward()  # as many occupied as empty: weight 1
    p, t = torch.sigmoid(logits.detach()), torch.tensor([0.0, 0, 1, 1])
    torch.testing.assert_close(logits.grad, (p - t) / 4)
    rare = torch.tensor([0.0, 0.0, 0.0, 2.0])  # one occupied of four: it weighs 3
    logits.grad = None
    density_supervision_loss(logits, rare, 0.01).backward()
    t = torch.tensor([0.0, 0, 0, 1])
    torch.testing.assert_close(logits.grad, (p * (1 + 2 * t) - 3 * t) / 4)


def test_derived_grid_covers_what_the_network_calls_occupied():
    torch.manual_seed(0)
    net = OccupancyNetwork([[-1, -1, -1], [1, 1, 1]], n_levels=2, log2_hashmap_size=10)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(150):
        x = torch.rand(4096, 3) * 2 - 1
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(
            net.logits(x), ball(x).float()
        ).backward()
        opt.step()
    x = torch.rand(4096, 3) * 2 - 1
    assert float((net.occupied(x) == ball(x)).float().mean()) > 0.9
    grid = net.to_grid(16)
    assert grid.occupied.shape == (1, 16, 16, 16)
    centres = grid.cell_points(torch.arange(16**3), jitter=False)
    called = net.occupied(centres).view(grid.occupied.shape)
    assert bool(grid.occupied[called].all())  # every cell the network calls occupied
    assert 0.11 < grid.occupancy_fraction() < 0.6  # the ball (11%), a cell of margin, errors


def test_bad_settings_are_refused_with_exact_messages():
    with pytest.raises(InputError) as err:
        imbalanced_occupancy_loss(torch.rand(3), 1.0)
    assert str(err.value) == (
        "empty_share must be a number in (0, 1), the share of points to call empty, got 1.0"
    )
    with pytest.raises(InputError) as err:
        OccupancyNetwork.from_config({"aabb": [[0, 0, 0], [1, 1, 1]], "levels": 2})
    assert str(err.value) == (
        "an OccupancyNetwork config has unknown settings ['levels']; known: ['aabb', 'n_levels', "
        "'log2_hashmap_size', 'base_resolution', 'max_resolution', 'n_hidden', 'subdivide']"
    )
    with pytest.raises(InputError) as err:
        OccupancyNetwork([[0, 0, 0], [1, 1, 1]]).logits(torch.rand(4, 2))
    assert str(err.value) == "x must be an (N, 3) tensor of positions, got (4, 2)"
