"""Small NeRF settings the pipeline tests train with, on the shipped spot scene: ``TINY`` (a
quarter-size picture, an 8-level 2^14 hash grid, a 32^3 occupancy grid) and ``TINIER`` (an
eighth, 4 levels of 2^12, 16^3) for tests that only need a model to exist."""

SCENE = "assets/scenes/spot"
TINY = dict(
    data=SCENE,
    downscale=4,
    time_budget=None,
    turntable_frames=0,
    samples_per_step=4096,
    log2_hashmap_size=14,
    n_levels=8,
    max_resolution=128,
    grid_resolution=32,
)
TINIER = dict(
    TINY,
    downscale=8,
    samples_per_step=2048,
    log2_hashmap_size=12,
    n_levels=4,
    max_resolution=64,
    grid_resolution=16,
)
