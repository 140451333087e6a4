"""``meddenoise route``: combine two models of one modality into one routed by the volume's noise level."""

from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser("route", help="write a model that picks one of two member models per volume by its "
                                     "estimated noise level (threshold fitted on training images)")
    p.add_argument("--model", type=Path, required=True,
                   help="directory to write card.json into; the members are subfolders of it")
    p.add_argument("--members", nargs=2, required=True, metavar=("LIGHT", "HEAVY"),
                   help="member subfolders (model directories): the one for light noise first")
    p.add_argument("--name", required=True, help="name of the routed model")
    p.add_argument("--levels", type=float, nargs="+", required=True,
                   help="noise levels in the modality's unit spanning the crossover, e.g. 1 2 3 4 6 8 16 (US looks)")
    p.add_argument("--data", nargs="+", default=None,
                   help="clean training images (default: the first member's training data); never held-out cases")
    p.add_argument("--crop", type=int, nargs=3, default=(8, 96, 96), metavar=("D", "H", "W"),
                   help="foreground crop per image (z y x)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..training.route_fit import build_routed_model

    card = build_routed_model(args.model, members=args.members, name=args.name, levels=args.levels, data=args.data,
                              crop=tuple(args.crop), seed=args.seed)
    print(json.dumps(card["routes"], indent=1))
    return 0
