"""``meddenoise train --config C.yaml --run-dir DIR [--export MODEL_DIR]``: train or resume, then export."""

from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm

from .reporting import StopFlag

logger = logging.getLogger("meddenoise")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="supervised training on simulated noise (resumable)")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--run-dir", type=Path, required=True, help="checkpoints go here; an existing one is resumed")
    p.add_argument("--steps", type=int, default=None, help="override optim.steps (e.g. to continue a run)")
    p.add_argument("--export", type=Path, default=None, help="write weights + card here when done")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..training.config import dump_config, load_config
    from ..training.supervised import export, train

    config = load_config(args.config)
    if args.steps is not None:
        config.optim.steps = args.steps
    args.run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(config, args.run_dir / "config.yaml")
    bar = tqdm(total=config.optim.steps, desc="train", unit="step")

    def progress(step: int, total: int, loss: float) -> None:
        bar.n = step
        bar.set_postfix(loss=f"{loss:.4f}", refresh=True)

    with StopFlag() as stop:
        train(config, args.run_dir, progress=progress, should_stop=stop)
    bar.close()
    if args.export is not None and not stop():
        export(config, args.run_dir, args.export)
        logger.info("exported %s", args.export)
    return 0
