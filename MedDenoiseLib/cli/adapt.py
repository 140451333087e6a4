"""``meddenoise adapt IN --model M --steps N --out M2``: fine-tune a model self-supervised on one noisy scan.

What the Slicer "Adapt to this scan" button calls. Noise2Void (or Noise2Self) on the scan itself, no
clean reference; the adapted model is exported with a card naming the source model and the scan.
``--denoised OUT`` also denoises the scan with the adapted model.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from .options import MODALITIES
from .reporting import StopFlag, emit_json

logger = logging.getLogger("meddenoise")


def add_parser(sub) -> None:
    p = sub.add_parser("adapt", help="fine-tune a model on one noisy scan (Noise2Void), then export it")
    p.add_argument("input", type=Path, help="the noisy scan (NIfTI, NRRD, MHA, DICOM series)")
    p.add_argument("--model", required=True, help="shipped model name or model directory to start from")
    p.add_argument("--steps", type=int, required=True, help="fine-tuning steps (e.g. 200)")
    p.add_argument("--out", type=Path, required=True, help="directory of the adapted model (weights + card)")
    p.add_argument("--modality", choices=MODALITIES, default=None, help="default: the model card's")
    p.add_argument("--algorithm", choices=("n2v", "n2s"), default="n2v")
    p.add_argument("--fraction", type=float, default=0.2, help="N2V masked share per patch (default 0.2)")
    p.add_argument("--struct-axis", choices=("x", "y", "z"), default=None, help="structN2V line mask axis")
    p.add_argument("--struct-span", type=int, default=0, help="structN2V half-length (voxels)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--patch", type=int, nargs=3, default=None, metavar=("D", "H", "W"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--run-dir", type=Path, default=None, help="keep checkpoints and logs here")
    p.add_argument("--denoised", type=Path, default=None, help="also write the scan denoised by the adapted model")
    p.add_argument("--progress", choices=("bar", "json", "none"), default="bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..training.self_supervised import adapt

    bar = tqdm(total=args.steps, desc="adapt", unit="step") if args.progress == "bar" else None

    def progress(step: int, total: int, loss: float) -> None:
        if bar is not None:
            bar.n = step
            bar.set_postfix(loss=f"{loss:.4f}", refresh=True)
        elif args.progress == "json":
            emit_json({"event": "progress", "stage": "adapt", "step": step, "steps": total, "loss": round(loss, 6)})

    try:
        with StopFlag() as stop:
            out = adapt(args.input, args.model, steps=args.steps, out=args.out, modality=args.modality,
                        algorithm=args.algorithm, fraction=args.fraction, struct_axis=args.struct_axis,
                        struct_span=args.struct_span, lr=args.lr, batch_size=args.batch_size,
                        patch_size=tuple(args.patch) if args.patch else None, seed=args.seed, device=args.device,
                        run_dir=args.run_dir, progress=progress, should_stop=stop)
    finally:
        if bar is not None:
            bar.close()
    logger.info("adapted model written to %s", out)
    if args.denoised is not None:
        _denoise(args, out)
    if args.progress == "json":
        emit_json({"event": "done", "model": str(out), "denoised": str(args.denoised) if args.denoised else None})
    return 0


def _denoise(args: argparse.Namespace, model_dir: Path) -> None:
    from ..io import read_volume
    from ..models.card import load_model
    from ..pipeline import InferenceOptions, denoise_volume
    from .denoise import write_outputs

    loaded = load_model(model_dir)
    volume = read_volume(args.input)
    result = denoise_volume(volume, loaded, modality=args.modality or loaded.card.get("modality", "mr"),
                            options=InferenceOptions(device=args.device))
    write_outputs(result, args.denoised, None, None)
    logger.info("wrote %s", args.denoised)
