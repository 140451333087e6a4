"""Paired statistics for per-case comparisons of two methods (scipy.stats underneath).

A comparison takes the scores of two methods on the same cases, ``a[i]`` and ``b[i]``, and
reports the mean paired difference d = a - b with a bootstrap 95 % confidence interval, a
paired test chosen by a normality check of the differences, and Cohen's d for paired data.
Several comparisons are corrected together with Holm-Bonferroni.

The unit of pairing is the *case* (a patient / volume): slices or noise draws of one patient
are not independent, so they must be averaged per patient before they reach these functions.

References
----------
S. S. Shapiro and M. B. Wilk, "An analysis of variance test for normality", Biometrika 52, 1965.
Student (W. S. Gosset), "The probable error of a mean", Biometrika 6, 1908 (paired t-test).
F. Wilcoxon, "Individual comparisons by ranking methods", Biometrics Bulletin 1(6), 1945.
S. Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Stat. 6, 1979.
J. Cohen, "Statistical Power Analysis for the Behavioral Sciences", 2nd ed., 1988; D. Lakens,
"Calculating and reporting effect sizes", Front. Psychol. 4:863, 2013 (d_z for paired data).
B. Efron and R. Tibshirani, "An Introduction to the Bootstrap", 1993 (BCa intervals).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ConfigError, ShapeError, rule_message

__all__ = ["PairedComparison", "bootstrap_ci", "cohens_d_paired", "compare_paired", "holm_bonferroni",
           "paired_test", "MIN_CASES_FOR_TEST"]

#: Shapiro-Wilk needs at least 3 values; below that no test is run (p reported as NaN).
MIN_CASES_FOR_TEST = 3


def _paired_arrays(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ShapeError(rule_message("b", f"must have one score per case of a ({x.size})", y.size,
                                      "Pair the scores case by case (same cases, same order)."))
    if x.size == 0 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ConfigError(rule_message("a, b", "must be non-empty and finite", (x.size, y.size),
                                       "Drop cases with infinite scores (e.g. PSNR of identical images) first."))
    return x, y


def cohens_d_paired(a: Sequence[float], b: Sequence[float]) -> float:
    """Cohen's d for paired data, d_z = mean(a - b) / sd(a - b) (sd with ddof = 1).

    Returns ``nan`` for fewer than 2 cases or when every difference is identical and
    non-zero (sd = 0, d undefined); 0.0 when all differences are zero.

    Examples
    --------
    >>> cohens_d_paired([3.0, 5.0, 7.0], [1.0, 2.0, 3.0])  # d = [2, 3, 4]: 3 / 1
    3.0
    """
    x, y = _paired_arrays(a, b)
    d = x - y
    if d.size < 2:
        return math.nan
    sd = float(np.std(d, ddof=1))
    mean = float(np.mean(d))
    if sd == 0.0:
        return 0.0 if mean == 0.0 else math.nan
    return mean / sd


def paired_test(a: Sequence[float], b: Sequence[float], *, normality_alpha: float = 0.05) -> dict:
    """Paired t-test if the differences pass Shapiro-Wilk, else the Wilcoxon signed-rank test.

    Parameters
    ----------
    a, b : sequence of float
        Scores of two methods on the same cases, in the same order.
    normality_alpha : float, default 0.05
        Shapiro-Wilk p-value below which the differences are treated as non-normal.

    Returns
    -------
    dict
        ``test`` ("paired t", "wilcoxon", "identical" or "none: n < 3"), ``statistic``,
        ``p_value`` (NaN when no test ran), ``normality_p`` (Shapiro-Wilk on a - b), ``n``.

    Notes
    -----
    All-zero differences give p = 1 ("identical"): both tests are undefined there and the
    methods agree exactly. Wilcoxon uses scipy's default (exact distribution for small n,
    zero differences dropped as in Wilcoxon's original method).

    Examples
    --------
    >>> r = paired_test([1.0, 2.0, 3.0, 4.0], [0.0, 0.5, 1.5, 2.0])
    >>> r["test"], round(r["statistic"], 4)  # d = [1, 1.5, 1.5, 2]: t = 1.5 / (0.4082 / 2)
    ('paired t', 7.3485)
    """
    if not 0.0 < normality_alpha < 1.0:
        raise ConfigError(rule_message("normality_alpha", "must be in (0, 1)", normality_alpha, "Use 0.05."))
    from scipy import stats

    x, y = _paired_arrays(a, b)
    d = x - y
    n = int(d.size)
    if n < MIN_CASES_FOR_TEST:
        return {"test": f"none: n < {MIN_CASES_FOR_TEST}", "statistic": math.nan, "p_value": math.nan,
                "normality_p": math.nan, "n": n}
    if np.all(d == 0.0):
        return {"test": "identical", "statistic": 0.0, "p_value": 1.0, "normality_p": math.nan, "n": n}
    normality_p = float(stats.shapiro(d).pvalue) if np.ptp(d) > 0 else 0.0
    if normality_p >= normality_alpha:
        result, name = stats.ttest_rel(x, y), "paired t"
    else:
        result, name = stats.wilcoxon(x, y), "wilcoxon"
    return {"test": name, "statistic": float(result.statistic), "p_value": float(result.pvalue),
            "normality_p": normality_p, "n": n}


def holm_bonferroni(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order.

    p_(i) (sorted ascending, m tests) becomes max_{j <= i} min(1, (m - j + 1) p_(j)). NaN
    entries (comparisons that could not be tested) are returned as NaN and do not count in m.

    Examples
    --------
    >>> holm_bonferroni([0.01, 0.04, 0.03])  # sorted 0.01, 0.03, 0.04 -> 0.03, 0.06, 0.06
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if np.any((p < 0) | (p > 1)):
        raise ConfigError(rule_message("p_values", "must lie in [0, 1] (or be NaN)", p_values,
                                       "Pass raw p-values, not log-p or percentages."))
    out = np.full(p.shape, math.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    running = 0.0
    for rank, index in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return [float(round(v, 12)) if not math.isnan(v) else math.nan for v in out]


def bootstrap_ci(values: Sequence[float], *, seed: int, confidence: float = 0.95,
                 n_resamples: int = 9999) -> tuple[float, float]:
    """Bootstrap confidence interval of the mean (BCa; percentile when BCa is undefined).

    Parameters
    ----------
    values : sequence of float
        Per-case values (e.g. paired differences).
    seed : int
        Seeds ``numpy.random.default_rng``; required so every interval can be reproduced.
    confidence : float, default 0.95
    n_resamples : int, default 9999

    Returns
    -------
    (low, high) : tuple of float
        (NaN, NaN) for fewer than 2 values; (v, v) when all values equal v.

    Examples
    --------
    >>> bootstrap_ci([2.0, 2.0, 2.0], seed=0)
    (2.0, 2.0)
    """
    if not 0.0 < confidence < 1.0:
        raise ConfigError(rule_message("confidence", "must be in (0, 1)", confidence, "Use 0.95."))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(rule_message("seed", "must be an integer", seed, "Pass e.g. seed=0 and record it."))
    from scipy import stats

    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size < 2:
        return (math.nan, math.nan)
    if np.ptp(v) == 0.0:
        return (float(v[0]), float(v[0]))
    kwargs = dict(confidence_level=confidence, n_resamples=int(n_resamples), vectorized=True, axis=-1)
    result = stats.bootstrap((v,), np.mean, method="BCa", rng=np.random.default_rng(seed), **kwargs)
    low, high = result.confidence_interval
    if not (np.isfinite(low) and np.isfinite(high)):  # BCa degenerates on tiny or lumpy samples
        result = stats.bootstrap((v,), np.mean, method="percentile", rng=np.random.default_rng(seed), **kwargs)
        low, high = result.confidence_interval
    return (float(low), float(high))


@dataclass(frozen=True)
class PairedComparison:
    """One method against another on the same cases (``a`` minus ``b``)."""

    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    test: str
    statistic: float
    p_value: float
    normality_p: float
    cohens_d: float
    p_holm: float = math.nan

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN kept as float NaN; the report writer turns it into null)."""
        return asdict(self)


def compare_paired(a: Sequence[float], b: Sequence[float], *, seed: int, confidence: float = 0.95,
                   n_resamples: int = 9999) -> PairedComparison:
    """Everything the report needs for ``a`` versus ``b``: Δ, CI, test, p, Cohen's d.

    Examples
    --------
    >>> c = compare_paired([3.0, 5.0, 7.0], [1.0, 2.0, 3.0], seed=0)
    >>> c.mean_diff, c.cohens_d, c.test
    (3.0, 3.0, 'paired t')
    """
    x, y = _paired_arrays(a, b)
    test = paired_test(x, y)
    low, high = bootstrap_ci(x - y, seed=seed, confidence=confidence, n_resamples=n_resamples)
    return PairedComparison(n=int(x.size), mean_a=float(x.mean()), mean_b=float(y.mean()),
                            mean_diff=float((x - y).mean()), ci_low=low, ci_high=high, test=test["test"],
                            statistic=test["statistic"], p_value=test["p_value"],
                            normality_p=test["normality_p"], cohens_d=cohens_d_paired(x, y))
