"""Text-to-3D generation: the time of one step split into render / guidance / backward, with a tiny
random Stable Diffusion model and with target guidance; and target-guidance generation of the
shipped meshes from a blob: silhouette IoU and Chamfer-L1 against each mesh versus steps.

Step times are medians over ``--repeats`` steps after ``--warmup`` (each part timed inside
``train_step``, synchronised on CUDA). For the curves, every mesh is generated with the
pipeline's defaults at ``--resolution`` pixels for the largest of ``--steps``; at each listed step
the density is meshed (``--mesh-resolution``) and scored (its silhouettes against the target's
renders from 8 views around it at 128 px, and Chamfer-L1 in the target's bounding-box
diagonals); scoring time is not counted in the training seconds.

Target (issue 21): with target guidance, a shipped mesh recovered to silhouette IoU >= 0.9 within
10 minutes on 2 CPU cores.

With ``--unet sd21`` (meant for a GPU) the script also times the UNet of a full-size Stable
Diffusion 2.1 architecture built from its config with random weights (fp16 on CUDA, fp32 on the
CPU), on 64x64 latents with the classifier-free batch of two per view and 77 text tokens of width
1024, and reports iterations per second of a step made of our render + backward (the target-
guidance step's parts, same device and resolution) and that UNet call, with our share of it
(goal: <= 10%). ``--unet tiny`` runs the same path with a small UNet (a smoke test).

Usage::

    python benchmarks/generate.py [--device auto|cpu|cuda] [--meshes spot,cow,...]
                                  [--steps 50,100,200,400] [--resolution 64] [--repeats 10]
                                  [--skip-curves] [--unet none|tiny|sd21] [--out PATH.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, environment, print_table, usable_device, write_json

from fields3d.pipelines._common import torch_threads
from fields3d.pipelines.generate import GenerateConfig
from fields3d.pipelines.generate.model import GenerativeModel
from fields3d.pipelines.generate.outputs import eval_views, extract_mesh, target_metrics
from fields3d.pipelines.generate.pipeline import build_prior
from fields3d.pipelines.generate.train import Scene, build_state, resolve_background, train_step

ROOT = Path(__file__).resolve().parent.parent
MESHES = ROOT / "assets" / "meshes"
GOAL_IOU, GOAL_SECONDS = 0.9, 600.0
PARTS = ("render", "guidance", "backward")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--meshes", default="spot,cow,stanford-bunny,fandisk,rocker-arm")
    p.add_argument("--steps", default="50,100,200,400", help="steps at which the curves score")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--mesh-resolution", type=int, default=128)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--skip-curves", action="store_true")
    p.add_argument("--unet", choices=("none", "tiny", "sd21"), default="none")
    p.add_argument("--out", help="JSON path (default benchmarks/results/generate-<device>.json)")
    return p.parse_args(argv)


def setup(config: GenerateConfig, device: torch.device):
    prior = build_prior(config, device)
    scene = Scene.of(prior)
    return prior, build_state(config, scene, resolve_background(config, prior), device)


def step_times(name: str, config: GenerateConfig, device, args) -> dict:
    """Median milliseconds of each part of a step over ``args.repeats`` steps."""
    prior, state = setup(config, device)
    total = args.warmup + args.repeats
    for _ in range(args.warmup):
        train_step(config, state, prior, total)
    samples = {k: [] for k in (*PARTS, "step")}
    for _ in range(args.repeats):
        before = dict(state.timings)
        start = time.perf_counter()
        train_step(config, state, prior, total)
        samples["step"].append((time.perf_counter() - start) * 1e3)
        for k in PARTS:
            samples[k].append((state.timings[k] - before[k]) * 1e3)
    medians = {f"{k}_ms": statistics.median(v) for k, v in samples.items()}
    return {"name": name, **medians, "repeats": args.repeats, "warmup": args.warmup}


#: Stable Diffusion 2.1's UNet (stabilityai/stable-diffusion-2-1-base unet/config.json).
SD21_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=1024,
    attention_head_dim=(5, 10, 20, 20),
    use_linear_projection=True,
)
TINY_UNET = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    layers_per_block=1,
    block_out_channels=(8, 16),
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=1024,
    attention_head_dim=2,
    norm_num_groups=4,
)


def unet_share(kind: str, ours: dict, device: torch.device, args) -> dict:
    """Milliseconds of one classifier-free UNet call on 64x64 latents, and our share of a step."""
    from _common import measure
    from diffusers import UNet2DConditionModel

    dtype = torch.float16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**(SD21_UNET if kind == "sd21" else TINY_UNET))
    unet = unet.to(device=device, dtype=dtype).eval()
    latents = torch.randn(2, 4, 64, 64, device=device, dtype=dtype)
    text = torch.randn(2, 77, 1024, device=device, dtype=dtype)
    t = torch.tensor([500, 500], device=device)

    def call():
        with torch.no_grad():
            unet(latents, t, encoder_hidden_states=text)

    timing = measure(call, device, args.repeats, args.warmup)
    mine = ours["render_ms"] + ours["backward_ms"]
    step = mine + timing["median_ms"]
    return {
        "unet": kind,
        "parameters": sum(p.numel() for p in unet.parameters()),
        "dtype": str(dtype),
        "unet_ms": timing["median_ms"],
        "ours_ms": mine,
        "iterations_per_s": 1e3 / step,
        "our_share": mine / step,
    }


def tiny_model_dir(root: Path) -> Path | None:
    try:
        sys.path.insert(0, str(ROOT / "tests" / "guidance"))
        import tiny_sd
    except ImportError:
        return None
    try:
        return tiny_sd.build(root / "tiny-sd")
    except ImportError:  # diffusers / transformers missing
        return None


def curve(mesh: Path, config: GenerateConfig, device, checkpoints: list[int], args) -> dict:
    prior, state = setup(config, device)
    scene = state.scene
    distance = sum(config.radius_range) / 2 * scene.radius
    fov = sum(config.fov_range) / 2
    views = eval_views(scene.center, scene.radius, scene.up, distance, fov, 8)
    points, total, reached = [], max(checkpoints), None
    while state.step < total:
        start = time.perf_counter()
        train_step(config, state, prior, total)
        state.seconds += time.perf_counter() - start
        if state.step in checkpoints:
            model = GenerativeModel(
                state.field,
                state.grid,
                state.settings,
                state.background,
                state.step,
                distance,
                fov,
                scene.up,
            )
            verts, faces, _ = extract_mesh(model, args.mesh_resolution, config.mesh_level)
            scores = target_metrics(verts, faces, prior, views)
            iou = scores["silhouette"]["iou"]
            points.append(
                {
                    "step": state.step,
                    "seconds": round(state.seconds, 2),
                    "iou": iou,
                    "chamfer_l1": scores.get("chamfer_l1"),
                }
            )
            if reached is None and iou >= GOAL_IOU:
                reached = {"step": state.step, "seconds": state.seconds}
    return {"mesh": mesh.stem, "points": points, f"reached_iou_{GOAL_IOU}": reached}


def main(argv=None) -> int:
    args = parse_args(argv)
    device = usable_device(args.device)
    if device is None:
        return 2
    steps = sorted({int(s) for s in args.steps.split(",")})
    base = dict(
        device=device.type,
        resolution=args.resolution,
        lr=args.lr,
        turntable_frames=0,
        mesh_resolution=0,
    )
    results = {"env": environment(device), "args": vars(args), "step_times": [], "curves": []}
    with torch_threads(1 if device.type == "cpu" else None), tempfile.TemporaryDirectory() as tmp:
        spot = GenerateConfig(guidance=f"target:{MESHES / 'spot.obj'}", steps=100, **base)
        results["step_times"].append(step_times("target:spot", spot, device, args))
        model = tiny_model_dir(Path(tmp))
        if model is not None:
            tiny = GenerateConfig(prompt="a ceramic mug", model=str(model), steps=100, **base)
            results["step_times"].append(step_times("tiny stable_diffusion", tiny, device, args))
        print_table(
            ["guidance", "step ms", "render ms", "guidance ms", "backward ms"],
            [
                [r["name"], r["step_ms"], r["render_ms"], r["guidance_ms"], r["backward_ms"]]
                for r in results["step_times"]
            ],
        )
        if args.unet != "none":
            share = unet_share(args.unet, results["step_times"][0], device, args)
            results["unet"] = share
            print()
            print_table(
                ["unet", "parameters", "unet ms", "ours ms", "it/s", "our share"],
                [
                    [
                        share["unet"],
                        share["parameters"],
                        share["unet_ms"],
                        share["ours_ms"],
                        share["iterations_per_s"],
                        share["our_share"],
                    ]
                ],
            )
        if not args.skip_curves:
            rows = []
            for name in args.meshes.split(","):
                mesh = MESHES / f"{name}.obj"
                config = GenerateConfig(guidance=f"target:{mesh}", steps=max(steps), **base)
                c = curve(mesh, config, device, steps, args)
                results["curves"].append(c)
                for p in c["points"]:
                    rows.append([c["mesh"], p["step"], p["seconds"], p["iou"], p["chamfer_l1"]])
                print(f"{name}: {c['points'][-1]}", flush=True)
            print()
            print_table(["mesh", "steps", "train s", "silhouette IoU", "Chamfer-L1"], rows)
    out = args.out or RESULTS_DIR / f"generate-{device.type}.json"
    print(f"\nwrote {write_json(out, results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
