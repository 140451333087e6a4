"""Paired statistics against hand-computed values and scipy (kornia style: tiny data, known answers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from MedDenoiseLib.errors import ConfigError, ShapeError
from MedDenoiseLib.metrics.stats import (bootstrap_ci, cohens_d_paired, compare_paired, holm_bonferroni,
                                         paired_test)


class TestPairedTest:
    def test_t_statistic_by_hand(self):
        # d = [1, 1.5, 1.5, 2]: mean 1.5, sd sqrt(1/6), t = 1.5 / (sqrt(1/6) / 2) = 7.348469
        r = paired_test([1.0, 2.0, 3.0, 4.0], [0.0, 0.5, 1.5, 2.0])
        assert r["test"] == "paired t" and r["n"] == 4
        assert r["statistic"] == pytest.approx(1.5 / (math.sqrt(1 / 6) / 2), rel=1e-12)
        assert r["p_value"] == pytest.approx(2 * stats.t.sf(r["statistic"], df=3), rel=1e-10)

    def test_non_normal_differences_use_wilcoxon(self):
        # 9 zero-ish differences and one huge outlier: Shapiro-Wilk rejects normality
        a = np.array([1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98, 1.01, 0.99, 30.0])
        b = np.zeros(10)
        r = paired_test(a, b)
        assert r["normality_p"] < 0.05 and r["test"] == "wilcoxon"
        # all 10 differences positive: W- = 0, exact two-sided p = 2 / 2^10
        assert r["statistic"] == 0.0 and r["p_value"] == pytest.approx(2 / 2**10, rel=1e-12)

    def test_too_few_cases(self):
        r = paired_test([1.0, 2.0], [0.0, 0.0])
        assert r["test"] == "none: n < 3" and math.isnan(r["p_value"])

    def test_identical(self):
        assert paired_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])["p_value"] == 1.0

    def test_shape_mismatch(self):
        with pytest.raises(ShapeError, match="b must have one score per case of a \\(3\\); got 2"):
            paired_test([1, 2, 3], [1, 2])

    def test_nonfinite(self):
        with pytest.raises(ConfigError, match="must be non-empty and finite"):
            paired_test([1, 2, math.inf], [1, 2, 3])


class TestHolm:
    def test_known_values(self):
        # sorted 0.01, 0.03, 0.04 (m = 3): 3 x 0.01 = 0.03; 2 x 0.03 = 0.06; max(0.06, 1 x 0.04) = 0.06
        assert holm_bonferroni([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]

    def test_capped_at_one_and_nan_skipped(self):
        out = holm_bonferroni([0.5, math.nan, 0.6])
        assert out[0] == 1.0 and out[2] == 1.0 and math.isnan(out[1])

    def test_out_of_range(self):
        with pytest.raises(ConfigError, match="p_values must lie in \\[0, 1\\]"):
            holm_bonferroni([0.1, 2.0])


class TestCohensD:
    def test_by_hand(self):
        # d = [2, 3, 4]: mean 3, sd 1 -> 3
        assert cohens_d_paired([3.0, 5.0, 7.0], [1.0, 2.0, 3.0]) == pytest.approx(3.0, rel=1e-12)

    def test_sign_and_degenerate(self):
        assert cohens_d_paired([1.0, 2.0, 3.0], [3.0, 5.0, 7.0]) == pytest.approx(-3.0)
        assert cohens_d_paired([1.0, 2.0], [1.0, 2.0]) == 0.0
        assert math.isnan(cohens_d_paired([2.0, 3.0], [1.0, 2.0]))  # constant non-zero difference


class TestBootstrap:
    def test_seeded_and_reproducible(self):
        values = np.random.default_rng(0).normal(1.0, 0.5, 30)
        a, b = bootstrap_ci(values, seed=7, n_resamples=2000), bootstrap_ci(values, seed=7, n_resamples=2000)
        assert a == b and a[0] < values.mean() < a[1]
        # width close to the normal-theory interval 2 x 1.96 x s / sqrt(n)
        width = 2 * 1.96 * values.std(ddof=1) / math.sqrt(values.size)
        assert (a[1] - a[0]) == pytest.approx(width, rel=0.25)

    def test_constant_and_tiny(self):
        assert bootstrap_ci([2.0, 2.0, 2.0], seed=0) == (2.0, 2.0)
        assert all(math.isnan(v) for v in bootstrap_ci([1.0], seed=0))

    def test_seed_is_required_to_be_an_integer(self):
        with pytest.raises(ConfigError, match="seed must be an integer; got None"):
            bootstrap_ci([1.0, 2.0], seed=None)


class TestComparePaired:
    def test_fields(self):
        c = compare_paired([3.0, 5.0, 7.0, 9.5], [1.0, 2.0, 3.0, 4.0], seed=0, n_resamples=1000)
        assert c.n == 4 and c.mean_diff == pytest.approx(3.625) and c.test == "paired t"
        assert c.ci_low <= c.mean_diff <= c.ci_high
        assert c.p_value == pytest.approx(stats.ttest_rel([3, 5, 7, 9.5], [1, 2, 3, 4]).pvalue, rel=1e-12)
