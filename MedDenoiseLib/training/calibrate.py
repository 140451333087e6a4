"""Fit a model's uncertainty calibration (see :mod:`MedDenoiseLib.uncertainty_calibration`) and store it in its card.

The model denoises foreground crops of its training images, noised afresh at fixed levels
with a seeded generator; the error to the clean image and the raw spread (both divided by the
run's estimated noise std, with any calibration already in the card left out) give one scale,
with ``floor`` one error floor and with ``edge`` one edge term (on the in-plane gradient of the denoised
image, spread over the width of :data:`EDGE_WIDTHS` the likelihood prefers), per TTA count (and per
uncertainty source the model offers). The card is rewritten atomically; the weights and their sha256
are untouched.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import ConfigError, rule_message
from ..evaluation.cases import foreground_crop, training_files
from ..fidelity.calibration import std_error_spearman
from ..io import as_float, read_region
from ..model_files import read_card
from ..models.card import LoadedModel, load_model, write_card
from ..models.routing import single_network
from ..noise import simulate_noise
from ..pipeline import InferenceOptions, denoise_volume
from ..uncertainty_calibration import (CARD_KEY, EDGE_WIDTHS, coverage, edge_strength, fit_edge_width,
                                       fit_std_terms, summarise)
from ..volume import Volume
from .data import map_intensities

logger = logging.getLogger(__name__)

__all__ = ["calibrate_model", "crop_cases", "trained_intensity_map"]


def crop_cases(data: Sequence[str], crop: tuple[int, int, int], shift: bool = False,
               rescale: tuple[float, float] | None = None) -> list[tuple[str, np.ndarray, object]]:
    """``(entry, clean foreground crop, geometry)`` per training image (region entries allowed), its intensities
    mapped as training mapped them (``shift``: ``data.shift_to_nonnegative``; ``rescale``: ``data.rescale_to``)."""
    cases = []
    for entry in data:
        volume = read_region(entry)
        clean = map_intensities(entry, as_float(volume), shift=shift, rescale=rescale)
        slices = foreground_crop(clean, crop)
        cases.append((entry, np.ascontiguousarray(clean[slices]), volume.geometry))
    return cases


def trained_intensity_map(card: dict) -> dict:
    """How the card's training config mapped its images' intensities: ``crop_cases`` keywords ``shift``
    (``data.shift_to_nonnegative``) and ``rescale`` (``data.rescale_to``)."""
    config = (card.get("training") or {}).get("config") or {}
    data = config.get("data") or {}
    rescale = data.get("rescale_to")
    return {"shift": bool(data.get("shift_to_nonnegative", False)),
            "rescale": tuple(rescale) if rescale is not None else None}


def _sources(card: dict) -> list[str]:
    return ["tta", "model"] if card.get("own_uncertainty") else ["tta"]


def calibrate_model(model_dir: str | Path, *, levels: Sequence[float], data: Sequence[str] | None = None,
                    tta_counts: Sequence[int] = (2, 4, 8), crop: tuple[int, int, int] = (8, 96, 96),
                    target: float = 0.9, seed: int = 0, floor: bool = True, edge: bool = True,
                    device: str = "cpu", progress: Callable[[str], None] | None = None) -> dict:
    """Fit and store the scales (with ``floor`` the error floors, with ``edge`` the edge terms); returns the card
    entry written."""
    card, directory = read_card(model_dir)
    modality = card.get("modality")
    data = list(data) if data else training_files(card)
    if not data or not levels:
        raise ConfigError(rule_message("calibration data / levels", "must be non-empty", (data, list(levels)),
                                       "Pass --data (training images with a clean reference) and --levels."))
    loaded = load_model(directory, device="cpu")
    single_network(loaded.network, loaded.name, "model")
    raw_model = dataclasses.replace(loaded, card={k: v for k, v in loaded.card.items() if k != CARD_KEY})
    cases = crop_cases(data, crop, **trained_intensity_map(card))
    views: set[str] = set()
    samples = _errors_and_spreads(raw_model, modality, cases, levels, tta_counts, seed, device, progress, views, edge)
    fitted: dict[str, dict[str, dict[str, float]]] = {"scales": {}, "floors": {}, "edges": {}, "edge_widths": {}}
    before: dict[str, float] = {}
    ranking: dict[str, dict[str, float]] = {}
    for (source, tta), parts in samples.items():
        error, std = (np.concatenate([part[i] for part in parts]) for i in range(2))
        gradients = np.concatenate([part[2] for part in parts], axis=1) if edge else None  # (width, voxels)
        terms = [std] + ([np.ones_like(std)] if floor else [])
        if edge:
            weights, width = fit_edge_width(error, terms, gradients, target=target)
            terms.append(gradients[EDGE_WIDTHS.index(width)])
        else:
            weights, width = fit_std_terms(error, terms, target=target), 0.0
        names = ["scales"] + (["floors"] if floor else []) + (["edges"] if edge else [])
        values = {"floors": 0.0, "edges": 0.0, **dict(zip(names, weights))}
        values["edge_widths"] = width if round(float(values["edges"]), 6) > 0 else 0.0  # no width for a 0 term
        for key, value in values.items():
            fitted[key].setdefault(source, {})[str(tta)] = round(float(value), 6)
        before[f"{source}/{tta}"] = round(coverage(error, std), 4)
        shown = np.sqrt(sum((w * t) ** 2 for w, t in zip(weights, terms)))
        ranking[f"{source}/{tta}"] = {"raw": _spearman(std, error), "shown": _spearman(shown, error)}
    entry = summarise(fitted["scales"], target=target, data=data, levels=levels, seed=seed, coverage_before=before,
                      floors=fitted["floors"] if floor else None, crop=crop, edges=fitted["edges"] if edge else None,
                      spearman=ranking, edge_widths=fitted["edge_widths"] if edge else None)
    entry["tta_views"] = sorted(views)  # the view sets its runs used (inference.tta): the spread depends on them
    card[CARD_KEY] = entry
    write_card(directory, card)
    logger.info("calibrated %s: scales %s, floors %s, edge terms %s, edge widths %s (coverage before %s)",
                card.get("name"), fitted["scales"], fitted["floors"] if floor else "none",
                fitted["edges"] if edge else "none", fitted["edge_widths"] if edge else "none", before)
    return entry


def _spearman(std: np.ndarray, error: np.ndarray) -> float | None:
    """Spearman correlation of std with |error|, rounded for the card; None (JSON null) when either is constant."""
    rho = std_error_spearman(std, error)
    return None if math.isnan(rho) else round(rho, 4)


def _noise_unit(noise_sigma: float, entry: str, level: float) -> float:
    """The run's estimated noise std, refused when it is not positive (nothing was removed to measure it)."""
    if not noise_sigma > 0:
        raise ConfigError(rule_message("estimated noise std of a calibration run", "must be > 0",
                                       f"{noise_sigma} on {entry} at level {level}",
                                       "Calibrate at noise levels that add visible noise, on images with content."))
    return float(noise_sigma)


def _errors_and_spreads(model: LoadedModel, modality: str, cases, levels, tta_counts, seed: int, device: str,
                        progress, views: set[str], edge: bool = True) -> dict[tuple[str, int], list[tuple]]:
    """Foreground ``(error, raw spread, in-plane gradients of the output)`` per run, listed per (source, TTA count),
    each divided by the run's estimated noise std; the gradients have one row per width of :data:`EDGE_WIDTHS` (None
    without ``edge``).
    The TTA view sets the runs used are added to ``views``."""
    samples: dict[tuple[str, int], list[tuple]] = {}
    generator = torch.Generator().manual_seed(int(seed))
    for entry, clean, geometry in cases:
        mask = clean > np.percentile(clean, 30)
        for level in levels:
            noisy = simulate_noise(modality, torch.from_numpy(clean), level=float(level), generator=generator).numpy()
            for source in _sources(model.card):
                for tta in tta_counts:
                    options = InferenceOptions(roi_size=(32, 160, 160), tta=int(tta), device=device,
                                               uncertainty_source=source)
                    result = denoise_volume(Volume(noisy.astype(np.float32), geometry), model, modality=modality,
                                            options=options)
                    unit = _noise_unit(result.noise_sigma, entry, level)  # the floor's unit
                    views.add(result.report["tta_views"])
                    denoised = result.denoised.array
                    gradients = (np.stack([edge_strength(denoised, w)[mask] / unit for w in EDGE_WIDTHS]) if edge
                                 else None)
                    samples.setdefault((source, tta), []).append(
                        ((denoised - clean)[mask] / unit, result.uncertainty.array[mask] / unit, gradients))
            if progress is not None:
                progress(f"{Path(entry).name} level {level}")
    return samples
