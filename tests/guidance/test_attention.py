"""Cross-attention hooks on a tiny random Stable Diffusion UNet (built in the test, loaded through
the real loading path): maps of the right shape per token, probabilities in [0, 1], the UNet's
output unchanged by recording, its own processors back afterwards; and the errors."""

import sys
from pathlib import Path

import pytest
import torch

from fields3d.errors import InputError
from fields3d.guidance import SphericalCameras, create
from fields3d.guidance.attention import AttentionRecorder, record_cross_attention, token_indices

pytest.importorskip("diffusers", reason="needs pip install 'fields3d[generate]'")
pytest.importorskip("transformers", reason="needs pip install 'fields3d[generate]'")

sys.path.insert(0, str(Path(__file__).parent))
import tiny_sd


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
    model = tiny_sd.build(tmp_path_factory.mktemp("sd") / "tiny-sd")
    return create(f"stable_diffusion:{model}", prompt="a hat", device="cpu", seed=1)


def views(n: int) -> SphericalCameras:
    ones = torch.ones(n)
    return SphericalCameras(torch.arange(n) * 90.0, 15 * ones, 3 * ones, 40 * ones)


def test_maps_per_token(prior):
    tokens = token_indices(prior.tokenizer, "a hat")
    # the tiny tokenizer has no merges: 'a</w>', 'h', 'a', 't</w>' after the start token
    assert tokens == [1, 2, 3, 4]
    assert token_indices(prior.tokenizer, "a hat", "hat") == [2, 3, 4]  # 'h', 'a', 't</w>'
    renders = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    before = dict(prior.unet.attn_processors)
    with record_cross_attention(prior.unet, tokens) as recorder:
        prior(renders, views(2), 0, 10)
    maps = recorder.maps(16)
    # the UNet ran once on the doubled batch: the conditional views first, then unconditional
    assert maps.shape == (4, 4, 16, 16)
    assert bool((maps >= 0).all()) and bool((maps <= 1).all()) and float(maps.sum()) > 0
    cross = [k for k in before if ".attn2." in k]  # down, mid and up blocks' cross-attention
    assert len(recorder.records) == len(cross) == 4
    assert {k: type(v) for k, v in prior.unet.attn_processors.items()} == {
        k: type(v) for k, v in before.items()
    }


def test_recording_leaves_the_prediction_unchanged(prior):
    renders = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    state = prior.state_dict()
    plain = prior(renders, views(1), 3, 10).grad
    prior.load_state_dict(state)
    with record_cross_attention(prior.unet, [1, 2]):
        recorded = prior(renders, views(1), 3, 10).grad
    # diffusers' default processor fuses the softmax (scaled_dot_product_attention); ours writes
    # it out, so the two agree to rounding, amplified 100 times by the guidance scale
    scale = float(plain.abs().max())
    torch.testing.assert_close(recorded, plain, rtol=0, atol=1e-4 * scale)


def test_errors(prior):
    with pytest.raises(InputError) as err, record_cross_attention(torch.nn.Linear(2, 2), [1]):
        pass
    assert str(err.value) == "unet must be a diffusers UNet2DConditionModel, got Linear"
    with pytest.raises(InputError) as err:
        AttentionRecorder([])
    assert str(err.value) == "tokens must be a non-empty list of indices >= 0, got []"
    with pytest.raises(InputError) as err:
        AttentionRecorder([1]).maps(8)
    assert str(err.value) == (
        "no cross-attention was recorded: the UNet ran no cross-attention layer inside "
        "record_cross_attention"
    )
    with pytest.raises(InputError) as err:
        token_indices(prior.tokenizer, "a hat", "cap")
    assert str(err.value) == (
        "localise_words 'cap' are not in the prompt 'a hat' (as the text encoder reads it, "
        "truncated): name words of the prompt"
    )
    with pytest.raises(InputError) as err, record_cross_attention(prior.unet, [40]):
        prior(torch.rand(1, 3, 16, 16), views(1), 0, 10)
    assert str(err.value) == "token index 40 is past the text's 16 tokens"
