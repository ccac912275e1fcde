"""Stable Diffusion guidance (``stable_diffusion[:MODEL_DIR]``): SDS with a text-to-image prior.

The model is a Stable Diffusion 1.x / 2.x folder in the diffusers layout: ``unet/``
(UNet2DConditionModel), ``vae/`` (AutoencoderKL), ``text_encoder/`` (CLIPTextModel) and
``tokenizer/`` (CLIPTokenizer), each with its config and weights, and ``scheduler/`` (a DDPM, DDIM
or PNDM ``scheduler_config.json``: only its noise schedule is used, see
:class:`~fields3d.guidance.sds.NoiseSchedule`). It comes from ``model=`` (``--model PATH``) or
the environment variable ``FIELDS3D_SD_MODEL``: a folder, or the name of a model already in the
local Hugging Face cache (``stabilityai/stable-diffusion-2-1-base``). Nothing is ever
downloaded: every part loads with ``local_files_only=True``. Weights are float16 on CUDA and
float32 on the CPU. diffusers and transformers are the optional extra ``fields3d[generate]``;
importing :mod:`fields3d.guidance` does not need them, building this prior does.

Per call (after :class:`~fields3d.guidance.Guidance`'s checks):

- **Latents.** ``latents="encode"`` (default): renders ``(B, 3, H, W)`` in ``[0, 1]`` resized to
  the model's picture size (512 for SD 2.1-base: the UNet's ``sample_size`` times the VAE's
  downsampling; bilinear, anti-aliased when shrinking), mapped to ``[-1, 1]`` and encoded by the
  VAE to its posterior mean times ``scaling_factor`` (``(B, 4, 64, 64)``); the gradient flows
  back through the encoder. ``latents="direct"`` (the fast coarse stage, threestudio's
  ``rgb_as_latents``): renders with the UNet's 4 channels, resized to the latent size, are the
  latents themselves.
- **Prompts.** With ``view_prompts`` (default) each view's prompt is ``"<prompt>, <d> view"`` with
  ``d`` from its camera by threestudio's rules and thresholds (:func:`view_directions`); text
  embeddings are computed once per distinct prompt and cached. The unconditional branch uses
  ``negative_prompt`` (default ``""``).
- **Noise prediction.** Classifier-free guidance,
  ``eps_hat = eps(z_t, t, negative) + guidance_scale * (eps(z_t, t, prompt) - eps(z_t, t, negative))``
  (default scale 100, DreamFusion's), one UNet call on the doubled batch; a ``v_prediction``
  model's output is turned into a noise prediction first.

The SDS step itself (timesteps, weighting, clipping, NaN guard, the latent-target loss) is
:mod:`fields3d.guidance.sds`'s.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import torch

from .._checks import is_number
from ..errors import BackendUnavailable, CheckpointError, InputError, ModelNotFound, first_line
from .base import Guidance, SphericalCameras, resolve_device
from .factory import register
from .sds import T_MAX, T_MAX_END, T_MIN, NoiseSchedule, ScoreDistillation
from .target import resize

ENV_MODEL = "FIELDS3D_SD_MODEL"
SUGGESTED_MODEL = "stabilityai/stable-diffusion-2-1-base"
LATENT_MODES = ("encode", "direct")
#: threestudio's view thresholds in degrees (its PromptProcessor defaults).
FRONT_THRESHOLD, BACK_THRESHOLD, OVERHEAD_THRESHOLD = 45.0, 45.0, 60.0
DIRECTIONS = ("side", "front", "back", "overhead")

LAYOUT = (
    "a Stable Diffusion 1.x/2.x folder in the diffusers layout holds unet/, vae/ and "
    "text_encoder/ (each a config.json and its weights), tokenizer/ (vocab.json, merges.txt) "
    "and scheduler/scheduler_config.json"
)
HOW_TO_GET = (
    f"to get one, run `hf download {SUGGESTED_MODEL} --local-dir stable-diffusion-2-1-base` "
    "(`huggingface-cli download` with older huggingface_hub) on a machine with network and copy "
    "that folder to this one"
)
EXTRA = "pip install 'fields3d[generate]'"

# (subfolder, files it must hold, weight-file stems: any of them, .safetensors or .bin, sharded
# or an fp16 variant)
PARTS = (
    ("unet", ("config.json",), ("diffusion_pytorch_model",)),
    ("vae", ("config.json",), ("diffusion_pytorch_model",)),
    ("text_encoder", ("config.json",), ("model", "pytorch_model")),
    ("tokenizer", ("vocab.json", "merges.txt"), ()),
    ("scheduler", ("scheduler_config.json",), ()),
)


def _libraries():
    """diffusers' and transformers' classes, or BackendUnavailable naming the extra."""
    try:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "diffusers or transformers"
        raise BackendUnavailable(
            f"Stable Diffusion guidance needs diffusers and transformers ({missing} is not "
            f"installed): {EXTRA}"
        ) from None
    return AutoencoderKL, UNet2DConditionModel, CLIPTextModel, CLIPTokenizer


def view_directions(
    azimuth: torch.Tensor,
    elevation: torch.Tensor,
    front: float = FRONT_THRESHOLD,
    back: float = BACK_THRESHOLD,
    overhead: float = OVERHEAD_THRESHOLD,
) -> list[str]:
    """Each view's direction word, by threestudio's rules: with the azimuth shifted into
    ``[-180, 180)``, ``"overhead"`` if ``elevation > overhead``, else ``"front"`` if
    ``|azimuth| < front``, ``"back"`` if ``|azimuth| > 180 - back``, else ``"side"`` (all
    comparisons strict; degrees).

    Example:
        >>> import torch
        >>> from fields3d.guidance import view_directions
        >>> view_directions(torch.tensor([0.0, 90.0, 180.0, 350.0, 0.0]),  # (B,) azimuths
        ...                 torch.tensor([0.0, 0.0, 0.0, 0.0, 75.0]))     # (B,) elevations
        ['front', 'side', 'back', 'front', 'overhead']
    """
    az = (azimuth.double().cpu() + 180) % 360 - 180
    el = elevation.double().cpu()
    names = []
    for a, e in zip(az.tolist(), el.tolist()):
        if e > overhead:
            names.append("overhead")
        elif -front < a < front:
            names.append("front")
        elif a > 180 - back or a < -180 + back:
            names.append("back")
        else:
            names.append("side")
    return names


def _looks_like_repo_id(text: str) -> bool:
    parts = text.split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not text.startswith((".", "~"))
        and "\\" not in text
        and " " not in text
    )


def _from_hf_cache(repo_id: str) -> Path | None:
    """The local Hugging Face cache's snapshot of ``repo_id``, or None (never downloads)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached, an invalid name, an unreadable cache: no such local model
        return None


def resolve_model(model: str | os.PathLike | None) -> Path:
    """The model folder ``model`` (or ``$FIELDS3D_SD_MODEL`` when None) names: a folder, or a
    model in the local Hugging Face cache.

    Raises:
        ModelNotFound: no model given, nothing at that path (and no such cached model), a file
            instead of a folder, or a folder with none of the model's parts (each message names
            the path, the layout expected and how to get a model onto the machine).
        InputError: ``model`` is not a path.
    """
    if model is None:
        model = os.environ.get(ENV_MODEL) or None
        if model is None:
            raise ModelNotFound(
                f"no Stable Diffusion model given: pass --model PATH (model= in Python) or set "
                f"{ENV_MODEL}; {LAYOUT}; {HOW_TO_GET}"
            )
    if not isinstance(model, (str, os.PathLike)) or isinstance(os.fspath(model), bytes):
        raise InputError(
            f"model must be the path of a Stable Diffusion folder (a str or os.PathLike), got {type(model).__name__}"
        )
    if not os.fspath(model):
        raise InputError("model must be the path of a Stable Diffusion folder, got an empty string")
    path = Path(model).expanduser()
    if not path.exists():
        cached = _from_hf_cache(os.fspath(model)) if _looks_like_repo_id(os.fspath(model)) else None
        if cached is None:
            also = (
                " and no model of that name is in the local Hugging Face cache"
                if _looks_like_repo_id(os.fspath(model))
                else ""
            )
            raise ModelNotFound(
                f"Stable Diffusion model not found: {path} does not exist{also}; {LAYOUT}; {HOW_TO_GET}"
            )
        path = cached
    if not path.is_dir():
        raise ModelNotFound(
            f"Stable Diffusion model {path} is a file, not a folder; {LAYOUT}; {HOW_TO_GET}"
        )
    if not any((path / part).is_dir() for part, _, _ in PARTS):
        raise ModelNotFound(
            f"{path} is not a Stable Diffusion model folder: it has none of "
            f"{', '.join(p + '/' for p, _, _ in PARTS)}; {LAYOUT}; {HOW_TO_GET}"
        )
    return path


def _weights(folder: Path, stems: tuple[str, ...]) -> tuple[bool, str | None]:
    """Whether ``folder`` holds weights named by one of ``stems``, and the variant to load
    (None, or ``"fp16"`` when only ``<stem>.fp16.*`` files are there)."""
    files = [f.name for f in folder.iterdir()] if folder.is_dir() else []
    found = [f for f in files if f.startswith(stems) and f.endswith((".safetensors", ".bin"))]
    if not found:
        return False, None
    return True, ("fp16" if all(".fp16." in f for f in found) else None)


def check_layout(path: Path) -> dict[str, str | None]:
    """The weight variant of each part (None or ``"fp16"``).

    Raises:
        CheckpointError: a part's files are missing (all of them listed).
    """
    missing, variants = [], {}
    for part, files, stems in PARTS:
        folder = path / part
        missing += [f"{part}/{f}" for f in files if not (folder / f).is_file()]
        if stems:
            ok, variants[part] = _weights(folder, stems)
            if not ok:
                missing.append(f"{part}/{stems[0]}.safetensors (or .bin)")
    if missing:
        raise CheckpointError(
            f"Stable Diffusion model {path} is incomplete: it lacks {', '.join(missing)}; "
            f"{LAYOUT}; download it again ({HOW_TO_GET})"
        )
    return variants


@register("stable_diffusion")
class StableDiffusionGuidance(Guidance):
    """Score distillation from a Stable Diffusion model (module docstring).

    Args:
        prompt: what to generate (non-empty).
        model: the model folder (or a cached Hugging Face model name); None reads
            ``FIELDS3D_SD_MODEL``. ``stable_diffusion:PATH`` sets it.
        negative_prompt: the unconditional branch's prompt (default ``""``).
        guidance_scale: the classifier-free guidance scale (default 100).
        view_prompts: append ``", <front|side|back|overhead> view"`` per camera (default True).
        latents: ``"encode"`` (default) or ``"direct"`` (module docstring).
        device, seed, weighting, t_min, t_max, t_max_end, grad_clip: as for every prior
            (:class:`~fields3d.guidance.Guidance`, :class:`~fields3d.guidance.sds.ScoreDistillation`).

    Raises:
        InputError: an empty prompt or a bad setting. BackendUnavailable: diffusers or
            transformers missing (install ``fields3d[generate]``), or CUDA asked for without it.
        ModelNotFound: no model (see :func:`resolve_model`). CheckpointError: an incomplete,
            corrupt or mismatched model folder.

    With a model folder on the machine (nothing is downloaded)::

        prior = StableDiffusionGuidance("a ceramic mug", model="/models/sd21")
        out = prior(renders, cameras, step, total_steps)  # renders (B, 3, H, W) in [0, 1]
        out.grad                    # (B, 3, H, W), the renders' dtype and device
        out.diagnostics["prompts"]  # ['a ceramic mug, front view', 'a ceramic mug, side view']

    Example:
        The checks that run before any library or model loads (the examples need no model):

        >>> from fields3d.guidance import StableDiffusionGuidance
        >>> from fields3d.guidance.stable_diffusion import resolve_model
        >>> StableDiffusionGuidance.spec_usage  # a spec names the model folder after ':'
        'stable_diffusion[:MODEL_DIR]'
        >>> StableDiffusionGuidance(" ")
        Traceback (most recent call last):
            ...
        fields3d.errors.InputError: prompt must describe what to generate (e.g. 'a ceramic mug'), got ' '
        >>> resolve_model("/nonexistent/sd21")  # how model= is found  # doctest: +ELLIPSIS
        Traceback (most recent call last):
            ...
        fields3d.errors.ModelNotFound: Stable Diffusion model not found: /nonexistent/sd21 does not exist; ...
    """

    spec_argument = "model"
    spec_usage = "stable_diffusion[:MODEL_DIR]"

    def __init__(
        self,
        prompt: str,
        *,
        model: str | os.PathLike | None = None,
        negative_prompt: str = "",
        guidance_scale: float = 100.0,
        view_prompts: bool = True,
        latents: str = "encode",
        device="auto",
        seed: int = 0,
        weighting: str = "sds",
        t_min: float = T_MIN,
        t_max: float = T_MAX,
        t_max_end: float = T_MAX_END,
        grad_clip: float | None = None,
    ) -> None:
        if not isinstance(prompt, str):
            raise InputError(f"prompt must be a string, got {type(prompt).__name__}")
        if not prompt.strip():
            raise InputError(
                f"prompt must describe what to generate (e.g. 'a ceramic mug'), got {prompt!r}"
            )
        if not isinstance(negative_prompt, str):
            raise InputError(
                f"negative_prompt must be a string, got {type(negative_prompt).__name__}"
            )
        if not (is_number(guidance_scale) and 0 <= guidance_scale < math.inf):
            raise InputError(f"guidance_scale must be a number >= 0, got {guidance_scale!r}")
        if not isinstance(view_prompts, bool):
            raise InputError(f"view_prompts must be True or False, got {view_prompts!r}")
        if latents not in LATENT_MODES:
            raise InputError(f"latents must be 'encode' or 'direct', got {latents!r}")
        classes = _libraries()
        self.device = resolve_device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.path = resolve_model(model)
        variants = check_layout(self.path)
        schedule = self._load_part(
            "scheduler",
            lambda: NoiseSchedule.from_file(self.path / "scheduler" / "scheduler_config.json"),
        )
        self.sds = ScoreDistillation(
            schedule,
            weighting=weighting,
            t_min=t_min,
            t_max=t_max,
            t_max_end=t_max_end,
            grad_clip=grad_clip,
            seed=seed,
        )
        self._load(classes, variants)
        self.prompt, self.negative_prompt = prompt, negative_prompt
        self.guidance_scale, self.view_prompts, self.latent_mode = (
            float(guidance_scale),
            view_prompts,
            latents,
        )
        self._embeddings: dict[str, torch.Tensor] = {}
        self.text_encoder_calls = 0  # prompts encoded (each distinct prompt once)

    # ---- loading -----------------------------------------------------------------------------

    def _load_part(self, part: str, load):
        try:
            return load()
        except (BackendUnavailable, KeyboardInterrupt):
            raise
        except Exception as exc:  # diffusers/transformers raise many kinds for a bad file
            reason = str(exc) if isinstance(exc, CheckpointError) else first_line(exc)
            raise CheckpointError(
                f"Stable Diffusion model {self.path} is corrupt: cannot load {part}/ "
                f"({type(exc).__name__}: {reason}); download it again ({HOW_TO_GET})"
            ) from exc

    def _load(self, classes, variants) -> None:
        vae_cls, unet_cls, text_cls, tokenizer_cls = classes
        path = str(self.path)

        # diffusers' parts load straight into the dtype (it keeps what must stay float32 so);
        # without accelerate, low_cpu_mem_usage would only warn and fall back
        low_memory = importlib.util.find_spec("accelerate") is not None

        def pretrained(cls, part):
            def load():
                kw = {"subfolder": part, "local_files_only": True}
                if variants.get(part):
                    kw["variant"] = variants[part]
                if part != "text_encoder":
                    kw.update(torch_dtype=self.dtype, low_cpu_mem_usage=low_memory)
                module = cls.from_pretrained(path, **kw)
                module = (
                    module.to(self.device)
                    if part != "text_encoder"
                    else module.to(self.device, self.dtype)
                )
                return module.eval().requires_grad_(False)

            return self._load_part(part, load)

        self.tokenizer = self._load_part(
            "tokenizer",
            lambda: tokenizer_cls.from_pretrained(
                path, subfolder="tokenizer", local_files_only=True
            ),
        )
        self.text_encoder = pretrained(text_cls, "text_encoder")
        self.vae = pretrained(vae_cls, "vae")
        self.unet = pretrained(unet_cls, "unet")
        self._check_fit()
        size = self.unet.config.sample_size
        self.latent_size = int(size if isinstance(size, int) else size[0])
        self.image_size = self.latent_size * 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.scaling_factor = float(getattr(self.vae.config, "scaling_factor", 0.18215))

    def _check_fit(self) -> None:
        unet, vae, text = self.unet.config, self.vae.config, self.text_encoder.config
        problems = []
        if unet.cross_attention_dim != text.hidden_size:
            problems.append(
                f"the UNet's cross_attention_dim is {unet.cross_attention_dim} but the text "
                f"encoder's hidden_size is {text.hidden_size}"
            )
        if unet.in_channels != vae.latent_channels:
            problems.append(
                f"the UNet takes {unet.in_channels} latent channels but the VAE makes "
                f"{vae.latent_channels}"
            )
        if len(self.tokenizer) > text.vocab_size:
            problems.append(
                f"the tokenizer has {len(self.tokenizer)} tokens but the text encoder knows "
                f"{text.vocab_size}"
            )
        if problems:
            raise CheckpointError(
                f"Stable Diffusion model {self.path} does not fit together: {'; '.join(problems)}; "
                f"its parts come from different models, download it again ({HOW_TO_GET})"
            )

    def config(self) -> dict:
        return {
            **super().config(),
            "model": str(self.path),
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "guidance_scale": self.guidance_scale,
            "view_prompts": self.view_prompts,
            "latents": self.latent_mode,
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    # ---- text --------------------------------------------------------------------------------

    def text_embedding(self, prompt: str) -> torch.Tensor:
        """``(1, L, D)`` the text encoder's last hidden states for ``prompt``, cached."""
        cached = self._embeddings.get(prompt)
        if cached is None:
            ids = self.tokenizer(
                [prompt],
                padding="max_length",
                max_length=self.tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(self.device)
            with torch.no_grad():
                cached = self.text_encoder(ids)[0].to(self.dtype)
            self._embeddings[prompt] = cached
            self.text_encoder_calls += 1
        return cached

    def view_prompts_for(self, cameras: SphericalCameras) -> list[str]:
        """The prompt of each view (``"<prompt>, <direction> view"``, or the prompt alone)."""
        if not self.view_prompts:
            return [self.prompt] * len(cameras)
        return [
            f"{self.prompt}, {d} view" for d in view_directions(cameras.azimuth, cameras.elevation)
        ]

    # ---- the prior ---------------------------------------------------------------------------

    def latents(self, renders: torch.Tensor) -> torch.Tensor:
        channels = self.unet.config.in_channels
        if self.latent_mode == "direct":
            if renders.shape[1] != channels:
                raise InputError(
                    f'latents="direct" takes renders with the UNet\'s {channels} latent channels, '
                    f'(B, {channels}, H, W), got {tuple(renders.shape)}; use latents="encode" for '
                    "RGB renders"
                )
            return resize(renders.float(), self.latent_size)
        if renders.shape[1] != 3:
            raise InputError(
                f"Stable Diffusion guidance takes RGB renders of shape (B, 3, H, W), got {tuple(renders.shape)}"
            )
        x = resize(renders, self.image_size) * 2 - 1
        posterior = self.vae.encode(x.to(self.dtype)).latent_dist
        return posterior.mean.float() * self.scaling_factor

    def prepare(self, renders: torch.Tensor, cameras: SphericalCameras):
        cond = torch.cat([self.text_embedding(p) for p in self.view_prompts_for(cameras)])
        uncond = self.text_embedding(self.negative_prompt).expand(len(cameras), -1, -1)
        return torch.cat([cond, uncond])

    def predict_noise(
        self, noisy: torch.Tensor, t: torch.Tensor, cameras: SphericalCameras, context
    ) -> torch.Tensor:
        both = torch.cat([noisy, noisy])
        steps = torch.cat([t, t])
        out = self.unet(both.to(self.dtype), steps, encoder_hidden_states=context).sample
        eps = self.sds.schedule.to_noise(out.float(), both, steps)
        cond, uncond = eps.chunk(2)
        return uncond + self.guidance_scale * (cond - uncond)

    def extra_diagnostics(self, cameras: SphericalCameras) -> dict:
        return {"prompts": self.view_prompts_for(cameras)}
