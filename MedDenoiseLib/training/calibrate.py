"""Fit a model's uncertainty scale (see :mod:`MedDenoiseLib.uncertainty_calibration`) and store it in its card.

The model denoises foreground crops of its training images, noised afresh at fixed levels
with a seeded generator; the error to the clean image and the raw std give one scale per
TTA count (and per uncertainty source the model offers). The card is rewritten atomically;
the weights and their sha256 are untouched.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import ConfigError, rule_message
from ..evaluation.cases import foreground_crop, training_files
from ..io import as_float, read_region
from ..model_files import CARD_NAME, read_card
from ..models.card import load_model
from ..noise import simulate_noise
from ..pipeline import InferenceOptions, denoise_volume
from ..uncertainty_calibration import CARD_KEY, coverage, fit_std_scale, summarise
from ..volume import Volume

logger = logging.getLogger(__name__)

__all__ = ["calibrate_model"]


def _cases(data: Sequence[str], crop: tuple[int, int, int]) -> list[tuple[str, np.ndarray, object]]:
    cases = []
    for entry in data:
        volume = read_region(entry)
        clean = as_float(volume)
        slices = foreground_crop(clean, crop)
        cases.append((entry, np.ascontiguousarray(clean[slices]), volume.geometry))
    return cases


def _sources(card: dict) -> list[str]:
    return ["tta", "model"] if card.get("own_uncertainty") else ["tta"]


def calibrate_model(model_dir: str | Path, *, levels: Sequence[float], data: Sequence[str] | None = None,
                    tta_counts: Sequence[int] = (2, 4, 8), crop: tuple[int, int, int] = (8, 96, 96),
                    target: float = 0.9, seed: int = 0, device: str = "cpu",
                    progress: Callable[[str], None] | None = None) -> dict:
    """Fit and store the scales; returns the card entry written."""
    card, directory = read_card(model_dir)
    modality = card.get("modality")
    data = list(data) if data else training_files(card)
    if not data or not levels:
        raise ConfigError(rule_message("calibration data / levels", "must be non-empty", (data, list(levels)),
                                       "Pass --data (training images with a clean reference) and --levels."))
    loaded = load_model(directory, device="cpu")
    cases = _cases(data, crop)
    errors: dict[tuple[str, int], list[np.ndarray]] = {}
    stds: dict[tuple[str, int], list[np.ndarray]] = {}
    generator = torch.Generator().manual_seed(int(seed))
    for entry, clean, geometry in cases:
        mask = clean > np.percentile(clean, 30)
        for level in levels:
            noisy = simulate_noise(modality, torch.from_numpy(clean), level=float(level), generator=generator).numpy()
            for source in _sources(card):
                for tta in tta_counts:
                    options = InferenceOptions(roi_size=(32, 160, 160), tta=int(tta), device=device,
                                               uncertainty_source=source)
                    result = denoise_volume(Volume(noisy.astype(np.float32), geometry), loaded, modality=modality,
                                            options=options)
                    raw = result.uncertainty.array / float(result.report.get("std_scale", 1.0))
                    errors.setdefault((source, tta), []).append((result.denoised.array - clean)[mask])
                    stds.setdefault((source, tta), []).append(raw[mask])
            if progress is not None:
                progress(f"{Path(entry).name} level {level}")
    scales: dict[str, dict[str, float]] = {}
    before: dict[str, float] = {}
    for (source, tta), parts in errors.items():
        error, std = np.concatenate(parts), np.concatenate(stds[(source, tta)])
        scales.setdefault(source, {})[str(tta)] = round(fit_std_scale(error, std, target=target), 6)
        before[f"{source}/{tta}"] = round(coverage(error, std), 4)
    entry = summarise(scales, target=target, data=data, levels=levels, seed=seed, coverage_before=before)
    card[CARD_KEY] = entry
    _write_card(directory / CARD_NAME, card)
    logger.info("calibrated %s: %s (coverage before %s)", card.get("name"), scales, before)
    return entry


def _write_card(path: Path, card: dict) -> None:
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(card, indent=2, sort_keys=True), encoding="utf-8")
    temporary.replace(path)
