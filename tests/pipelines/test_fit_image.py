"""End-to-end: fit_image on a 64 x 64 crop of the shipped photograph, its outputs and its errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fields3d.errors import InputError, ModelNotFound, TrainingDiverged
from fields3d.pipelines.fit_image import FitImageConfig, default_per_level_scale, fit_image

ASTRONAUT = Path(__file__).resolve().parents[2] / "assets" / "images" / "astronaut.png"
CROP_BOX = (96, 32, 160, 96)  # 64 x 64 around the face: edges, texture and smooth skin
FAST = {"steps": 150, "batch_size": 4096, "log2_hashmap_size": 14, "device": "cpu"}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return -10.0 * math.log10(float(np.mean((a - b) ** 2)))


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0


@pytest.fixture(scope="module")
def crop(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("image") / "crop.png"
    Image.open(ASTRONAUT).convert("RGB").crop(CROP_BOX).save(path)
    return path


@pytest.fixture(scope="module")
def fitted(crop, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    return fit_image(FitImageConfig(image=crop, out_dir=out, **FAST), progress=False), out


def test_fit_beats_the_mean_colour_by_far(crop, fitted):
    result, _ = fitted
    target = _read(crop)
    mean_colour = _psnr(target.mean(axis=(0, 1), keepdims=True), target)  # about 12 dB
    # measured 33.9 dB on a quiet 2-core CPU; a broken sampler, schedule or layout lands far lower
    assert result.psnr > mean_colour + 16.0
    assert result.psnr > 29.0
    assert result.steps == 150 and result.device == "cpu" and result.seconds > 0


def test_writes_all_outputs(crop, fitted):
    result, out = fitted
    assert set(result.paths) == {"fit", "comparison", "metrics", "config"}
    assert {p.name for p in out.iterdir()} == {
        "fit.png",
        "comparison.png",
        "metrics.json",
        "config.json",
    }
    target, fit = _read(crop), _read(out / "fit.png")
    assert fit.shape == (64, 64, 3)
    assert _psnr(fit, target) == pytest.approx(
        result.psnr, abs=0.3
    )  # the PNG is the fit, not transposed
    comparison = _read(out / "comparison.png")
    assert comparison.shape == (64, 192, 3)
    np.testing.assert_allclose(comparison[:, :64], target, atol=1 / 255)
    np.testing.assert_allclose(comparison[:, 64:128], fit, atol=1 / 255)
    np.testing.assert_allclose(
        comparison[:, 128:], np.clip(4 * np.abs(fit - target), 0, 1), atol=5 / 255
    )


def test_metrics_and_resolved_config(crop, fitted):
    result, out = fitted
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["psnr"] == pytest.approx(result.psnr)
    assert metrics["steps"] == 150 and metrics["n_params"] == result.n_params > 0
    assert metrics["device"] == "cpu" and metrics["torch"]
    config = json.loads((out / "config.json").read_text())
    assert config["image"] == str(crop) and config["device"] == "cpu"
    assert config["log2_hashmap_size"] == 14 and config["batch_size"] == 4096
    assert config["per_level_scale"] == pytest.approx(default_per_level_scale(64, 16, 16))
    assert not list(out.glob("*.tmp"))


def test_per_level_scale_reaches_the_image_resolution():
    scale = default_per_level_scale(256, 16, 16)
    assert scale == pytest.approx(math.exp(math.log(16) / 15))
    assert 16 * scale**15 == pytest.approx(256)
    assert default_per_level_scale(8, 16, 16) == 1.0 and default_per_level_scale(256, 1, 16) == 1.0


def test_missing_image(tmp_path):
    path = tmp_path / "missing.png"
    with pytest.raises(ModelNotFound) as info:
        fit_image(FitImageConfig(image=path, out_dir=tmp_path / "out", **FAST))
    assert str(info.value) == f"image not found: {path}; pass the path of a PNG or JPEG file"
    assert not (tmp_path / "out").exists()


def test_unreadable_image(tmp_path):
    path = tmp_path / "garbage.png"
    path.write_bytes(b"this is not a PNG file\x00\x01\x02" * 8)
    with pytest.raises(InputError) as info:
        fit_image(FitImageConfig(image=path, out_dir=tmp_path / "out", **FAST))
    assert (
        str(info.value) == f"cannot read image {path}: unrecognised format; pass a PNG or JPEG file"
    )


def test_16_bit_and_float_grey_pictures_keep_their_tones(tmp_path):
    from fields3d.pipelines._common import load_image
    from fields3d.render.datasets import unit_pixels

    ramp = np.linspace(0.0, 1.0, 64 * 48).reshape(48, 64)
    Image.fromarray(np.round(ramp * 65535).astype(np.uint16)).save(tmp_path / "g16.png")
    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "f.tiff")
    for name in ("g16.png", "f.tiff"):  # PIL's convert("RGB") clipped both at 255: black and white
        rgb = load_image(tmp_path / name)
        assert rgb.shape == (48, 64, 3) and rgb.dtype == torch.float32
        np.testing.assert_allclose(
            rgb.numpy(), np.repeat(ramp[..., None], 3, axis=2), atol=1e-5
        )  # 16-bit steps
    with Image.open(tmp_path / "g16.png") as im:
        rgba = unit_pixels(im, "RGBA")
    assert rgba.shape == (48, 64, 4) and (rgba[..., 3] == 1).all()


def test_large_image_loads_without_the_decompression_warning(tmp_path, monkeypatch):
    import warnings

    from fields3d.pipelines._common import load_image

    path = tmp_path / "a.png"
    Image.new("RGB", (10, 12), (10, 20, 30)).save(path)
    monkeypatch.setattr(
        Image, "MAX_IMAGE_PIXELS", 100
    )  # 120 pixels: over the limit, under twice it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(path).shape == (12, 10, 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # past twice the limit: a named error
    with pytest.raises(InputError) as info:
        load_image(path)
    assert str(info.value) == (
        f"cannot read image {path}: it has more than 100 pixels, which PIL refuses as a "
        "possible decompression bomb; downscale it"
    )


def test_a_folder_is_not_an_image(tmp_path):
    with pytest.raises(InputError) as info:
        fit_image(FitImageConfig(image=tmp_path, out_dir=tmp_path / "out", **FAST))
    assert (
        str(info.value)
        == f"cannot read image {tmp_path}: it is a folder; pass the path of a PNG or JPEG file"
    )


def test_an_output_that_cannot_be_written_fails_before_training(tmp_path, crop):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError) as info:
        fit_image(FitImageConfig(image=crop, out_dir=tmp_path / "file", **FAST), progress=False)
    assert str(info.value) == (
        f"cannot create the folder {tmp_path / 'file'} for metrics.json ({tmp_path / 'file'} "
        "is a file); pass an output path in a folder you can write"
    )


def test_a_diverged_fit_writes_no_nan_metrics(tmp_path, crop):
    with pytest.raises(TrainingDiverged) as info:
        fit_image(
            FitImageConfig(image=crop, out_dir=tmp_path / "out", **{**FAST, "lr": 1e30}),
            progress=False,
        )
    assert (
        str(info.value)
        == "training diverged: the loss is nan at step 150; lower the learning rate (lr 1e+30) "
        "and start again"
    )
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_truncated_image(tmp_path, crop):
    path = tmp_path / "truncated.png"
    path.write_bytes(crop.read_bytes()[:200])
    with pytest.raises(
        InputError, match=rf"^cannot read image {path}: .+; pass a PNG or JPEG file$"
    ):
        fit_image(FitImageConfig(image=path, out_dir=tmp_path / "out", **FAST))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("steps", 0, "steps must be an integer >= 1, got 0"),
        ("steps", 1.5, "steps must be an integer >= 1, got 1.5"),
        ("batch_size", -4, "batch_size must be an integer from 1 to 16777216, got -4"),
        ("batch_size", 10**10, "batch_size must be an integer from 1 to 16777216, got 10000000000"),
        (
            "seed",
            10**20,
            "seed must be an integer from 0 to 9223372036854775807, got 100000000000000000000",
        ),
        ("device", "tpu", "device must be 'auto', 'cpu' or 'cuda', got 'tpu'"),
        ("lr", 0.0, "lr must be a number > 0, got 0.0"),
        (
            "eps",
            math.nan,
            "eps must be a finite number >= 0, got nan",
        ),  # torch's Adam: "Invalid epsilon value"
        (
            "eps",
            math.inf,
            "eps must be a finite number >= 0, got inf",
        ),  # Adam steps of 0: an untrained fit
        ("betas", None, "betas must be two numbers in [0, 1), got None"),
        ("lr_decay_at", 0.5, "lr_decay_at must be fractions of the steps in (0, 1), got 0.5"),
        (
            "image",
            None,
            "image must be the path of an image file (a str or os.PathLike), got NoneType",
        ),
        ("image", "", "image must be the path of an image file, got an empty string"),
        (
            "out_dir",
            5,
            "out_dir must be the path of the output folder (a str or os.PathLike), got int",
        ),
        # Path("") is the working folder: `-o ''` wrote fit.png and the rest there
        ("out_dir", "", "out_dir must be the path of the output folder, got an empty string"),
    ],
)
def test_bad_settings(field, value, message):
    with pytest.raises(InputError) as info:
        FitImageConfig(**{"image": "any.png", field: value})
    assert str(info.value) == message


def test_hash_grid_settings_are_checked_with_the_config():
    with pytest.raises(InputError, match=r"^log2_hashmap_size must be "):
        FitImageConfig(image="any.png", log2_hashmap_size=40)


def test_cuda_without_a_gpu_says_how_to_fix(crop, tmp_path):
    import torch

    from fields3d.errors import BackendUnavailable

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible, so device='cuda' is valid here")
    with pytest.raises(
        BackendUnavailable, match=r"^device 'cuda' was requested but torch .* sees no CUDA device; "
    ):
        fit_image(FitImageConfig(image=crop, out_dir=tmp_path, **{**FAST, "device": "cuda"}))


def test_metrics_record_the_encoding(fitted):
    result, out = fitted
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["encoding"]
        == result.encoding
        == {
            "type": "hash_grid",
            "n_input_dims": 2,
            "n_levels": 16,
            "n_features_per_level": 2,
            "log2_hashmap_size": 14,
            "base_resolution": 16,
            "per_level_scale": pytest.approx(default_per_level_scale(64, 16, 16)),
            "interpolation": "linear",
        }
    )
    assert 0 < metrics["encoding_n_params"] < metrics["n_params"] == result.n_params
    assert json.loads((out / "config.json").read_text())["encoding"] == metrics["encoding"]


TINY = {**FAST, "steps": 2, "batch_size": 256}


def test_an_encoding_dict_gets_2d_and_the_image_scale(crop, tmp_path):
    result = fit_image(
        FitImageConfig(
            image=crop, out_dir=tmp_path, encoding={"type": "hash_grid", "n_levels": 8}, **TINY
        ),
        progress=False,
    )
    assert result.encoding["n_input_dims"] == 2 and result.encoding["n_levels"] == 8
    assert (
        result.encoding["log2_hashmap_size"] == 14
    )  # the flat field fills what the dict leaves out
    assert result.encoding["per_level_scale"] == pytest.approx(default_per_level_scale(64, 8, 16))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["n_levels"] == 8 and config["encoding"] == result.encoding
    assert FitImageConfig(**config).encoding == result.encoding  # the written config reads back


def test_any_registered_2d_encoding_fits(crop, tmp_path):
    part = {"type": "hash_grid", "n_levels": 2, "log2_hashmap_size": 10}
    encoding = {"type": "concat", "encodings": [part, dict(part, base_resolution=4)]}
    result = fit_image(
        FitImageConfig(
            image=crop, out_dir=tmp_path, encoding=encoding, steps=2, batch_size=256, device="cpu"
        ),
        progress=False,
    )
    assert result.encoding["type"] == "concat" and result.field.encoding.n_output_dims == 8
    assert [e["n_input_dims"] for e in result.encoding["encodings"]] == [2, 2]
    assert json.loads((tmp_path / "metrics.json").read_text())["encoding"] == result.encoding


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"encoding": "hash_grid"}, 'encoding must be None or a dict with a "type" key, got str'),
        (
            {"encoding": {"type": "hashgrid"}},
            "unknown encoding type 'hashgrid'; known types: {known}",
        ),
        (
            {"encoding": {"type": "hash_grid", "n_input_dims": 3}},
            "the hash_grid encoding is set to n_input_dims=3; fit-image needs n_input_dims=2 (leave it out to get 2)",
        ),
        (
            {"encoding": {"type": "hash_grid", "n_levels": 4}, "n_levels": 8},
            "n_levels=8 disagrees with the encoding's n_levels=4; set it in one place",
        ),
        (
            {
                "encoding": {"type": "concat", "encodings": [{"type": "hash_grid"}]},
                "log2_hashmap_size": 12,
            },
            "log2_hashmap_size=12 is a hash-grid setting but the encoding is 'concat'; leave it out or put the "
            "encoding's own settings in its dict",
        ),
    ],
)
def test_bad_encodings(settings, message):
    from fields3d.encodings import available

    with pytest.raises(InputError) as info:
        FitImageConfig(image="any.png", **settings)
    assert str(info.value) == message.format(known=", ".join(available()))
