"""``meddenoise train --config C.yaml [--run-dir DIR] [--resume CKPT] [--export MODEL_DIR]``.

Trains or resumes (supervised, n2v or n2s, as the config says), then exports. Works the same under
``torchrun --nproc_per_node N``: every rank trains, rank 0 alone writes files and shows progress.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tqdm import tqdm

from .reporting import StopFlag, emit_json

logger = logging.getLogger("meddenoise")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model (supervised / Noise2Void / Noise2Self; resumable; torchrun-ready)")
    p.add_argument("--config", type=Path, required=True, help="YAML training config (see configs/)")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="checkpoints and logs go here; an existing one is resumed (default runs/<config name>)")
    p.add_argument("--resume", type=Path, default=None, metavar="CKPT",
                   help="resume from this checkpoint directory (e.g. another run's RUN/checkpoint)")
    p.add_argument("--steps", type=int, default=None, help="override optim.steps (e.g. to continue a run)")
    p.add_argument("--export", type=Path, default=None, help="write weights + card here when done")
    p.add_argument("--progress", choices=("bar", "json", "none"), default="bar")
    p.set_defaults(run=run)


def is_main_process() -> bool:
    """True unless torchrun started this process with a non-zero RANK."""
    return os.environ.get("RANK", "0") == "0"


def run(args) -> int:
    from ..training.config import dump_config, load_config
    from ..training.export import export
    from ..training.trainer import train

    config = load_config(args.config)
    if args.steps is not None:
        config.optim.steps = args.steps
    run_dir = args.run_dir or Path("runs") / config.name
    main = is_main_process()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_config(config, run_dir / "config.yaml")
    progress, close = _progress(args.progress if main else "none", config.optim.steps)
    try:
        with StopFlag() as stop:
            train(config, run_dir, progress=progress, should_stop=stop, resume_from=args.resume)
    finally:
        close()
        _leave_process_group()
    if main and args.export is not None and not stop():
        export(config, run_dir, args.export)
        logger.info("exported %s", args.export)
    return 0


def _progress(kind: str, total: int):
    if kind == "json":
        return (lambda step, steps, loss: emit_json({"event": "progress", "stage": "train", "step": step,
                                                    "steps": steps, "loss": round(loss, 6)})), (lambda: None)
    if kind == "none":
        return None, (lambda: None)
    bar = tqdm(total=total, desc="train", unit="step")

    def progress(step: int, steps: int, loss: float) -> None:
        bar.n = step
        bar.set_postfix(loss=f"{loss:.4f}", refresh=True)

    return progress, bar.close


def _leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
