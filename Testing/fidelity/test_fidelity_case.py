"""One case end to end at library level: phantom, every metric, comparison with the input, verdicts.

The "denoisers" are the identity, a biased identity and the registered ``gaussian`` baseline
(SimpleITK) at a mild and a large width; noise is additive white Gaussian noise with a fixed
generator, added identically with and without the phantom's inserts.
"""

from __future__ import annotations

import numpy as np
import pytest

from MedDenoiseLib.baselines.gaussian import denoise_gaussian
from MedDenoiseLib.fidelity import (FidelityThresholds, MethodRuns, build_phantom, insert_lesions, score_case,
                                    summarize_fidelity, verdict)

SPACING = (2.0, 1.0, 1.0)


@pytest.fixture(scope="module")
def case():
    z, y, x = np.mgrid[0:6, 0:96, 0:96]
    clean = 100.0 * ((np.abs(y - 48) < 42) & (np.abs(x - 48) < 42)) + 100.0 * ((y - 28) ** 2 + (x - 64) ** 2 < 81)
    clean = clean + 0.5 * np.sin(x / 5.0) * np.cos(y / 7.0)
    noise = np.random.default_rng(4).normal(0.0, 5.0, clean.shape)
    phantom = build_phantom(clean, modality="mr", generator=np.random.default_rng(9), spacing_zyx=SPACING)
    return clean, noise, phantom


def _runs(function, clean, noise, phantom):
    return MethodRuns(function(clean + noise), function(clean), function(phantom.inserted + noise))


@pytest.fixture(scope="module")
def verdicts(case):
    clean, noise, phantom = case
    methods = {"identity": lambda a: np.array(a, dtype=np.float64), "biased": lambda a: np.asarray(a) * 1.03,
               "mild": lambda a: denoise_gaussian(np.asarray(a, np.float32), width=0.25),
               "large": lambda a: denoise_gaussian(np.asarray(a, np.float32), width=2.0)}
    runs = {name: _runs(f, clean, noise, phantom) for name, f in methods.items()}
    scored = score_case(clean, clean + noise, phantom.inserted + noise, phantom, runs, modality="mr")
    rows = {r["method"]: r for r in summarize_fidelity(scored.records)}
    return scored, rows, {name: verdict(row) for name, row in rows.items()}


class TestPhantom:
    def test_inserts_are_recorded_and_replayable(self, case):
        clean, _, phantom = case
        again = build_phantom(clean, modality="mr", generator=np.random.default_rng(9), spacing_zyx=SPACING)
        assert again.to_dict() == phantom.to_dict() and np.array_equal(again.inserted, phantom.inserted)
        assert phantom.disc is not None and len(phantom.lesions) == 4 and phantom.notes == []
        tol = 1e-4 * np.abs(clean).max()  # inserted is float32
        assert phantom.inserted.max() <= clean.max() + tol and phantom.inserted.min() >= clean.min() - tol


class TestScoreCase:
    def test_noisy_row_comes_first_and_compares_with_itself(self, verdicts):
        scored, rows, _ = verdicts
        assert [r["method"] for r in scored.records] == ["noisy", "identity", "biased", "mild", "large"]
        assert rows["noisy"]["nps_shift"] == 0.0 and rows["noisy"]["ttf50_ratio"] == 1.0
        assert rows["noisy"]["signal_kept_mean"] == pytest.approx(1.0)  # additive noise: the inserts pass exactly

    def test_identity_denoiser(self, verdicts):
        _, rows, v = verdicts
        row = rows["identity"]
        assert row["clean_in_psnr"] == 100.0 and row["nps_shift"] == 0.0 and row["ttf50_ratio"] == 1.0
        assert row["lesions_lost"] == 0 and row["lesions_total"] == 4 and row["hallucination_ratio"] == 1.0
        assert v["identity"].failures == []

    def test_biased_output_gives_its_bias(self, verdicts):
        _, rows, v = verdicts
        assert rows["biased"]["bias_value"] - rows["identity"]["bias_value"] == pytest.approx(3.0, rel=1e-3)
        assert f"intensity biased by {rows['biased']['bias_value']:+.2f} %" in v["biased"].failures

    def test_large_gaussian_is_flagged_and_mild_is_not(self, verdicts):
        _, rows, v = verdicts
        assert rows["large"]["nps_shift"] < -0.10 and rows["large"]["ttf50_ratio"] < 0.90
        assert any(f.startswith("texture smoothed") for f in v["large"].failures)
        assert any(f.startswith("edges blurred") for f in v["large"].failures)
        assert abs(rows["mild"]["nps_shift"]) <= 0.10 and rows["mild"]["ttf50_ratio"] >= 0.90
        assert not any(f.startswith(("texture", "edges")) for f in v["mild"].failures)
        assert rows["large"]["clean_in_psnr"] < rows["mild"]["clean_in_psnr"] < 100.0

    def test_curves_for_the_report(self, verdicts):
        scored, _, _ = verdicts
        assert set(scored.curves) == {"noisy", "identity", "biased", "mild", "large"}
        assert {"nps", "ttf"} <= set(scored.curves["mild"]) and "reliability" not in scored.curves["mild"]
        # additive noise: the noisy input passes the insert unchanged
        assert scored.clean_ttf["ttf50"] == pytest.approx(scored.records[0]["ttf50"])


    def test_unpaired_noise_is_measured_against_clean(self, case):
        clean, noise, phantom = case
        other = np.random.default_rng(5).normal(0.0, 5.0, clean.shape)  # an independent draw, as Poisson gives
        scored = score_case(clean, clean + noise, phantom.inserted + other, phantom, {}, modality="mr")
        assert not scored.paired_noise
        for lesion, scores in zip(phantom.lesions, scored.records[0]["lesions"]):
            norm = np.linalg.norm(insert_lesions(np.zeros_like(clean), [lesion], spacing_zyx=SPACING))
            assert scores["signal_kept"] == pytest.approx(1.0, abs=4 * 5.0 / norm)  # Σ w n / Σ w²: σ / ‖w‖


class TestVerdict:
    def test_calibration_line_and_threshold(self):
        row = {"method": "m", "nps_shift": 0.0, "bias_value": 0.0, "bias_unit": "HU", "ttf50_ratio": 1.0,
               "lesions_lost": 1, "lesions_total": 4, "calibration_coverage": 0.79, "calibration_source": "TTA"}
        result = verdict(row)
        assert "lesions lost 1 of 4 (d′ below the noisy input's)" in result.failures
        assert "calibration 79 % within 2 std (TTA), below 80 %" in result.failures
        assert verdict(row, thresholds=FidelityThresholds(min_calibration=0.5)).failures == result.failures[:1]

    def test_ct_bias_threshold_is_two_hu(self):
        row = {"method": "m", "bias_value": 2.5, "bias_unit": "HU"}
        assert verdict(row).failures == ["HU biased by +2.5 HU"]
        assert "HU unbiased (-1.9 HU)" in verdict({**row, "bias_value": -1.9}).lines


def test_phantom_falls_back_when_no_tile_is_wholly_foreground():
    """Speckle-like images: every tile touches a dark voxel, yet ROIs (and a note) are still produced."""
    import numpy as np

    from MedDenoiseLib.fidelity.phantom import build_phantom

    rng = np.random.default_rng(3)
    image = np.zeros((1, 64, 96), np.float32)
    image[0, 8:56, 8:88] = rng.exponential(100.0, size=(48, 80))  # fully developed speckle reaches 0
    image[0, ::7, ::7] = 0.0
    phantom = build_phantom(image, modality="us", generator=np.random.default_rng(0), n_lesions=2)
    assert len(phantom.rois) >= 1
    assert any("ROIs" in note for note in phantom.notes)
