"""The shared argument checks: a range pair's exact message (the generate and edit configs use it)."""

import pytest

from fields3d._checks import check_interval
from fields3d.errors import InputError
from fields3d.pipelines.generate import GenerateConfig


@pytest.mark.parametrize("value", [(1.0, 2.0), [1, 1], (0.5, 3)])
def test_a_pair_inside_the_bounds_passes(value):
    check_interval("radius_range", value, 0.5, 3.0)


@pytest.mark.parametrize(
    "value", [(2.0, 1.0), (0.4, 1.0), (1.0,), "1,2", (1.0, float("nan")), None]
)
def test_anything_else_is_refused_with_the_bounds(value):
    with pytest.raises(InputError) as err:
        check_interval("radius_range", value, 0.5, 3.0)
    assert (
        str(err.value)
        == f"radius_range must be two numbers [low, high] from 0.5 to 3, got {value!r}"
    )


def test_the_generate_config_refuses_a_reversed_range():
    with pytest.raises(InputError, match=r"^fov_range must be two numbers \[low, high\] from "):
        GenerateConfig(guidance="target:x.obj", fov_range=(60.0, 30.0))
