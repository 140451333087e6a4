"""Argument groups shared by subcommands that run inference."""

from __future__ import annotations

import argparse

from ..inference.device import DEVICE_CHOICES
from ..inference.tta import ALLOWED_TTA, VIEW_SETS
from ..pipeline import UNCERTAINTY_SOURCES, InferenceOptions

MODALITIES = ("ct", "mr", "us", "xr")


def add_inference_arguments(parser: argparse.ArgumentParser, *, tta_default: int = 8) -> None:
    group = parser.add_argument_group("inference")
    group.add_argument("--model", default=None, help="shipped model name or model directory (default: the modality's)")
    group.add_argument("--tta", type=int, choices=ALLOWED_TTA, default=tta_default,
                       help="test-time views (default %(default)s)")
    group.add_argument("--tta-views", choices=("auto", *VIEW_SETS), default="auto",
                       help="the 8 views: flips of (D, H, W), or in-plane flips with and without an H-W swap "
                            "(auto: in-plane for 2.5D models on square pixels)")
    group.add_argument("--mc-dropout", type=int, default=0, metavar="N", help="Monte-Carlo dropout samples per flip")
    group.add_argument("--device", default="auto", help=f"one of {DEVICE_CHOICES} or cuda:N")
    group.add_argument("--patch", type=int, nargs=3, default=(32, 160, 160), metavar=("D", "H", "W"))
    group.add_argument("--overlap", type=float, default=0.25)
    group.add_argument("--batch-size", type=int, default=4, help="views per forward pass")
    group.add_argument("--no-amp", action="store_true", help="disable autocast on CUDA")
    group.add_argument("--seed", type=int, default=0, help="seed of the MC-dropout masks")
    group.add_argument("--uncertainty-source", choices=UNCERTAINTY_SOURCES, default="tta",
                       help="std map: spread over the TTA flips (default), over MC-dropout samples (needs "
                            "--mc-dropout >= 2), or the model's own per-voxel std (DUAL-NET)")


def inference_options(args: argparse.Namespace) -> InferenceOptions:
    return InferenceOptions(roi_size=tuple(args.patch), overlap=args.overlap, sw_batch_size=args.batch_size,
                            tta=args.tta, tta_views=getattr(args, "tta_views", "auto"), mc_dropout=args.mc_dropout,
                            device=args.device, amp=not args.no_amp, seed=args.seed,
                            uncertainty_source=getattr(args, "uncertainty_source", "tta"))
