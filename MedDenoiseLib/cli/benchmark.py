"""``meddenoise benchmark``: time denoising on synthetic volumes of given sizes (JSON out).

The JSON also gives the model's size and cost: trainable parameters and FLOPs of one forward pass
on a ``--flops-patch`` patch (default 32 x 160 x 160, the inference patch), FLOPs counted as 2 x
multiply-accumulates (``MedDenoiseLib.models.complexity``)."""

from __future__ import annotations

import json
import logging
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from ..models import count_parameters
from ..models.complexity import PATCH_DHW, model_complexity
from ..models.resolve import resolve_model
from ..models.routing import RoutedNetwork
from ..pipeline import InferenceOptions, denoise_volume
from ..volume import Volume
from .options import MODALITIES

logger = logging.getLogger("meddenoise")


def add_parser(sub) -> None:
    p = sub.add_parser("benchmark", help="time denoise at several sizes and TTA settings (JSON)")
    p.add_argument("--modality", choices=MODALITIES, default="mr")
    p.add_argument("--model", default=None)
    p.add_argument("--sizes", nargs="+", default=["128x128x64", "256x256x128"], help="XxYxZ voxels")
    p.add_argument("--tta", type=int, nargs="+", default=[1, 8])
    p.add_argument("--device", default="auto")
    p.add_argument("--baselines", default="", help="comma-separated classical methods timed on the same volumes "
                   "(e.g. median,nlm,bm4d); see `meddenoise evaluate`")
    p.add_argument("--flops-patch", type=int, nargs=3, default=PATCH_DHW, metavar=("D", "H", "W"),
                   help="patch whose forward-pass FLOPs are reported (default %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    p.set_defaults(run=run)


def phantom(shape_zyx: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Smooth blobs plus Gaussian noise, MR-like intensities (content barely affects timing)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape_zyx], indexing="ij")
    image = 100 * (x**2 + y**2 + 0.5 * z**2 < 0.8) + 60 * np.cos(3 * x) * np.sin(2 * y)
    return (image + rng.normal(0, 10, shape_zyx)).clip(0).astype(np.float32)


def _complexity(network, patch: tuple[int, int, int]) -> dict:
    """FLOPs per patch; a routed model runs one member per volume, so each member's and the largest."""
    if not isinstance(network, RoutedNetwork):
        return {"complexity": model_complexity(network, patch)}
    members = [{"member": card.get("name"), "parameters": count_parameters(member),
                "complexity": model_complexity(member, patch)} for member, card in zip(network.members, network.cards)]
    largest = max(members, key=lambda m: m["complexity"].get("flops", 0))
    return {"complexity": largest["complexity"], "members": members}


def run(args) -> int:
    loaded = resolve_model(args.model, args.modality)
    denoise_volume(Volume(phantom((4, 32, 32))), loaded, modality=args.modality,  # warm-up: first-call costs
                   options=InferenceOptions(tta=1, device=args.device))
    results = []
    for size in args.sizes:
        x, y, z = (int(v) for v in size.lower().split("x"))
        volume = Volume(phantom((z, y, x)))
        for tta in args.tta:
            results.append(_time_case(volume, loaded, args.modality, tta, args.device))
            logger.info("%s", json.dumps(results[-1]))
        if args.baselines:
            from ..evaluation.benchmark import time_baselines

            for row in time_baselines(volume.array, [m for m in args.baselines.split(",") if m]):
                results.append({"size_xyz": [x, y, z], **row})
                logger.info("%s", json.dumps(results[-1]))
    payload = {"machine": {"platform": platform.platform(), "cpu_threads": torch.get_num_threads(),
                           "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
               "model": loaded.name, "parameters": count_parameters(loaded.network),
               **_complexity(loaded.network, tuple(args.flops_patch)), "results": results}
    text = json.dumps(payload, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 0


def _time_case(volume: Volume, loaded, modality: str, tta: int, device: str) -> dict:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = denoise_volume(volume, loaded, modality=modality, options=InferenceOptions(tta=tta, device=device))
    seconds = time.perf_counter() - started
    voxels = int(np.prod(volume.shape))
    case = {"size_xyz": list(reversed(volume.shape)), "tta": tta, "device": result.report["device"],
            "seconds": round(seconds, 3), "voxels_per_s": round(voxels / seconds), "patches": result.report["patches"],
            # process high-water mark so far (cases run smallest first, so it grows with the case that needed it)
            "process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if torch.cuda.is_available() and result.report["device"].startswith("cuda"):
        case["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return case
