"""A stand-in for ``meddenoise denoise`` / ``meddenoise adapt`` used by the Slicer tests (SimpleITK only, no torch).

Usage: ``python fake_worker.py --fake-mode MODE denoise IN OUT [--uncertainty-labels L] ...``
or ``python fake_worker.py --fake-mode MODE adapt IN --model M --steps N --out DIR ...``

Modes: ``ok`` (progress lines, noise lines, outputs, done), ``slow`` (same, with pauses),
``error`` (an ERROR line, exit 2), ``crash`` (a traceback, exit 3), ``hang`` (one progress
line, starts a grandchild whose pid goes to ``$FAKE_PIDFILE``, then sleeps forever),
``badgrid`` (outputs on a different grid), ``nogeom`` (outputs without geometry).
Adapt also knows ``badsha`` (a model whose card's sha256 does not match its weights);
its ``error`` and ``hang`` modes leave a half-written model directory behind.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import SimpleITK as sitk


def emit(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def log(level: str, message: str) -> None:
    sys.stderr.write(f"{level} meddenoise: {message}\n")
    sys.stderr.flush()


def parse(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--fake-mode", default="ok")
    parser.add_argument("command")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--uncertainty-labels", default=None)
    parser.add_argument("--uncertainty", default=None)
    parser.add_argument("--tta", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--modality", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--mc-dropout", type=int, default=0)
    parser.add_argument("--uncertainty-source", default="tta")
    parser.add_argument("--progress", default="bar")
    return parser.parse_args(argv)


def write_outputs(args, mode: str) -> list[str]:
    image = sitk.ReadImage(args.input)
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    if mode == "badgrid":
        array = array[:, :-1, :]
    denoised = sitk.GetImageFromArray(0.5 * array + 0.5 * float(array.mean()))
    low, high = np.quantile(array, [0.25, 0.75]) if array.size else (0, 0)
    labels = sitk.GetImageFromArray(np.digitize(array, [low, (low + high) / 2, high]).astype(np.uint8))
    if mode not in ("nogeom", "badgrid"):
        denoised.CopyInformation(image)
        labels.CopyInformation(image)
    sitk.WriteImage(denoised, args.output)
    written = [args.output]
    if args.uncertainty_labels:
        sitk.WriteImage(labels, args.uncertainty_labels)
        written.append(args.uncertainty_labels)
    return written


def parse_adapt(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--fake-mode", default="ok")
    parser.add_argument("command")
    parser.add_argument("input")
    parser.add_argument("--model", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--modality", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--progress", default="bar")
    return parser.parse_args(argv)


def write_model(args, mode: str) -> None:
    """A model directory as the engine exports it: weights + card.json with their sha256."""
    os.makedirs(args.out, exist_ok=True)
    weights = os.path.join(args.out, "model.safetensors")
    with open(weights, "wb") as handle:
        handle.write(os.urandom(256))
    if mode in ("hang", "error"):  # killed / failed half-way: weights without card
        return
    digest = hashlib.sha256(open(weights, "rb").read()).hexdigest()
    card = {"name": f"{args.model}_adapted", "modality": args.modality or "mr", "weights_file": "model.safetensors",
            "sha256": "0" * 64 if mode == "badsha" else digest,
            "adapted_from": {"model": args.model, "scan": args.input, "steps": args.steps},
            "fake_env": {"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"), "run_dir": args.run_dir}}
    with open(os.path.join(args.out, "card.json"), "w") as handle:
        json.dump(card, handle)


def hang_forever() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    pidfile = os.environ.get("FAKE_PIDFILE")
    if pidfile:
        with open(pidfile, "w") as handle:
            handle.write(str(child.pid))
    while True:
        time.sleep(1)


def adapt_main(argv) -> int:
    args = parse_adapt(argv)
    mode = args.fake_mode
    log("INFO", f"fake adapt mode {mode} of {args.model} on {os.path.basename(args.input)} for {args.steps} steps")
    print("UserWarning: a library warning that is not JSON", flush=True)
    if not os.path.isfile(args.input):
        log("ERROR", f"input {args.input} does not exist")
        return 2
    if args.run_dir:
        os.makedirs(os.path.join(args.run_dir, "checkpoint"), exist_ok=True)
    for step in range(1, args.steps + 1):
        emit({"event": "progress", "stage": "adapt", "step": step, "steps": args.steps,
              "loss": round(0.1 / step, 6)})
        if mode == "slow":
            time.sleep(0.05)
        if mode == "hang":
            write_model(args, mode)
            hang_forever()
    if mode == "error":
        write_model(args, mode)
        log("ERROR", "export failed: disk full while writing the adapted model. Free some space.")
        return 2
    if mode == "crash":
        sys.stderr.write("Traceback (most recent call last):\n  File \"x.py\", line 1\nRuntimeError: boom\n")
        return 3
    write_model(args, mode)
    log("INFO", f"adapted model written to {args.out}")
    emit({"event": "done", "model": args.out, "denoised": None})
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "adapt" in argv[:3]:
        return adapt_main(argv)
    args = parse(argv)
    mode = args.fake_mode
    log("INFO", f"fake worker mode {mode} on {os.path.basename(args.input)}")
    print("UserWarning: a library warning that is not JSON", flush=True)
    print("{not json at all", flush=True)
    if mode == "hang":
        emit({"event": "progress", "stage": "denoise", "patch": 1, "patches": 9, "tta": 1, "tta_total": args.tta,
              "elapsed_s": 0.1, "eta_s": 99.0, "fraction": 0.01})
        hang_forever()
    if mode == "error":
        log("INFO", "reading input")
        log("ERROR", "input has 12 NaN voxels; must be finite. Replace them before denoising.")
        return 2
    if mode == "crash":
        sys.stderr.write("Traceback (most recent call last):\n  File \"x.py\", line 1\nRuntimeError: boom\n")
        return 3
    patches = 3
    started = time.perf_counter()
    for patch in range(1, patches + 1):
        for tta in range(1, args.tta + 1):
            done = ((patch - 1) + tta / args.tta) / patches
            elapsed = time.perf_counter() - started
            emit({"event": "progress", "stage": "denoise", "patch": patch, "patches": patches, "tta": tta,
                  "tta_total": args.tta, "elapsed_s": round(elapsed, 3),
                  "eta_s": round(elapsed * (1 - done) / done, 3), "fraction": round(done, 4)})
            if mode == "slow":
                time.sleep(0.05)
    written = write_outputs(args, mode)
    report = {"device": "cpu", "seconds": round(time.perf_counter() - started, 3), "model": "fake", "tta": args.tta,
              "mc_dropout": args.mc_dropout, "uncertainty_source": args.uncertainty_source,
              "backoff": ["fake back-off: batch 4 -> 2"], "modality": args.modality,
              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    emit({"event": "done", "outputs": written, "report": report})
    log("INFO", "wrote outputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
