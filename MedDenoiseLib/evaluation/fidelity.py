"""Clinical fidelity inside ``meddenoise evaluate --fidelity``: two extra runs per method and case.

Measured at one noise level, the middle of the sorted ``levels`` (:func:`fidelity_level`),
which bounds the cost: besides the runs the evaluation already makes, each method runs once
on the clean case (clean in -> clean out) and once on the fidelity phantom (the case with a
TTF disc and ``fidelity_lesions`` lesions added before noise, drawn with the same noise seed
as the plain noisy image, so the two differ by the inserts only). Everything else (bias,
NPS, hallucination, calibration, Dice) reuses the evaluation's own output at that level. Models
with an uncertainty map also denoise ``error_draws`` fresh noise draws: their per-voxel RMS error
is the empirical error std the shown std is compared with (how well could a std rank the error).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence

import numpy as np

from ..baselines import estimate_noise_sigma
from ..errors import CancelledError, ConfigError, rule_message
from ..fidelity import FidelityThresholds, MethodRuns, build_phantom, score_case, summarize_fidelity, verdict
from ..fidelity.calibration import empirical_error_std
from .cases import Case
from .methods import MethodOutput

logger = logging.getLogger(__name__)

__all__ = ["FidelityCollector", "fidelity_level", "phantom_generator"]

FIDELITY_STREAM = 0xF1DE  # SeedSequence word that separates phantom draws from noise draws


def fidelity_level(levels: Sequence[float]) -> float:
    """The middle of the sorted levels (the upper middle for an even count).

    Examples
    --------
    >>> fidelity_level([3.0, 6.0, 9.0, 12.0]), fidelity_level([0.5, 0.1, 0.25])
    (9.0, 0.25)
    """
    ordered = sorted(float(v) for v in levels)
    return ordered[len(ordered) // 2]


def phantom_generator(seed: int, case_index: int) -> np.random.Generator:
    """The generator of every phantom draw of one case, derived from the evaluation seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, case_index, FIDELITY_STREAM]))


def _std_source(method, out: MethodOutput) -> str | None:
    """What the method's std map shows, for the calibration line (the model run's TTA spread)."""
    if out.uncertainty is None:
        return None
    if out.info.get("std_meaning"):
        return str(out.info["std_meaning"]).split(", fitted")[0]  # e.g. "tta spread x 2.99"
    source = out.info.get("uncertainty_source", "tta")
    tta = out.info.get("tta") or getattr(method, "tta", None)
    return f"TTA spread, {tta} flips" if source == "tta" and tta else f"{source} uncertainty map"


class FidelityCollector:
    """Collects per-case fidelity scores during an evaluation and summarises them at the end."""

    def __init__(self, *, seed: int, modality: str, levels: Sequence[float], n_lesions: int, sigma_mode: str,
                 n_classes: int, seg_method: str, thresholds: FidelityThresholds | None = None,
                 error_draws: int = 0) -> None:
        self.seed, self.modality, self.level = seed, modality, fidelity_level(levels)
        self.n_lesions, self.sigma_mode, self.error_draws = n_lesions, sigma_mode, int(error_draws)
        self.seg = {"n_classes": n_classes, "seg_method": seg_method}
        self.thresholds = thresholds or FidelityThresholds()
        self.records: list[dict] = []
        self.cases: list[dict] = []

    def extra_runs(self, methods: list, n_cases: int) -> int:
        """Runs added to the evaluation's progress total (clean and phantom run per method and case, and the error
        draws of every model)."""
        per_case = sum(2 + (self.error_draws if m.kind == "model" else 0) for m in methods if m.kind != "noisy")
        return n_cases * per_case

    def add_case(self, case: Case, index: int, noisy: np.ndarray, methods: list, outputs: dict[str, MethodOutput], *,
                 sigma: float, simulate: Callable[[np.ndarray], np.ndarray],
                 tick: Callable[[str], None], should_stop: Callable[[], bool] | None = None,
                 draw: Callable[[int], np.ndarray] | None = None) -> None:
        """Build the case's phantom, run every method on it and on the clean case, score everything.

        ``simulate`` adds this cell's noise (same seed as ``noisy``) to a clean array; ``draw(k)`` is the case
        with the k-th fresh noise draw (for the empirical error std; needed when ``error_draws`` > 0);
        ``outputs`` are the methods' outputs on ``noisy``; ``tick`` reports one finished run.
        """
        spacing = tuple(float(s) for s in reversed(case.geometry.spacing))
        phantom = build_phantom(case.clean, modality=self.modality, generator=phantom_generator(self.seed, index),
                                spacing_zyx=spacing, n_lesions=self.n_lesions)
        noisy_inserted = simulate(phantom.inserted)
        clean_sigma = 0.0 if self.sigma_mode == "oracle" else estimate_noise_sigma(case.clean)
        runs = {}
        if draw is not None and sum(m.kind == "model" for m in methods) > 1:
            draw = functools.lru_cache(maxsize=None)(draw)  # each fresh draw simulated once, shared by the models
        for method in methods:
            if method.kind == "noisy":
                continue
            if should_stop is not None and should_stop():
                raise CancelledError("evaluation stopped by the user; no report written")
            on_clean = method.run(case.clean, sigma=clean_sigma, geometry=case.geometry).denoised
            tick(f"{case.name} fidelity {method.name} clean")
            on_inserted = method.run(noisy_inserted, sigma=sigma, geometry=case.geometry).denoised
            tick(f"{case.name} fidelity {method.name} phantom")
            out = outputs[method.name]
            empirical = None
            if out.uncertainty is not None and self.error_draws > 0 and method.kind == "model":
                empirical = self._empirical_std(case, method, draw, sigma, tick, should_stop)
            runs[method.name] = MethodRuns(out.denoised, on_clean, on_inserted, out.uncertainty,
                                           _std_source(method, out), empirical)
        scored = score_case(case.clean, noisy, noisy_inserted, phantom, runs, modality=self.modality, **self.seg,
                            dprime_tolerance=self.thresholds.lesion_dprime_tolerance)
        self.records += [{"case": case.name, **r} for r in scored.records]
        self.cases.append({"case": case.name, "phantom": scored.phantom, "clean_ttf": scored.clean_ttf,
                           "paired_noise": scored.paired_noise, "curves": scored.curves})
        logger.info("fidelity %s: %d lesions, disc %s", case.name, len(phantom.lesions),
                    "placed" if phantom.disc else "not placed")

    def _empirical_std(self, case: Case, method, draw, sigma: float, tick, should_stop) -> np.ndarray:
        """RMS error of ``method`` over ``error_draws`` fresh noise draws of the case."""
        if draw is None:
            raise ConfigError(rule_message("draw", "must be given when error_draws > 0", self.error_draws,
                                           "Pass draw=(k -> the case with its k-th fresh noise draw), or use "
                                           "error_draws=0."))

        def outputs():
            for k in range(self.error_draws):
                if should_stop is not None and should_stop():
                    raise CancelledError("evaluation stopped by the user; no report written")
                yield method.run(draw(k), sigma=sigma, geometry=case.geometry).denoised
                tick(f"{case.name} fidelity {method.name} error draw {k + 1}/{self.error_draws}")

        return empirical_error_std(case.clean, outputs())

    def result(self) -> dict:
        """JSON-ready: level, thresholds, per-case records and curves, per-method summary and verdicts."""
        summary = summarize_fidelity(self.records)
        verdicts = [verdict(row, thresholds=self.thresholds).to_dict() for row in summary if row["method"] != "noisy"]
        return {"level": self.level, "thresholds": self.thresholds.to_dict(), "n_lesions": self.n_lesions,
                "error_draws": self.error_draws,
                "records": self.records, "summary": summary, "verdicts": verdicts, "cases": self.cases}
