"""The host emulation of CUDA that the ``twin`` parity tests run on (cuda/emulation): its warp
shuffles, ballots, shared memory and barriers give what CUDA defines, and kernels a GPU would
punish (a full-mask shuffle after lanes returned, a barrier that can never open, a launch CUDA
refuses) fail loudly."""

import pytest
from conftest import emulated_module


@pytest.fixture(scope="module")
def emulator():
    return emulated_module().emulator


@pytest.mark.parametrize("n,block", [(300, 128), (64, 32), (1000, 1024)])
def test_warp_scan_by_shuffle_up(emulator, n, block):
    expected = [sum(range(i - i % 32, i + 1)) for i in range(n)]  # inclusive sums within each warp
    assert emulator.warp_scan(n, block) == expected


def test_ballot_popcount_and_shuffle_down(emulator):
    out = emulator.ballot_down()
    lower, nxt = out[:64], out[64:]
    assert lower == [sum(1 for m in range(t - t % 32, t) if (m % 32) % 3 == 0) for t in range(64)]
    # lane 31 of each warp has no lane above it and keeps its own value
    assert nxt == [t if t % 32 == 31 else t + 1 for t in range(64)]


@pytest.mark.parametrize("block", [1, 96, 1024])
def test_shared_memory_is_one_array_per_block(emulator, block):
    assert emulator.reverse(block) == list(range(block - 1, -1, -1))


def test_shuffle_after_lanes_returned_is_an_error(emulator):
    with pytest.raises(RuntimeError) as err:
        emulator.shuffle_after_return()
    assert str(err.value) == (
        "emulated CUDA kernel, block (0, 0, 0): __shfl_sync with mask 0xffffffff in a warp "
        "where 16 of 32 lanes have returned (undefined behaviour on a GPU)"
    )


def test_a_barrier_that_cannot_open_is_an_error(emulator):
    with pytest.raises(RuntimeError) as err:
        emulator.mixed_barriers()
    assert str(err.value) == (
        "emulated CUDA kernel, block (0, 0, 0): deadlock: 64 threads wait at a barrier the "
        "others never reach"
    )


@pytest.mark.parametrize(
    "blocks,threads,error",
    [
        (1, 128, "no error"),
        (0, 128, "invalid configuration argument"),
        (1, 0, "invalid configuration argument"),
        (1, 1025, "invalid configuration argument"),
        (2**31, 32, "invalid configuration argument"),
    ],
)
def test_launch_configurations_cuda_refuses(emulator, blocks, threads, error):
    assert emulator.launch_error(blocks, threads) == error


def test_no_scratch_outstanding(emulator):
    assert emulator.live_allocations() == 0
