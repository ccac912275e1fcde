"""Image-fit shoot-out: every 2D encoding at about the same parameter count, PSNR over wall time.

Task: ``assets/images/astronaut.png`` (256 x 256 RGB) as in ``fields3d fit-image``: each step
draws ``--batch-size`` random positions (default 2^14 on the CPU, 2^16 on CUDA), samples the
image there bilinearly and takes an Adam step (lr 1e-2 unless ``--lr``, the same for every
encoding; betas 0.9/0.99, eps 1e-15, x0.33 at 50/75/90% of the time budget) on the MSE of an
``ImageField`` (the encoding, then a 64-wide MLP with 2 hidden layers and a sigmoid).

Fairness: every encoding trains for the same ``--seconds`` of wall time (CUDA synchronised at
each checkpoint; evaluation time not counted), or with ``--steps N`` for the same number of steps
(quality per step, free of the machine's speed: the comparison to use on a shared or noisy
machine), with its parameter count matched to ``--params``:
each type has a size rule (hash and simplex grids: table size for a number of levels, the finest
level at the image's 256 pixels; dense grids: resolution for a number of features), tried in its
order of preference (16 levels first; 4 features first); the benchmark takes the setting nearest
the target in the first group that comes within 5% of it (else the nearest of all), so matched
counts are within about 10% of each other. Types without a rule run with their defaults and are
marked unmatched. PSNR is measured on the full image at its pixel centres at every twentieth of
the budget (seconds or steps).

``--sweep`` also runs each encoding at a quarter and four times the target, for final PSNR
against parameter count. ``--large SIDE`` fits a ``SIDE x SIDE`` image made on the spot instead of
the photograph (``_mandelbrot.py``: the stand-in for the simplex paper's gigapixel task; 8192 on
a GPU), with the finest level at ``SIDE`` pixels; images over 2^20 pixels are scored at each
checkpoint on a fixed random 2^20 of their pixels and at the end on all of them. A picture of
the same crop of the target and of every fit (full resolution, the middle of the image) goes
beside the JSON as ``-crops.png``. Writes JSON (config, device, versions, every run's settings, parameter
counts and curve) and a PNG beside it: PSNR over time and final PSNR against parameters.

Usage::

    python benchmarks/image_fit.py [--seconds 30 | --steps 640] [--encodings hash_grid,dense_grid] [--device cpu|cuda]
                                   [--params 65536] [--sweep] [--large SIDE] [--batch-size N] [--lr 1e-2]
                                   [--torch-threads N] [--out PATH.json]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import RESULTS_DIR, environment, print_table, synchronize, usable_device, write_json
from _mandelbrot import mandelbrot
from _plot import Panel, save_panels
from PIL import Image

from fields3d.errors import InputError
from fields3d.fields import ImageField
from fields3d.fields.image import pixel_centres
from fields3d.pipelines._common import load_image
from fields3d.pipelines._encoding import resolve, types_for_dims
from fields3d.pipelines.fit_image import default_per_level_scale, psnr, sample_bilinear

IMAGE = Path(__file__).resolve().parents[1] / "assets" / "images" / "astronaut.png"
SWEEP = (0.25, 1.0, 4.0)
TOLERANCE = (
    0.05  # the first group of a size rule with a candidate this close to the target (relative) wins
)
ADAM = {"lr": 1e-2, "betas": (0.9, 0.99), "eps": 1e-15}
DECAY, DECAY_AT = 0.33, (0.5, 0.75, 0.9)
MLP = {"n_hidden": 64, "n_hidden_layers": 2}
CHECKPOINTS = 20
DEFAULT_BATCH = {"cpu": 2**14, "cuda": 2**16}
EVAL_PIXELS = 2**20  # larger images are scored on this many of their pixels at each checkpoint
CHUNK = 2**18
CROP = 256
LARGE_DEFAULT = ["hash_grid", "simplex_grid"]  # --large compares what the simplex paper compared


def _hash_like(name: str) -> Callable[[int], Iterator[list[dict]]]:
    """Hash-grid style settings grouped by level count, most levels first, the finest level at ``size`` vertices."""

    def groups(size: int) -> Iterator[list[dict]]:
        for levels in range(16, 3, -1):
            scale = default_per_level_scale(size, levels, 16)
            yield [
                {
                    "type": name,
                    "n_levels": levels,
                    "n_features_per_level": 2,
                    "log2_hashmap_size": log2_size,
                    "base_resolution": 16,
                    "per_level_scale": scale,
                }
                for log2_size in range(8, 25)
            ]

    return groups


def _dense(size: int) -> Iterator[list[dict]]:
    """Dense-grid settings grouped by features: 4 (the type's default), then 2, 8, 1, 16."""
    for features in (4, 2, 8, 1, 16):
        yield [
            {"type": "dense_grid", "resolution": r, "n_features": features}
            for r in range(8, 4 * size + 1, 4)
        ]


def _rbf(size: int) -> Iterator[list[dict]]:
    """RBF settings (16 features, diagonal shapes: 20 parameters a basis in 2D) by basis count."""
    yield [{"type": "rbf", "n_bases": m, "n_features": 16} for m in (2**k for k in range(6, 20))]
    yield [{"type": "rbf", "n_bases": m, "n_features": 16} for m in range(64, 2**19, 64)]


SIZE_RULES: dict[str, Callable[[int], Iterator[list[dict]]]] = {
    "hash_grid": _hash_like("hash_grid"),
    "simplex_grid": _hash_like("simplex_grid"),
    "dense_grid": _dense,
    "rbf": _rbf,
}


def sized_encoding(name: str, target: int, size: int) -> tuple[dict, int, bool]:
    """``(config, encoding n_params, matched)``: the 2D ``name`` encoding nearest ``target`` parameters.

    ``matched`` is False for a type without a size rule (its defaults are used).
    """
    rule = SIZE_RULES.get(name)
    if rule is None:
        config, enc = resolve({"type": name}, 2, "image_fit")
        return config, enc.n_params, False
    best = None
    for group in rule(size):
        for candidate in group:
            try:
                config, enc = resolve(candidate, 2, "image_fit")
            except InputError:  # a setting outside the type's range
                continue
            error = abs(math.log(enc.n_params / target))
            if best is None or error < best[0]:
                best = (error, config, enc.n_params)
        if best is not None and best[0] <= math.log1p(TOLERANCE):
            break
    if best is None:
        raise InputError(f"no setting of the {name} size rule builds an encoding")
    return best[1], best[2], True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--seconds", type=float, default=30.0, help="training wall time per run (default 30)"
    )
    p.add_argument(
        "--steps", type=int, help="train each run for this many steps instead of --seconds"
    )
    p.add_argument(
        "--encodings", help="comma-separated types (default: every registered type taking 2D input)"
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--params", type=int, default=2**16, help="target encoding parameters (default 65536)"
    )
    p.add_argument(
        "--sweep", action="store_true", help=f"also run at {SWEEP[0]}x and {SWEEP[-1]}x the target"
    )
    p.add_argument(
        "--large",
        type=int,
        metavar="SIDE",
        help="fit a SIDE x SIDE image made on the spot (Mandelbrot) instead of the photograph",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        help="random samples per step (default 16384 on cpu, 65536 on cuda)",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=ADAM["lr"],
        help="Adam's learning rate, all encodings (default 1e-2)",
    )
    p.add_argument(
        "--torch-threads", type=int, help="torch's CPU threads (default: torch's choice)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        help="JSON result path; the PNG goes beside it "
        "(default benchmarks/results/image_fit-<device>.json)",
    )
    args = p.parse_args(argv)
    if args.steps is not None and args.steps < CHECKPOINTS:
        p.error(f"--steps must be at least {CHECKPOINTS} (one per checkpoint), got {args.steps}")
    return args


class Scorer:
    """PSNR of a field against ``target`` (H, W, 3): on every pixel, or (over EVAL_PIXELS pixels) at
    checkpoints on a fixed random EVAL_PIXELS of them; :meth:`full` always uses every pixel."""

    def __init__(self, target: torch.Tensor) -> None:
        self.target, (h, w) = target, target.shape[:2]
        self.subset = None
        if h * w > EVAL_PIXELS:
            pick = torch.randperm(h * w, generator=torch.Generator().manual_seed(0))[:EVAL_PIXELS]
            self.subset = pick.to(target.device)

    @torch.no_grad()
    def __call__(self, field: ImageField) -> float:
        if self.subset is None:
            return self.full(field)
        h, w = self.target.shape[:2]
        uv = torch.stack(((self.subset % w + 0.5) / w, (self.subset // w + 0.5) / h), dim=1).float()
        pred = torch.cat([field(part) for part in uv.split(CHUNK)])
        return psnr(pred, self.target.reshape(-1, 3)[self.subset])

    @torch.no_grad()
    def full(self, field: ImageField) -> float:
        h, w = self.target.shape[:2]
        flat, sq = self.target.reshape(-1, 3), 0.0
        for start in range(0, h * w, CHUNK):
            stop = min(start + CHUNK, h * w)
            pred = field(pixel_centres(h, w, start, stop, field.device))
            sq += float((pred - flat[start:stop]).square().sum(dtype=torch.float64))
        return -10.0 * math.log10(max(sq / (3 * h * w), 1e-12))


def crop_box(target: torch.Tensor) -> tuple[int, int, int]:
    """``(top, left, size)`` of the middle CROP x CROP pixels (the whole image when smaller)."""
    h, w = target.shape[:2]
    size = min(CROP, h, w)
    return (h - size) // 2, (w - size) // 2, size


@torch.no_grad()
def render_crop(
    field: ImageField, shape: tuple[int, int], box: tuple[int, int, int]
) -> torch.Tensor:
    """The field at the pixel centres of ``box`` of an image of ``shape`` -> ``(size, size, 3)`` on the CPU."""
    (h, w), (top, left, size) = shape, box
    rows = torch.arange(top, top + size, device=field.device)
    cols = torch.arange(left, left + size, device=field.device)
    v, u = torch.meshgrid((rows + 0.5) / h, (cols + 0.5) / w, indexing="ij")
    uv = torch.stack((u.reshape(-1), v.reshape(-1)), dim=1).float()
    return field(uv).clamp(0, 1).reshape(size, size, 3).cpu()


def save_crops(path: Path, target: torch.Tensor, crops: list[tuple[str, torch.Tensor]]) -> Path:
    """Target crop then each fit's, side by side, as one PNG (names are in the JSON, same order)."""
    top, left, size = crop_box(target)
    tiles = [target[top : top + size, left : left + size].cpu()] + [c for _, c in crops]
    row = torch.cat([t.clamp(0, 1) for t in tiles], dim=1)
    Image.fromarray((row * 255).round().to(torch.uint8).numpy()).save(path)
    return path


def seed_from_image(field: ImageField, target: torch.Tensor) -> float:
    """Place a data-driven encoding's bases on the image (NeuRBF: weighted k-means of the pixel
    centers, weights = gradient magnitude + its mean); seconds spent, 0 for other encodings."""
    init = getattr(field.encoding, "init_from_points", None)
    if init is None:
        return 0.0
    start = time.perf_counter()
    h, w = target.shape[:2]
    gray = target.mean(dim=2)
    gy, gx = torch.gradient(gray)
    weight = (gx.square() + gy.square()).sqrt().reshape(-1)
    uv = pixel_centres(h, w, device=target.device)
    if h * w > EVAL_PIXELS:  # k-means on a random EVAL_PIXELS of a large image's pixels
        pick = torch.randperm(h * w, generator=torch.Generator().manual_seed(1))[:EVAL_PIXELS].to(
            target.device
        )
        uv, weight = uv[pick], weight[pick]
    with torch.no_grad():
        init(uv, weight + weight.mean(), iters=5)
    synchronize(target.device)
    return time.perf_counter() - start


def budget(args) -> str:
    """Each run's training budget, for messages: "640 steps" or "30 s"."""
    return f"{args.steps} steps" if args.steps else f"{args.seconds:g} s"


def train_for(
    config: dict, target: torch.Tensor, score: Scorer, args, device: torch.device
) -> tuple[dict, ImageField]:
    """Fit an ImageField with encoding ``config`` to ``target`` ``(H, W, 3)`` for ``args.seconds`` (or
    ``args.steps``); its curve."""
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(args.seed)
        field = ImageField(config, 3, **MLP, device=device)
        init_seconds = seed_from_image(field, target)
    opt = torch.optim.Adam(field.parameters(), **{**ADAM, "lr": args.lr})
    image = target.permute(2, 0, 1).unsqueeze(0).contiguous()
    generator = torch.Generator(device=device).manual_seed(args.seed)

    def done(seconds: float, steps: int) -> float:  # the fraction of the budget used
        return steps / args.steps if args.steps else seconds / args.seconds

    decays = list(DECAY_AT)
    curve = [{"seconds": 0.0, "steps": 0, "psnr": score(field)}]
    trained, steps = 0.0, 0
    while done(trained, steps) < 1.0:
        start, mark = time.perf_counter(), len(curve) / CHECKPOINTS
        while done(trained + time.perf_counter() - start, steps) < mark:
            uv = torch.rand(args.batch_size, 2, generator=generator, device=device)
            loss = F.mse_loss(field(uv), sample_bilinear(image, uv))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            while decays and done(trained + time.perf_counter() - start, steps) >= decays[0]:
                decays.pop(0)
                for group in opt.param_groups:
                    group["lr"] *= DECAY
        synchronize(device)
        trained += time.perf_counter() - start
        curve.append({"seconds": trained, "steps": steps, "psnr": score(field)})
    final = curve[-1]["psnr"] if score.subset is None else score.full(field)
    return {
        "curve": curve,
        "final_psnr": final,
        "steps": steps,
        "train_seconds": trained,
        "steps_per_second": steps / trained,
        "n_params": field.n_params,
        "init_seconds": init_seconds,
    }, field


def plan(names: list[str], args, size: int) -> list[dict]:
    """The runs: per encoding and size factor, the matched config and its parameter count."""
    factors = SWEEP if args.sweep else (1.0,)
    runs = []
    for name in names:
        for factor in factors:
            target = max(1, round(args.params * factor))
            config, n_params, matched = sized_encoding(name, target, size)
            runs.append(
                {
                    "encoding": name,
                    "factor": factor,
                    "target_params": target,
                    "config": config,
                    "encoding_n_params": n_params,
                    "matched": matched,
                }
            )
    return runs


def _summary(config: dict) -> str:
    keys = ("n_levels", "log2_hashmap_size", "resolution", "n_features", "n_features_per_level")
    return " ".join(f"{k}={config[k]}" for k in keys if k in config)


def _plot(path: Path, runs: list[dict], args) -> Path:
    main = [r for r in runs if r["factor"] == 1.0]
    over_time = Panel(
        f"PSNR over training time ({args.params} encoding params)",
        "seconds",
        "PSNR (dB)",
        [
            (r["encoding"], [c["seconds"] for c in r["curve"]], [c["psnr"] for c in r["curve"]])
            for r in main
        ],
    )
    by_size = Panel(
        "final PSNR against parameter count",
        "encoding parameters",
        "PSNR (dB)",
        x_log=True,
        markers=True,
    )
    for name in dict.fromkeys(r["encoding"] for r in runs):
        mine = sorted(
            (r for r in runs if r["encoding"] == name), key=lambda r: r["encoding_n_params"]
        )
        by_size.series.append(
            (name, [r["encoding_n_params"] for r in mine], [r["final_psnr"] for r in mine])
        )
    return save_panels(path, [over_time, by_size])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = usable_device(args.device)
    if device is None:
        return 2
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    args.batch_size = args.batch_size or DEFAULT_BATCH[device.type]
    names = (
        args.encodings.split(",")
        if args.encodings
        else LARGE_DEFAULT
        if args.large
        else list(types_for_dims(2))
    )
    if args.large is not None and args.large < 2:
        print(f"error: --large must be at least 2 pixels, got {args.large}", file=sys.stderr)
        return 2
    print("making the target image ...", file=sys.stderr, flush=True)
    target = mandelbrot(args.large, device) if args.large else load_image(IMAGE).to(device)
    image_name = f"mandelbrot-{args.large}" if args.large else IMAGE.name
    score, crops = Scorer(target), []
    try:
        runs = plan(names, args, max(target.shape[:2]))
    except InputError as exc:  # an unknown type, or one that does not take 2D positions
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("encodings at matched sizes:")
    print_table(
        ["encoding", "target", "encoding params", "off by", "settings"],
        [
            [
                r["encoding"],
                r["target_params"],
                r["encoding_n_params"],
                f"{100 * (r['encoding_n_params'] / r['target_params'] - 1):+.1f}%"
                if r["matched"]
                else "unmatched",
                _summary(r["config"]),
            ]
            for r in runs
        ],
    )
    for run in runs:
        print(
            f"  {run['encoding']} {run['encoding_n_params']} params: training {budget(args)} ...",
            file=sys.stderr,
            flush=True,
        )
        result, field = train_for(run["config"], target, score, args, device)
        run.update(result)
        crops.append((run["encoding"], render_crop(field, target.shape[:2], crop_box(target))))
        del field

    env = environment(device)
    print(
        f"\nimage fit, {image_name} {tuple(target.shape[:2])}, {budget(args)} per run on {env['device']['name']}"
    )
    print_table(
        ["encoding", "encoding params", "total params", "steps", "steps/s", "final PSNR dB"],
        [
            [
                r["encoding"],
                r["encoding_n_params"],
                r["n_params"],
                r["steps"],
                r["steps_per_second"],
                r["final_psnr"],
            ]
            for r in runs
        ],
    )
    payload = {
        "benchmark": "image_fit",
        "config": {
            "image": image_name,
            "crop": dict(zip(("top", "left", "size"), crop_box(target))),
            "crops_order": ["target"] + [name for name, _ in crops],
            "image_size": list(target.shape[:2]),
            "seconds": None if args.steps else args.seconds,
            "steps": args.steps,
            "eval_pixels": EVAL_PIXELS if score.subset is not None else "all",
            "target_params": args.params,
            "sweep": list(SWEEP) if args.sweep else [1.0],
            "batch_size": args.batch_size,
            "adam": {**ADAM, "lr": args.lr},
            "lr_decay": DECAY,
            "lr_decay_at": list(DECAY_AT),
            "mlp": MLP,
            "checkpoints": CHECKPOINTS,
            "seed": args.seed,
            "timing": "training wall clock, CUDA synchronised at each checkpoint, evaluation excluded",
        },
        **env,
        "threads": {"core": env["versions"].get("threads"), "torch": torch.get_num_threads()},
        "runs": runs,
    }
    out = write_json(args.out or RESULTS_DIR / f"image_fit-{device.type}.json", payload)
    picture = _plot(out.with_suffix(".png"), runs, args)
    side_by_side = save_crops(out.with_name(out.stem + "-crops.png"), target, crops)
    print(
        f"\nwrote {out}\nwrote {picture}\nwrote {side_by_side} (target, then {', '.join(n for n, _ in crops)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
