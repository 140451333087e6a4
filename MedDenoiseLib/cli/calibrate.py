"""``meddenoise calibrate``: fit a model's uncertainty scale (error floor and edge term) on its training images and
store it in its card."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..inference.tta import ALLOWED_TTA

logger = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="fit the std scale (sigma scaling, with an error floor and an edge term) "
                                           "of a model and write it into its card")
    p.add_argument("--model", type=Path, required=True, help="model directory (card.json + model.safetensors)")
    p.add_argument("--levels", type=float, nargs="+", required=True,
                   help="noise levels in the modality's unit (see `meddenoise train` configs), e.g. 3 6 9 for MR")
    p.add_argument("--data", nargs="+", default=None,
                   help="clean images with the model's domain (default: the training data its card lists); "
                        "never the held-out evaluation cases")
    p.add_argument("--tta", type=int, nargs="+", choices=[t for t in ALLOWED_TTA if t > 1], default=[2, 4, 8])
    p.add_argument("--crop", type=int, nargs=3, default=(8, 96, 96), metavar=("D", "H", "W"),
                   help="foreground crop per image (z y x)")
    p.add_argument("--target", type=float, default=0.9, help="share of voxels with |error| <= 2 std (default 0.9)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-floor", dest="floor", action="store_false",
                   help="no error floor (with --no-edge too: the spread scaled alone); the floor covers error the "
                        "flips all share, such as a reference's own texture")
    p.add_argument("--no-edge", dest="edge", action="store_false",
                   help="no edge term (the std's share that follows the denoised image's gradient, where blurred "
                        "edges make the error)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..training.calibrate import calibrate_model

    entry = calibrate_model(args.model, levels=args.levels, data=args.data, tta_counts=args.tta,
                            crop=tuple(args.crop), target=args.target, seed=args.seed, floor=args.floor, edge=args.edge,
                            progress=lambda text: logger.info("calibrated on %s", text))
    print(json.dumps(entry, indent=1))
    return 0
