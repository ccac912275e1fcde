"""The capped grid distance: exact below the cap, a tight lower bound past it, queried only near
the cloud; and the closing built on it equals the closing of the exact distance where it is used."""

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from fields3d.geometry import closing
from fields3d.geometry.grid_distance import CappedDistance, grid_points

RES = 48
SPACING = 2.0 / (RES - 1)


def _holed_sphere(n=6000, radius=0.7, hole=0.35, seed=0):
    """Points on a sphere with a polar cap of angular radius ``hole`` (radians) missing."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n * 2, 3))
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    v = v[v[:, 2] < np.cos(hole)][:n]
    return v * radius


def _exact(tree, res=RES):
    return tree.query(grid_points(res), k=1)[0].reshape((res,) * 3)


class _CountingTree:
    """A cKDTree that counts the query points it is asked about."""

    def __init__(self, points):
        self.inner = cKDTree(points)
        self.data = self.inner.data
        self.queried = 0

    def query(self, x, **kwargs):
        self.queried += len(x)
        return self.inner.query(x, **kwargs)


def test_capped_distance_is_exact_below_the_cap_and_a_tight_lower_bound_past_it():
    tree = cKDTree(_holed_sphere())
    exact = _exact(tree)
    cap = 0.15
    values = CappedDistance(tree, RES, cap).values
    near = exact < cap
    assert near.sum() > 0.1 * exact.size and (~near).sum() > 0.5 * exact.size
    np.testing.assert_array_equal(values[near], exact[near])
    far_values, far_exact = values[~near], exact[~near]
    assert far_values.min() >= cap
    assert (far_values <= far_exact + 1e-12).all()  # a lower bound: the sign and size hold
    # off by at most a cell diagonal (twice the snapping error), not just "somewhere above cap"
    assert (far_exact - far_values).max() <= np.sqrt(3.0) * SPACING + 1e-5


def test_raising_the_cap_queries_only_the_grid_points_it_newly_covers():
    points = _holed_sphere()
    tree = _CountingTree(points)
    dist = CappedDistance(tree, RES, 0.1)
    first = tree.queried
    dist.raise_cap(0.2)
    second = tree.queried - first
    dist.raise_cap(0.15)  # lower than the cap: nothing to do
    assert tree.queried == first + second
    exact = _exact(tree.inner)
    # the first query covers the grid points within 0.1 (and a cell diagonal), not the whole grid
    assert first <= (exact < 0.1 + np.sqrt(3.0) * SPACING).sum()
    assert first < 0.4 * exact.size
    # the second only those between the two caps
    assert second <= ((exact >= 0.1) & (exact < 0.2 + np.sqrt(3.0) * SPACING)).sum()
    np.testing.assert_array_equal(dist.values, CappedDistance(tree.inner, RES, 0.2).values)
    dist.raise_cap(10.0)
    np.testing.assert_array_equal(dist.values, exact)


def _closing_of_exact(udf, radius):
    """The closing as it was computed before the cap, from the exact distance everywhere."""
    free = udf > radius
    labels, _ = ndimage.label(free)
    border = np.unique(closing._faces_of(labels))
    outside = np.isin(labels, border[border > 0])
    dist_out = ndimage.distance_transform_edt(~outside) * SPACING
    return np.where(outside, udf, radius - dist_out).astype(np.float32)


def test_the_closing_equals_the_closing_of_the_exact_distance_near_the_surface():
    tree = cKDTree(_holed_sphere())
    sdf = closing.closing_sdf(tree, RES)
    assert sdf.radius > 2 * SPACING  # the ladder had to grow the radius to close the hole
    udf = _exact(tree)
    reference = _closing_of_exact(udf, sdf.radius)
    exact_zone = udf < sdf.radius + closing.EXACT_MARGIN * SPACING
    np.testing.assert_array_equal(sdf.values[exact_zone], reference[exact_zone])
    np.testing.assert_array_equal(sdf.values > 0, reference > 0)
    assert (sdf.values <= reference).all()
    # the same radius as the exact ladder picks: the first whose inside holds free space
    for factor in closing.RADIUS_LADDER:
        radius = closing.closing_radius(tree, RES) * factor
        inside = ((_closing_of_exact(udf, radius) < 0) & (udf > radius)).sum()
        lo, hi = tree.data.min(axis=0), tree.data.max(axis=0)
        if inside >= 0.01 * np.prod(np.floor((hi - lo) / SPACING) + 1):
            break
    assert sdf.radius == radius
