"""Run an evaluation: simulate noise on every clean case, denoise with every method, score.

Noise for (case i, level j) is drawn from ``torch.Generator().manual_seed(s)`` with
``s = SeedSequence([seed, i, j])``, so any single cell of the results can be regenerated,
and every method sees the same noisy image.
"""

from __future__ import annotations

import logging
import math
import platform
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .. import __version__
from ..baselines import estimate_noise_sigma
from ..errors import CancelledError, ConfigError, rule_message
from ..metrics import mae, psnr, rmse, segmentation_dice, ssim, tissue_classes
from ..noise import LEVELS, simulate_noise
from .cases import Case, check_leakage, load_cases
from .config import EvaluationConfig, detector_range
from .fidelity import FidelityCollector
from .methods import build_methods
from .summary import compare_methods, summarize, timing_table

logger = logging.getLogger(__name__)
ERROR_DRAW_STREAM = 0xE44D  # SeedSequence word that separates the error draws from the cells' own noise draws

__all__ = ["EvaluationResult", "case_noise", "error_draw_seed", "evaluate", "noise_seed", "simulate_case_noise",
           "score_output"]

Progress = Callable[[int, int, str], None]


@dataclass
class EvaluationResult:
    """Everything the report writer needs; ``to_json`` drops the image panels."""

    config: dict
    environment: dict
    cases: list[dict]
    methods: list[dict]
    reference: str | None
    records: list[dict]
    summary: list[dict]
    comparisons: list[dict]
    timing: list[dict]
    panels: dict = field(default_factory=dict)  # level -> {"clean", "noisy", method: slice, "uncertainty": {...}}
    fidelity: dict | None = None  # FidelityCollector.result() with --fidelity

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "panels"}


def noise_seed(seed: int, case_index: int, level_index: int) -> int:
    """Seed of the noise draw for one (case, level) cell."""
    return int(np.random.SeedSequence([seed, case_index, level_index]).generate_state(1, dtype=np.uint64)[0] >> 1)


def error_draw_seed(seed: int, case_index: int, level_index: int, draw: int) -> int:
    """Seed of the ``draw``-th extra noise draw of one cell (the fidelity section's empirical error std); never
    the cell's own seed."""
    words = [seed, case_index, level_index, ERROR_DRAW_STREAM, draw]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0] >> 1)


def simulate_case_noise(case: Case, modality: str, level: float, seed: int, *, fast: bool,
                        detector_bits: int | None = None) -> np.ndarray:
    """The modality's physics noise at ``level`` on ``case.clean`` (float32, same shape), clipped to
    [0, 2**detector_bits - 1] when ``detector_bits`` is given (a saturating X-ray detector).

    Projection-domain CT noise depends on the attenuation along each ray, i.e. on the whole
    cross-section: a cropped case is put back into its full slices (``case.context``), noised
    there, and cropped again, so a crop gets the noise of the patient, not of a small object.
    """
    options = {"pixel_size_mm": float(case.geometry.spacing[0])} if modality == "ct" else {}
    generator = torch.Generator().manual_seed(seed)
    image, inplane = case.clean, None
    if modality == "ct" and not fast and case.context is not None and case.crop is not None:
        inplane = tuple(slice(a, b) for a, b in case.crop[1:])
        image = case.context.copy()
        image[(slice(None), *inplane)] = case.clean
    noisy = simulate_noise(modality, torch.from_numpy(image), level=level, generator=generator, fast=fast,
                           **options).numpy()
    if inplane is not None:
        noisy = noisy[(slice(None), *inplane)]
    if detector_bits is not None:
        noisy = np.clip(noisy, *detector_range(detector_bits))
    return np.ascontiguousarray(noisy, dtype=np.float32)


def case_noise(config: EvaluationConfig, case: Case, level: float, seed: int) -> np.ndarray:
    """The noisy image every path of a run scores (its table, the fidelity section's images and error draws):
    :func:`simulate_case_noise` with the run's ``fast_noise`` and ``detector_bits``."""
    return simulate_case_noise(case, config.modality, level, seed, fast=config.fast_noise,
                               detector_bits=config.detector_bits)


def _ssim_dims(shape: tuple[int, ...]) -> int | None:
    if min(shape[1:]) < 11:
        return None
    return 3 if shape[0] >= 11 else 2


def score_output(clean: np.ndarray, output: np.ndarray, *, mask: np.ndarray | None, data_range: float,
                 n_classes: int, seg_method: str) -> dict:
    """PSNR, SSIM (3D when every axis holds the 11-voxel window, else slice-wise), RMSE, MAE, Dice."""
    dims = _ssim_dims(clean.shape)
    try:
        s = ssim(clean, output, data_range=data_range, spatial_dims=dims, mask=mask) if dims else math.nan
    except Exception as exc:  # mask entirely in the border: report, do not abort the run
        logger.warning("SSIM not computed: %s", exc)
        s = math.nan
    return {"psnr": psnr(clean, output, data_range=data_range, mask=mask), "ssim": s,
            "rmse": rmse(clean, output, mask=mask), "mae": mae(clean, output, mask=mask),
            "dice": segmentation_dice(clean, output, n_classes=n_classes, method=seg_method),
            "ssim_dims": dims}


def _environment() -> dict:
    import scipy
    import SimpleITK

    versions = {"meddenoise": __version__, "torch": torch.__version__, "numpy": np.__version__,
                "scipy": scipy.__version__, "SimpleITK": SimpleITK.Version_VersionString()}
    for module in ("skimage", "dipy", "bm4d"):
        try:
            versions[module] = __import__(module).__version__
        except Exception:  # absent or without __version__
            versions[module] = None
    return {"platform": platform.platform(), "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(), "versions": versions}


def _check_detector_range(cases: list[Case], bits: int | None) -> None:
    """Refuse clean cases a ``bits``-bit detector could not have recorded (clipping them would score the clip)."""
    if bits is None:
        return
    bottom, top = detector_range(bits)
    for case in cases:
        low, high = float(case.clean.min()), float(case.clean.max())
        if low < bottom or high > top:
            raise ConfigError(rule_message("detector_bits", f"must hold every clean case's range [{bottom:g}, {top:g}]",
                                           f"{bits} for {case.name} (range {low:g} to {high:g})",
                                           "Use the bit depth the radiograph was stored with (the smallest whose "
                                           "range holds its maximum), or remove detector_bits."))


def evaluate(config: EvaluationConfig, *, progress: Progress | None = None,
             should_stop: Callable[[], bool] | None = None) -> EvaluationResult:
    """Run ``config`` and return per-case records, summaries, comparisons and timing."""
    methods = build_methods(config.methods, config.modality, tta=config.tta, device=config.device,
                            baseline_params=config.baseline_params)
    cases = load_cases(config.data, crop=config.crop)
    cards = {m.name: m.card for m in methods if m.kind == "model"}
    cases = check_leakage(cases, cards, exclude=config.exclude_training)
    _check_detector_range(cases, config.detector_bits)
    records, panels = [], {}
    fidelity = _fidelity_collector(config) if config.fidelity else None
    total = len(cases) * len(config.levels) * len(methods)
    total += fidelity.extra_runs(methods, len(cases)) if fidelity else 0
    done = [0]

    def tick(message: str) -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total, message)

    for i, case in enumerate(cases):
        data_range = float(case.clean.max() - case.clean.min())
        mask = tissue_classes(case.clean, n_classes=2) > 0 if config.mask == "foreground" else None
        for j, level in enumerate(config.levels):
            seed = noise_seed(config.seed, i, j)
            noisy = case_noise(config, case, level, seed)
            oracle = float(np.std(noisy - case.clean))
            sigma = oracle if config.sigma == "oracle" else estimate_noise_sigma(noisy)
            panel = panels.setdefault(level, {}) if i == 0 else None
            if panel is not None:
                z = case.clean.shape[0] // 2
                panel.update({"case": case.name, "clean": case.clean[z], "noisy": noisy[z], "outputs": {},
                              "uncertainty": {}})
            outputs = {}
            for method in methods:
                if should_stop is not None and should_stop():
                    raise CancelledError("evaluation stopped by the user; no report written")
                out = method.run(noisy, sigma=sigma, geometry=case.geometry)
                scores = score_output(case.clean, out.denoised, mask=mask, data_range=data_range,
                                      n_classes=config.segmentation_classes, seg_method=config.segmentation_method)
                records.append({"case": case.name, "level": level, "method": method.name, **scores,
                                "seconds": round(out.seconds, 4), "voxels": int(noisy.size),
                                "sigma_given": sigma, "sigma_oracle": oracle, "noise_seed": seed, **out.info})
                if panel is not None:
                    panel["outputs"][method.name] = out.denoised[z]
                    if out.uncertainty is not None:
                        panel["uncertainty"][method.name] = out.uncertainty[z]
                if fidelity is not None and level == fidelity.level:
                    outputs[method.name] = out
                tick(f"{case.name} level {level:g} {method.name}")
                logger.info("%s %s=%g %s: PSNR %.2f dB SSIM %.4f (%.2f s)", case.name, LEVELS[config.modality].name,
                            level, method.name, scores["psnr"], scores["ssim"], out.seconds)
            if outputs:
                fidelity.add_case(case, i, noisy, methods, outputs, sigma=sigma, tick=tick, should_stop=should_stop,
                                  simulate=lambda clean, s=seed, lv=level, c=case: case_noise(
                                      config, replace(c, clean=clean), lv, s),
                                  draw=lambda k, lv=level, c=case, cell=(i, j): case_noise(
                                      config, c, lv, error_draw_seed(config.seed, *cell, k)))
    names = [m.name for m in methods]
    reference = config.reference_method()
    comparisons = [] if reference is None else compare_methods(
        records, reference, names, config.levels, seed=config.seed, n_resamples=config.bootstrap_resamples)
    return EvaluationResult(config=config.model_dump(mode="json"), environment=_environment(),
                            cases=[c.describe() for c in cases], methods=[m.describe() for m in methods],
                            reference=reference, records=records, summary=summarize(records, names, config.levels),
                            comparisons=comparisons, timing=timing_table(records, names), panels=panels,
                            fidelity=fidelity.result() if fidelity else None)


def _fidelity_collector(config: EvaluationConfig) -> FidelityCollector:
    return FidelityCollector(seed=config.seed, modality=config.modality, levels=config.levels,
                             n_lesions=config.fidelity_lesions, sigma_mode=config.sigma,
                             n_classes=config.segmentation_classes, seg_method=config.segmentation_method,
                             error_draws=config.fidelity_error_draws)
