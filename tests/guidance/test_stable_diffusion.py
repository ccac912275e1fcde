"""Stable Diffusion guidance with a tiny random model built in the test and loaded back through the
real loading path (no downloads): gradients of the right shape, finite, equal to a direct
autograd computation of the SDS loss; cached text embeddings; view prompts by azimuth; the coarse
latent mode; model resolution (folder, environment, Hugging Face cache) and its errors."""

import shutil
import sys

import pytest
import torch

from fields3d.errors import BackendUnavailable, CheckpointError, InputError, ModelNotFound
from fields3d.guidance import (
    ScoreDistillation,
    SphericalCameras,
    StableDiffusionGuidance,
    create,
    view_directions,
)
from fields3d.guidance.stable_diffusion import HOW_TO_GET, LAYOUT

pytest.importorskip("diffusers", reason="needs pip install 'fields3d[generate]'")
pytest.importorskip("transformers", reason="needs pip install 'fields3d[generate]'")

import tiny_sd  # tests/guidance/tiny_sd.py


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_sd.build(tmp_path_factory.mktemp("sd") / "tiny-sd")


@pytest.fixture(scope="module")
def prior(model_dir):
    return create(f"stable_diffusion:{model_dir}", prompt="a ceramic mug", device="cpu", seed=3)


def views(azimuth, elevation=None) -> SphericalCameras:
    az = torch.tensor(azimuth, dtype=torch.float32)
    el = torch.full_like(az, 15.0) if elevation is None else torch.tensor(elevation)
    n = len(az)
    return SphericalCameras(az, el, torch.full((n,), 2.5), torch.full((n,), 40.0))


def test_loads_and_guides(prior, model_dir):
    assert isinstance(prior, StableDiffusionGuidance) and prior.path == model_dir
    assert prior.dtype == torch.float32  # fp32 on the CPU
    assert (prior.latent_size, prior.image_size) == (8, 16)
    renders = torch.rand(4, 3, 24, 24)
    out = prior(renders, views([0.0, 90.0, 180.0, 30.0], [10.0, 10.0, 10.0, 70.0]), 0, 10)
    assert out.grad.shape == renders.shape and out.grad.dtype == torch.float32
    assert bool(torch.isfinite(out.grad).all()) and float(out.grad.abs().max()) > 0
    diag = out.diagnostics
    assert diag["nonfinite"] == 0 and len(diag["t"]) == 4 and diag["t_range"] == [20, 980]
    assert diag["prompts"] == [
        "a ceramic mug, front view",
        "a ceramic mug, side view",
        "a ceramic mug, back view",
        "a ceramic mug, overhead view",
    ]
    config = prior.config()
    assert config["guidance"] == "stable_diffusion" and config["guidance_scale"] == 100.0
    assert config["model"] == str(model_dir) and config["dtype"] == "float32"


def test_text_embeddings_are_cached_per_prompt(prior, monkeypatch):
    calls = []
    forward = prior.text_encoder.forward
    monkeypatch.setattr(
        prior.text_encoder, "forward", lambda *a, **k: calls.append(1) or forward(*a, **k)
    )
    cams = views([0.0, 90.0, 180.0, 270.0])
    prior(torch.rand(4, 3, 16, 16), cams, 1, 10)
    first = len(calls)
    prior(torch.rand(4, 3, 16, 16), cams, 2, 10)
    prior(torch.rand(2, 3, 16, 16), views([10.0, 200.0]), 3, 10)
    assert len(calls) == first  # every prompt was already encoded
    assert set(prior._embeddings) >= {
        "",
        "a ceramic mug, front view",
        "a ceramic mug, side view",
        "a ceramic mug, back view",
    }
    a = prior.text_embedding("a ceramic mug, side view")
    assert prior.text_embedding("a ceramic mug, side view") is a and a.shape == (1, 16, 16)


def test_view_directions_follow_threestudio():
    az = [0.0, 44.9, 45.0, 90.0, 135.0, 135.1, 180.0, -180.0, 200.0, 350.0, -44.9, 225.0, 224.9]
    expected = ["front", "front", "side", "side", "side", "back", "back", "back", "back"]
    expected += ["front", "front", "side", "back"]
    assert view_directions(torch.tensor(az), torch.zeros(len(az))) == expected
    el = torch.tensor([60.0, 60.1, 89.0])
    assert view_directions(torch.tensor([0.0, 0.0, 180.0]), el) == ["front", "overhead", "overhead"]


def test_sds_gradient_matches_autograd_of_the_same_loss(prior, monkeypatch):
    renders = torch.rand(2, 3, 20, 20)
    cams = views([0.0, 180.0])
    t = torch.tensor([150, 700])
    noise = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(prior.sds, "draw", lambda shape, step, total: (t, noise))
    out = prior(renders, cams, 0, 10)
    assert out.diagnostics["t"] == [150, 700]

    x = renders.clone().requires_grad_(True)
    pictures = torch.nn.functional.interpolate(x, (16, 16), mode="bilinear", antialias=True)
    z = prior.vae.encode(pictures * 2 - 1).latent_dist.mean * prior.vae.config.scaling_factor
    a = prior.sds.schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    with torch.no_grad():
        noisy = a.sqrt() * z + (1 - a).sqrt() * noise
        cond = torch.cat(
            [prior.text_embedding(f"a ceramic mug, {d} view") for d in ("front", "back")]
        )
        uncond = prior.text_embedding("").expand(2, -1, -1)
        eps = prior.unet(
            torch.cat([noisy, noisy]),
            torch.cat([t, t]),
            encoder_hidden_states=torch.cat([cond, uncond]),
        ).sample
        eps_cond, eps_uncond = eps.chunk(2)
        eps_hat = eps_uncond + 100 * (eps_cond - eps_uncond)
        g = (1 - a) * (eps_hat - noise)
    loss = 0.5 * ((z - (z - g).detach()) ** 2).sum() / 2
    loss.backward()
    torch.testing.assert_close(out.grad, x.grad, rtol=1e-4, atol=1e-6)
    assert out.diagnostics["loss"] == pytest.approx(float(loss.detach()), rel=1e-4)


def test_same_seed_same_gradient(model_dir, prior):
    other = StableDiffusionGuidance("a ceramic mug", model=model_dir, device="cpu", seed=3)
    fresh = StableDiffusionGuidance("a ceramic mug", model=model_dir, device="cpu", seed=3)
    renders, cams = torch.rand(2, 3, 16, 16), views([0.0, 90.0])
    torch.testing.assert_close(other(renders, cams, 0, 10).grad, fresh(renders, cams, 0, 10).grad)
    assert prior.sds.seed == 3 and isinstance(prior.sds, ScoreDistillation)


def test_direct_latents_the_coarse_stage(model_dir):
    coarse = StableDiffusionGuidance(
        "a ceramic mug", model=model_dir, device="cpu", latents="direct", view_prompts=False
    )
    renders = torch.randn(2, 4, 12, 12)
    out = coarse(renders, views([0.0, 90.0]), 0, 10)
    assert out.grad.shape == renders.shape and bool(torch.isfinite(out.grad).all())
    assert out.diagnostics["prompts"] == ["a ceramic mug", "a ceramic mug"]
    with pytest.raises(InputError) as e:
        coarse(torch.rand(1, 3, 12, 12), views([0.0]), 0, 10)
    assert str(e.value) == (
        'latents="direct" takes renders with the UNet\'s 4 latent channels, (B, 4, H, W), got '
        '(1, 3, 12, 12); use latents="encode" for RGB renders'
    )


# ---- where the model comes from --------------------------------------------------------------


def test_model_from_the_environment(model_dir, monkeypatch):
    monkeypatch.setenv("FIELDS3D_SD_MODEL", str(model_dir))
    assert create("stable_diffusion", prompt="a mug", device="cpu").path == model_dir


def test_model_from_the_local_hugging_face_cache(model_dir, tmp_path, monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    cache = tmp_path / "hub"
    repo = cache / "models--someone--tiny-sd"
    shutil.copytree(model_dir, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd", encoding="utf-8")
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)  # no folder someone/tiny-sd here
    prior = StableDiffusionGuidance("a mug", model="someone/tiny-sd", device="cpu")
    assert prior.path == repo / "snapshots" / "0123abcd"
    with pytest.raises(ModelNotFound) as e:
        StableDiffusionGuidance("a mug", model="someone/other-model", device="cpu")
    assert str(e.value) == (
        "Stable Diffusion model not found: someone/other-model does not exist and no model of "
        f"that name is in the local Hugging Face cache; {LAYOUT}; {HOW_TO_GET}"
    )


# ---- errors ----------------------------------------------------------------------------------


def test_layout_and_how_to_get_a_model_are_spelled_out():
    assert LAYOUT == (
        "a Stable Diffusion 1.x/2.x folder in the diffusers layout holds unet/, vae/ and "
        "text_encoder/ (each a config.json and its weights), tokenizer/ (vocab.json, merges.txt) "
        "and scheduler/scheduler_config.json"
    )
    assert HOW_TO_GET == (
        "to get one, run `hf download stabilityai/stable-diffusion-2-1-base --local-dir "
        "stable-diffusion-2-1-base` (`huggingface-cli download` with older huggingface_hub) on a "
        "machine with network and copy that folder to this one"
    )


def test_missing_model_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("FIELDS3D_SD_MODEL", raising=False)
    with pytest.raises(ModelNotFound) as e:
        create("stable_diffusion", prompt="a mug", device="cpu")
    assert str(e.value) == (
        "no Stable Diffusion model given: pass --model PATH (model= in Python) or set "
        f"FIELDS3D_SD_MODEL; {LAYOUT}; {HOW_TO_GET}"
    )
    missing = tmp_path / "models" / "sd21"
    with pytest.raises(ModelNotFound) as e:
        create(f"stable_diffusion:{missing}", prompt="a mug", device="cpu")
    assert str(e.value) == (
        f"Stable Diffusion model not found: {missing} does not exist; {LAYOUT}; {HOW_TO_GET}"
    )
    afile = tmp_path / "model.safetensors"
    afile.write_bytes(b"x")
    with pytest.raises(ModelNotFound) as e:
        create("stable_diffusion", model=str(afile), prompt="a mug", device="cpu")
    assert str(e.value) == (
        f"Stable Diffusion model {afile} is a file, not a folder; {LAYOUT}; {HOW_TO_GET}"
    )
    with pytest.raises(ModelNotFound) as e:
        create("stable_diffusion", model=str(tmp_path), prompt="a mug", device="cpu")
    assert str(e.value) == (
        f"{tmp_path} is not a Stable Diffusion model folder: it has none of unet/, vae/, "
        f"text_encoder/, tokenizer/, scheduler/; {LAYOUT}; {HOW_TO_GET}"
    )


def test_incomplete_corrupt_and_mismatched_folders(model_dir, tmp_path):
    broken = shutil.copytree(model_dir, tmp_path / "broken")
    (broken / "unet" / "config.json").unlink()
    (broken / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(CheckpointError) as e:
        create(f"stable_diffusion:{broken}", prompt="a mug", device="cpu")
    assert str(e.value) == (
        f"Stable Diffusion model {broken} is incomplete: it lacks unet/config.json, "
        f"vae/diffusion_pytorch_model.safetensors (or .bin); {LAYOUT}; download it again "
        f"({HOW_TO_GET})"
    )
    corrupt = shutil.copytree(model_dir, tmp_path / "corrupt")
    (corrupt / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(
        b"not a safetensors file"
    )
    with pytest.raises(CheckpointError) as e:
        create(f"stable_diffusion:{corrupt}", prompt="a mug", device="cpu")
    text = str(e.value)
    assert text.startswith(f"Stable Diffusion model {corrupt} is corrupt: cannot load unet/ (")
    assert text.endswith(f"); download it again ({HOW_TO_GET})")
    (corrupt / "unet").joinpath("config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError) as e:
        create(f"stable_diffusion:{corrupt}", prompt="a mug", device="cpu")
    assert str(e.value).startswith(
        f"Stable Diffusion model {corrupt} is corrupt: cannot load unet/ ("
    )
    bad_scheduler = shutil.copytree(model_dir, tmp_path / "bad-scheduler")
    (bad_scheduler / "scheduler" / "scheduler_config.json").write_text(
        '{"beta_schedule": "cosine"}', encoding="utf-8"
    )
    with pytest.raises(CheckpointError) as e:
        create(f"stable_diffusion:{bad_scheduler}", prompt="a mug", device="cpu")
    config = bad_scheduler / "scheduler" / "scheduler_config.json"
    assert str(e.value) == (
        f"Stable Diffusion model {bad_scheduler} is corrupt: cannot load scheduler/ "
        f"(CheckpointError: cannot read the scheduler config {config} (beta_schedule must be "
        "'linear', 'scaled_linear' or 'squaredcos_cap_v2', got 'cosine')); download it again "
        f"({HOW_TO_GET})"
    )
    mixed = tiny_sd.build(tmp_path / "mixed", text_width=32)
    with pytest.raises(CheckpointError) as e:
        create(f"stable_diffusion:{mixed}", prompt="a mug", device="cpu")
    assert str(e.value) == (
        f"Stable Diffusion model {mixed} does not fit together: the UNet's cross_attention_dim "
        "is 16 but the text encoder's hidden_size is 32; its parts come from different models, "
        f"download it again ({HOW_TO_GET})"
    )


def test_prompt_and_setting_errors(model_dir):
    cases = [
        ({"prompt": ""}, "prompt must describe what to generate (e.g. 'a ceramic mug'), got ''"),
        (
            {"prompt": "   "},
            "prompt must describe what to generate (e.g. 'a ceramic mug'), got '   '",
        ),
        ({"prompt": 3}, "prompt must be a string, got int"),
        (
            {"prompt": "a mug", "guidance_scale": -1},
            "guidance_scale must be a number >= 0, got -1",
        ),
        ({"prompt": "a mug", "latents": "rgb"}, "latents must be 'encode' or 'direct', got 'rgb'"),
    ]
    for kw, text in cases:
        with pytest.raises(InputError) as e:
            create(f"stable_diffusion:{model_dir}", device="cpu", **kw)
        assert str(e.value) == text


def test_without_the_generate_extra(monkeypatch, model_dir):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers now raises ImportError
    with pytest.raises(BackendUnavailable) as e:
        create(f"stable_diffusion:{model_dir}", prompt="a mug", device="cpu")
    assert str(e.value) == (
        "Stable Diffusion guidance needs diffusers and transformers (diffusers is not "
        "installed): pip install 'fields3d[generate]'"
    )
