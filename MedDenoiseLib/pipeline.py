"""The one denoising path: normalise -> patch-wise TTA inference -> inverse -> uncertainty -> labels.

The CLI, the Slicer worker and the evaluation harness all call ``denoise_volume``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from . import __version__
from .errors import ConfigError, InputError, rule_message
from .inference.backoff import RunSettings, run_with_backoff
from .inference.blending import effective_roi
from .inference.device import autocast_context, resolve_device
from .inference.noise_level import conditioning_noise_sigma, residual_noise_sigma
from .inference.predictor import build_predictor
from .inference.progress import ProgressCallback, StopCallback
from .inference.sliding_window import plan_windows, sliding_window_moments
from .inference.tta import VIEW_SETS, flip_set, view_set, views_for
from .models.card import LoadedModel
from .models.routing import RoutedNetwork
from .normalization import canonical_modality, fit_normalization, normalization_choice
from .uncertainty_calibration import shown_std, std_calibration_for
from .uncertainty_labels import DEFAULT_THRESHOLDS, check_thresholds, regional_std, uncertainty_labels
from .volume import Volume

logger = logging.getLogger(__name__)

#: Where the std map comes from (see ``InferenceOptions.uncertainty_source``).
UNCERTAINTY_SOURCES = ("tta", "mc_dropout", "model")


@dataclass(frozen=True)
class InferenceOptions:
    """Options of one denoising run (validated on construction).

    roi_size : (D, H, W) patch; non-positive = whole axis. Default 32 x 160 x 160.
    overlap : fraction of a patch shared with its neighbour, in [0, 1).
    sigma_scale : Gaussian blending sigma as a fraction of the patch.
    sw_batch_size : views (TTA views x MC samples) per forward pass.
    tta : 1, 2, 4 or 8 test-time views.
    tta_views : which 8 views (``inference.tta``): 'flips' of (D, H, W), 'in-plane' (the square's
        symmetries: in-plane flips with and without swapping H and W), or 'auto' (in-plane for 2.5D
        networks on square pixels except ultrasound, flips otherwise). TTA 1 / 2 / 4 are the same in all.
    mc_dropout : Monte-Carlo dropout samples per flip (0 = off; needs a model with dropout).
    device : 'auto', 'cpu' or 'cuda[:N]'. amp : autocast on CUDA (bf16/fp16); ignored on CPU.
    seed : seeds the MC-dropout masks (recorded in the report).
    thresholds : uncertainty label thresholds as fractions of the noise std.
    uncertainty_source : what the std map shows: 'tta' (spread over the flips, and over the MC
        samples when mc_dropout > 0), 'mc_dropout' (the same spread, with mc_dropout >= 2 required),
        or 'model' (the model's own per-voxel std, e.g. DUAL-NET's, blended like the image and
        averaged over flips and MC samples).
    """

    roi_size: tuple[int, int, int] = (32, 160, 160)
    overlap: float = 0.25
    sigma_scale: float = 0.125
    sw_batch_size: int = 4
    tta: int = 8
    tta_views: str = "auto"
    mc_dropout: int = 0
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    thresholds: tuple[float, float, float] = DEFAULT_THRESHOLDS
    uncertainty_source: str = "tta"

    def __post_init__(self) -> None:
        if len(self.roi_size) != 3 or any(int(r) != r for r in self.roi_size):
            _bad("roi_size", "must be 3 integers (D, H, W)", self.roi_size, "Use (32, 160, 160).")
        for name in ("tta", "mc_dropout", "sw_batch_size", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value:
                _bad(name, "must be an integer", value, "Pass a whole number.")
            object.__setattr__(self, name, int(value))
        object.__setattr__(self, "roi_size", tuple(int(r) for r in self.roi_size))
        if not 0.0 <= self.overlap < 1.0:
            _bad("overlap", "must be in [0, 1)", self.overlap, "Use 0.25, or 0.5 for half-patch overlap.")
        if not 0.0 < self.sigma_scale <= 1.0:
            _bad("sigma_scale", "must be in (0, 1]", self.sigma_scale, "Use 0.125.")
        if self.sw_batch_size < 1:
            _bad("sw_batch_size", "must be >= 1", self.sw_batch_size, "Use 4 on CPU, 8 on a GPU.")
        if self.mc_dropout < 0:
            _bad("mc_dropout", "must be >= 0", self.mc_dropout, "Use 0 (off) or e.g. 8 samples.")
        flip_set(self.tta)
        if self.tta_views not in ("auto", *VIEW_SETS):
            _bad("tta_views", f"must be one of {['auto', *VIEW_SETS]}", self.tta_views,
                 "Use 'auto' (in-plane views for 2.5D models on square pixels).")
        check_thresholds(self.thresholds)
        if self.uncertainty_source not in UNCERTAINTY_SOURCES:
            _bad("uncertainty_source", f"must be one of {list(UNCERTAINTY_SOURCES)}", self.uncertainty_source,
                 "Use 'tta' (spread over the flips).")
        if self.uncertainty_source == "mc_dropout" and self.mc_dropout < 2:
            _bad("mc_dropout", "must be >= 2 when uncertainty_source is 'mc_dropout'", self.mc_dropout,
                 "Use --mc-dropout 8.")


@dataclass
class DenoiseResult:
    """Outputs on the input's grid: denoised (input units), std map (input units), uint8 labels."""

    denoised: Volume
    uncertainty: Volume
    labels: Volume
    noise_sigma: float
    report: dict = field(default_factory=dict)


def _bad(name, rule, value, fix):
    raise ConfigError(rule_message(name, rule, value, fix))


def denoise_volume(volume: Volume, model: LoadedModel | nn.Module, *, modality: str,
                   options: InferenceOptions | None = None, progress: ProgressCallback | None = None,
                   should_stop: StopCallback | None = None) -> DenoiseResult:
    """Denoise ``volume`` (never modified) and return outputs plus a JSON-ready report."""
    options = options or InferenceOptions()
    modality = canonical_modality(modality)
    started = time.perf_counter()
    source = np.asarray(volume.array, dtype=np.float32)
    _check_finite(source)
    network, card = (model.network, model.card) if isinstance(model, LoadedModel) else (model, {})
    norm = fit_normalization(source, modality, normalization_choice(card))
    normalised = np.ascontiguousarray(norm.forward(source))
    network, card, route = _resolve_route(network, card, normalised)
    _check_model_fits(network, card, modality, options)
    if float(source.max()) == float(source.min()):
        logger.warning("constant input: returned unchanged with zero uncertainty")
        return _constant_result(volume, source, options, norm, card, started)
    image = torch.from_numpy(normalised)[None, None]
    device = resolve_device(options.device)
    events: list[str] = []
    settings = RunSettings(options.sw_batch_size, effective_roi(tuple(source.shape), tuple(options.roi_size)), device)

    own = options.uncertainty_source == "model"
    views = (views_for(network, volume.geometry.spacing, modality) if options.tta_views == "auto"
             else options.tta_views)

    def run(s: RunSettings):
        predictor = build_predictor(network, image, s.device, mc_samples=options.mc_dropout, seed=options.seed,
                                    own_uncertainty=own)
        with autocast_context(s.device, options.amp), predictor:
            return sliding_window_moments(
                image, predictor, roi_size=s.roi_size, overlap=options.overlap, sigma_scale=options.sigma_scale,
                sw_batch_size=s.sw_batch_size, sw_device=s.device, views=view_set(options.tta, views),
                mc_samples=max(1, options.mc_dropout), channels=2 if own else 1, progress=progress,
                should_stop=should_stop)

    (mean, var), used = run_with_backoff(run, settings, events)
    denoised = norm.inverse(mean[0, 0].numpy()).astype(np.float32)
    spread = mean[0, 1].numpy() if own else np.sqrt(var[0, 0].numpy())  # normalised units either way
    calibration = std_calibration_for(card, options.tta, options.uncertainty_source, options.mc_dropout, views)
    raw_std = (spread * norm.scale).astype(np.float32)
    sigma = residual_noise_sigma(source, denoised)
    floor = calibration.floor * sigma  # the floor is stored as a fraction of the volume's estimated noise std
    if calibration.floor > 0 and not sigma > 0:
        logger.warning("no noise estimate (nothing was removed): the std has no error floor on this volume")
    std = shown_std(raw_std, calibration, sigma, denoised)
    labels = uncertainty_labels(regional_std(raw_std), sigma, options.thresholds)  # thresholds are set on the raw spread
    plan = plan_windows(tuple(source.shape), used.roi_size, options.overlap, options.tta * max(1, options.mc_dropout))
    report = _report(options, card, norm, used, plan.patches, events, sigma, started)
    report["tta_views"] = views
    if route:
        report["route"] = route
    report.update(std_scale=calibration.scale, std_floor=floor, std_edge=calibration.edge,  # floor: image units
                  std_edge_width=calibration.edge_width, std_meaning=calibration.meaning)
    logger.info("denoised %s on %s in %.1f s (%d patches x %d views); std: %s", source.shape, used.device,
                report["seconds"], plan.patches, plan.samples_per_patch, calibration.meaning)
    return DenoiseResult(_derived(volume, denoised, "denoised"), _derived(volume, std, "uncertainty std", "float32"),
                         _derived(volume, labels, "uncertainty labels", "uint8"), sigma, report)


def _resolve_route(network: nn.Module, card: dict, normalised: np.ndarray) -> tuple[nn.Module, dict, dict]:
    """(network, card, route record) of the member a routed model picks for this volume; others pass through."""
    if not isinstance(network, RoutedNetwork):
        return network, card, {}
    estimate = conditioning_noise_sigma(normalised)
    index = network.choose(estimate)
    member = network.cards[index]
    route = {"router": card.get("name"), "member": member.get("name"), "index": index,
             "noise_estimate": estimate, "up_to": network.up_to}
    logger.info("routed model %s: noise estimate %.4g -> member %s", card.get("name"), estimate, member.get("name"))
    return network.members[index], member, route


def _derived(volume: Volume, array: np.ndarray, what: str, source_dtype: str | None = None) -> Volume:
    """An output on the input's grid; keeps Modality but never the source's UIDs (it is a new, derived image).

    ``source_dtype``: what ``write_volume(dtype="source")`` casts to — the input's type for the
    denoised image (same units), float32 for the std map, uint8 for labels.
    """
    metadata = {k: v for k, v in volume.metadata.items() if k == "Modality"}
    metadata["DerivedBy"] = f"MedDenoise {__version__}: {what}"
    return Volume(array=array, geometry=volume.geometry, source_dtype=source_dtype or volume.source_dtype,
                  metadata=metadata)


def _check_finite(source: np.ndarray) -> None:
    bad = int(np.size(source) - np.count_nonzero(np.isfinite(source)))
    if bad:
        raise InputError(rule_message("volume", "must hold only finite voxels", f"{bad} NaN/Inf voxels",
                                      "Replace them first (read_volume(..., nonfinite='zero'))."))


def _check_model_fits(network: nn.Module, card: dict, modality: str, options: InferenceOptions) -> None:
    if options.mc_dropout > 0 and not getattr(network, "has_dropout", False):
        _bad("mc_dropout", "needs a model with dropout layers", options.mc_dropout,
             "Use --mc-dropout 0 (TTA spread is still reported) or a model trained with dropout.")
    if options.uncertainty_source == "model" and not getattr(network, "has_own_uncertainty", False):
        _bad("uncertainty_source", "'model' needs a model with its own uncertainty output (DUAL-NET with its "
             "noise-estimation branch)", f"model {card.get('name') or type(network).__name__} without one",
             "Use --uncertainty-source tta (spread over the flips), or a dualnet model.")
    trained_for = card.get("modality")
    if trained_for and trained_for != modality:
        logger.warning("model %s was trained for %s, used on %s", card.get("name"), trained_for, modality)


def _constant_result(volume, source, options, norm, card, started) -> DenoiseResult:
    zeros = np.zeros_like(source, dtype=np.float32)
    report = _report(options, card, norm, None, 0, ["constant input: returned unchanged"], 0.0, started)
    return DenoiseResult(_derived(volume, source.copy(), "denoised (constant input, unchanged)"),
                         _derived(volume, zeros, "uncertainty std", "float32"),
                         _derived(volume, zeros.astype(np.uint8), "uncertainty labels", "uint8"), 0.0, report)


def _report(options, card, norm, used, patches, events, sigma, started) -> dict:
    return {
        "model": card.get("name"), "model_sha256": card.get("sha256"),
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(options).items()},
        "device": str(used.device) if used else "none", "roi_size": list(used.roi_size) if used else None,
        "sw_batch_size": used.sw_batch_size if used else None, "patches": patches,
        "tta": options.tta, "mc_dropout": options.mc_dropout, "uncertainty_source": options.uncertainty_source,
        "normalization": norm.to_dict(),
        "noise_sigma": sigma, "backoff": events, "seconds": round(time.perf_counter() - started, 3),
    }
