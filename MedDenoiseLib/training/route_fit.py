"""Build a model routed by noise level (:mod:`MedDenoiseLib.models.routing`) and fit its threshold.

Both members denoise foreground crops of training images (never held-out cases) noised afresh at
each level with a seeded generator. Every (image, level) gives the noise estimate the pipeline will
route on and each member's error. The threshold is the one that minimises the summed log mean
squared error (every image and level counts the same in dB, as the quality bars do), placed midway
between the neighbouring estimates; the card records every point, so the choice can be checked.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import ConfigError, rule_message
from ..evaluation.cases import training_files
from ..inference.noise_level import conditioning_noise_sigma
from ..model_files import ROUTE_ESTIMATE, ROUTES_KEY, member_directories
from ..models.card import load_model, write_card
from ..models.routing import single_network
from ..noise import simulate_noise
from ..normalization import fit_normalization, normalization_choice
from ..pipeline import InferenceOptions, denoise_volume
from ..volume import Volume
from .calibrate import crop_cases, trained_intensity_map

logger = logging.getLogger(__name__)

__all__ = ["best_threshold", "build_routed_model"]


def best_threshold(estimates: Sequence[float], errors_below: Sequence[float], errors_above: Sequence[float]) -> float:
    """Threshold on the estimate minimising the summed log error when points at or below it take the first member.

    Candidates lie midway between neighbouring sorted estimates, plus one below all and one above all.

    >>> best_threshold([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 9.0, 9.0], [4.0, 4.0, 1.0, 1.0])
    2.5
    """
    order = np.argsort(estimates)
    x = np.asarray(estimates, np.float64)[order]
    low = np.log(np.asarray(errors_below, np.float64)[order])
    high = np.log(np.asarray(errors_above, np.float64)[order])
    candidates = np.concatenate([[x[0] - 1.0], (x[1:] + x[:-1]) / 2.0, [x[-1] + 1.0]])
    cuts = [k for k in range(len(x) + 1) if k in (0, len(x)) or x[k - 1] < x[k]]  # equal estimates stay together
    costs = [low[:k].sum() + high[k:].sum() for k in cuts]
    return float(candidates[cuts[int(np.argmin(costs))]])


def _points(members, modality: str, choice: str, cases, levels: Sequence[float], seed: int) -> list[dict]:
    generator = torch.Generator().manual_seed(int(seed))
    options = InferenceOptions(roi_size=(32, 160, 160), tta=1, device="cpu")
    points = []
    for entry, clean, geometry in cases:
        mask = clean > np.percentile(clean, 30)
        for level in levels:
            noisy = simulate_noise(modality, torch.from_numpy(clean), level=float(level), generator=generator).numpy()
            norm = fit_normalization(noisy, modality, choice)
            errors = []
            for member in members:
                out = denoise_volume(Volume(noisy.astype(np.float32), geometry), member, modality=modality,
                                     options=options).denoised.array
                errors.append(float(np.mean(((out - clean)[mask] / norm.scale) ** 2)))
            points.append({"data": entry, "level": float(level), "errors": errors,
                           "noise_estimate": conditioning_noise_sigma(norm.forward(noisy))})
            logger.info("route fit: %s level %g: estimate %.4g, member errors %s", Path(entry).name, level,
                        points[-1]["noise_estimate"], errors)
    return points


def build_routed_model(out_dir: str | Path, *, members: Sequence[str], name: str, levels: Sequence[float],
                       data: Sequence[str] | None = None, crop: tuple[int, int, int] = (8, 96, 96),
                       seed: int = 0) -> dict:
    """Write ``out_dir/card.json`` routing between two member subfolders of ``out_dir`` (``data`` defaults to the
    first member's training images); returns the card."""
    out_dir = Path(out_dir)
    if len(members) != 2:
        raise ConfigError(rule_message("members", "must name exactly two member folders (light noise first)",
                                       list(members), "Pass e.g. --members light heavy."))
    probe = {ROUTES_KEY: {"estimate": ROUTE_ESTIMATE, "members": [{"path": members[0], "up_to": 0.0}, {"path": members[1]}]}}
    loaded = [load_model(folder) for folder in member_directories(probe, out_dir)]  # refuses paths outside out_dir
    for model in loaded:
        single_network(model.network, model.name, "members")
    modality = loaded[0].card.get("modality")
    if any(model.card.get("modality") != modality for model in loaded):
        raise ConfigError(rule_message("members", "must share one modality",
                                       [model.card.get("modality") for model in loaded], "Route within a modality."))
    maps = [trained_intensity_map(model.card) for model in loaded]
    if maps[0] != maps[1]:
        raise ConfigError(rule_message("members", "must have read their training images alike (data."
                                       "shift_to_nonnegative, data.rescale_to)", maps,
                                       "Route between members trained with the same intensity map."))
    choices = [normalization_choice(model.card) for model in loaded]
    if choices[0] != choices[1]:
        raise ConfigError(rule_message("members", "must normalise their inputs alike (card normalization)", choices,
                                       "Route between members trained with the same data.normalization."))
    data = list(data) if data else training_files(loaded[0].card)
    if not data or not levels:
        raise ConfigError(rule_message("route data / levels", "must be non-empty", (data, list(levels)),
                                       "Pass --data (training images with a clean reference) and --levels."))
    points = _points(loaded, modality, choices[0], crop_cases(data, crop, **maps[0]), levels, seed)
    threshold = best_threshold([p["noise_estimate"] for p in points], [p["errors"][0] for p in points],
                               [p["errors"][1] for p in points])
    if not math.isfinite(threshold):
        raise ConfigError(rule_message("route threshold", "must be finite", threshold, "Check the members' outputs."))
    card = {"name": name, "modality": modality, "normalization": choices[0], "card_version": 1,
            "architecture": {"name": "routed", "members": [model.card.get("architecture") for model in loaded]},
            "parameters": sum(int(model.card.get("parameters") or 0) for model in loaded),
            ROUTES_KEY: {"estimate": ROUTE_ESTIMATE, "members": [{"path": members[0], "up_to": round(threshold, 6)},
                                                           {"path": members[1]}]},
            "route_fit": {"data": data, "levels": [float(v) for v in levels], "seed": int(seed), "crop": list(crop),
                          "criterion": "summed log mean squared error (normalised units), TTA 1",
                          "points": points}}
    write_card(out_dir, card)
    logger.info("routed model %s: %s up to noise estimate %.4g, %s above", name, members[0], threshold, members[1])
    return card
