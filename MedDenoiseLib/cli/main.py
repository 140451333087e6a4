"""Entry point: ``meddenoise {denoise,demo,benchmark,train,adapt,calibrate,models,evaluate}``."""

from __future__ import annotations

import argparse
import logging
import sys

from ..errors import CancelledError, MedDenoiseError
from . import adapt, benchmark, calibrate, demo, denoise, evaluate, models, route, train

SUBCOMMANDS = (denoise, demo, benchmark, train, adapt, calibrate, route, models, evaluate)
EXIT_ERROR, EXIT_CANCELLED = 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meddenoise", description="Deep denoising of CT, MR, ultrasound and X-ray volumes.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.run(args) or 0)
    except CancelledError as exc:
        logging.getLogger("meddenoise").warning("%s", exc)
        return EXIT_CANCELLED
    except MedDenoiseError as exc:
        logging.getLogger("meddenoise").error("%s", exc)
        return EXIT_ERROR
    except OSError as exc:  # disk full, permission denied...: the message names the file
        logging.getLogger("meddenoise").error("%s: %s", type(exc).__name__, exc)
        return EXIT_ERROR
