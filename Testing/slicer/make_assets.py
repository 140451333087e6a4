"""Regenerate the module's generated assets (not a test; run by hand).

Usage (from the repository root, with the project venv)::

    .venv/bin/python Testing/slicer/make_assets.py cmake        # MedDenoiseLib file list in MedDenoise/CMakeLists.txt
    .venv/bin/python Testing/slicer/make_assets.py icon         # module + extension icons (128x128 PNG)
    .venv/bin/python Testing/slicer/make_assets.py screenshot   # Resources/Screenshots/MedDenoise_compare.png

The screenshot denoises the bundled MR sample with added Gaussian noise using the shipped
default MR model when it is installed (``Resources/Models``), else a tiny untrained model,
and renders the Red slice view headless (original | denoised with the uncertainty overlay).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODULE = ROOT / "MedDenoise"
logger = logging.getLogger("make_assets")


def update_cmake() -> None:
    """Rewrite the MEDDENOISE_ENGINE_SCRIPTS block from the MedDenoiseLib files on disk."""
    path = MODULE / "CMakeLists.txt"
    files = sorted(str(p.relative_to(ROOT / "MedDenoiseLib")) for p in (ROOT / "MedDenoiseLib").rglob("*.py")
                   if "__pycache__" not in p.parts)
    block = "set(MEDDENOISE_ENGINE_SCRIPTS\n" + "".join(f"  {f}\n" for f in files) + "  )"
    text = re.sub(r"set\(MEDDENOISE_ENGINE_SCRIPTS\n.*?\n  \)", lambda _m: block, path.read_text(encoding="utf-8"), flags=re.S)
    path.write_text(text, encoding="utf-8")
    logger.info("listed %d MedDenoiseLib files in %s", len(files), path)


def make_icon() -> None:
    """A 128x128 icon: noisy half | clean half of a disc, with low/medium/high uncertainty marks."""
    from PIL import Image, ImageDraw

    from MedDenoiseLib.uncertainty_labels import UNCERTAINTY_COLORS

    size = 128
    yy, xx = np.mgrid[0:size, 0:size]
    disc = ((xx - 64) ** 2 + (yy - 64) ** 2) < 50 ** 2
    clean = np.where(disc, 200.0, 30.0) + np.where(((xx - 74) ** 2 + (yy - 54) ** 2) < 16 ** 2, 50.0, 0.0)
    noisy = clean + np.random.default_rng(6).normal(0, 45, clean.shape)
    grey = np.where(xx < 64, noisy, clean).clip(0, 255).astype(np.uint8)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    image = Image.fromarray(rgba, "RGBA")
    draw = ImageDraw.Draw(image)
    draw.line([(64, 8), (64, 120)], fill=(255, 255, 255, 255), width=3)
    for colour, y in zip(UNCERTAINTY_COLORS[1:], (92, 104, 116)):
        draw.rectangle([100, y - 4, 120, y + 4], fill=tuple(colour.rgba))
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).rounded_rectangle([0, 0, size - 1, size - 1], radius=18, fill=255)
    image.putalpha(mask)
    for target in (MODULE / "Resources" / "Icons" / "MedDenoise.png", ROOT / "Resources" / "Icons" / "MedDenoise.png"):
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target)
        logger.info("wrote %s", target)


def make_screenshot(out: Path) -> None:
    """Denoise the noised MR sample with the real worker and render original | denoised + overlay."""
    import slicer

    sys.path[:0] = [str(MODULE), str(HERE)]
    from meddenoise_slicer_helpers import HeadlessApp, side_by_side_png
    from MedDenoiseSlicer import models, nodes, selftest
    from MedDenoiseSlicer.job import WorkerLauncher
    from MedDenoiseSlicer.logic import DenoiseLogic

    app = HeadlessApp()
    sample = nodes.read_volume_file(str(ROOT / "Resources" / "Samples" / "mr_brain_sample.nii.gz"))
    app.scene.AddNode(sample)
    clean = slicer.util.arrayFromVolume(sample).astype(np.float32)
    noisy = clean + np.random.default_rng(0).normal(0, 0.08 * float(np.percentile(clean, 99)), clean.shape)
    volume = slicer.util.addVolumeFromArray(noisy.astype(np.float32), name="MR sample + noise")
    volume.CopyOrientation(sample)
    launcher = WorkerLauncher(python=sys.executable)
    default = models.default_model_name("mr")
    model = None
    if default is None or not (models.models_root() / default / "card.json").is_file():
        model = selftest.tiny_model(launcher, tempfile.mkdtemp())
        logger.warning("no shipped default MR model: rendering with a tiny UNTRAINED model")
    window = float(np.percentile(clean, 99.5))
    volume.CreateDefaultDisplayNodes()
    volume.GetDisplayNode().AutoWindowLevelOff()
    volume.GetDisplayNode().SetWindowLevel(window, window / 2)
    denoised, uncertainty, report = DenoiseLogic(launcher).denoise(volume, modality="mr", tta=8, device="cpu",
                                                                   model=model, showResult=False)
    logger.info("denoised with %s in %.1f s", report.get("model"), report.get("seconds", 0))
    left, right = app.slice_view("Red", "Axial", (420, 420)), app.slice_view("Yellow", "Axial", (420, 420))
    for logic, background, label in ((left, volume, None), (right, denoised, uncertainty)):
        composite = logic.GetSliceCompositeNode()
        composite.SetBackgroundVolumeID(background.GetID())
        composite.SetLabelVolumeID(label.GetID() if label else None)
        composite.SetLabelOpacity(0.45)
        logic.FitSliceToBackground()  # centres the view on the middle of the volume
    out.parent.mkdir(parents=True, exist_ok=True)
    side_by_side_png(left, right, str(out))
    logger.info("wrote %s (model %s)", out, report.get("model"))


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("cmake", "icon", "screenshot"))
    parser.add_argument("--out", type=Path, default=ROOT / "Resources" / "Screenshots" / "MedDenoise_compare.png")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT)]
    if args.what == "cmake":
        update_cmake()
    elif args.what == "icon":
        make_icon()
    else:
        make_screenshot(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
