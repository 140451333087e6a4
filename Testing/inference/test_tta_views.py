"""TTA view sets: flips for 3D networks, the square's 8 symmetries for 2.5D ones; inverses, non-square patches,
the choice the pipeline makes and reports, and bad settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.inference.sliding_window import sliding_window_moments
from MedDenoiseLib.inference.tta import View, apply_view, flip_set, undo_view, view_set, views_for
from MedDenoiseLib.pipeline import InferenceOptions, denoise_volume
from MedDenoiseLib.testing import tiny_dualnet, tiny_model
from MedDenoiseLib.volume import Geometry, Volume


def test_both_sets_share_the_first_four_views_and_differ_in_the_last_four():
    for tta in (1, 2, 4):
        assert view_set(tta, "flips") == view_set(tta, "in-plane") == [View(d) for d in flip_set(tta)]
    in_plane = view_set(8, "in-plane")
    assert [v.transpose for v in in_plane] == [False] * 4 + [True] * 4
    assert all(2 not in v.flips for v in in_plane)  # never flips the slice order
    assert [v.flips for v in view_set(8, "flips")] == flip_set(8)


def test_the_in_plane_views_are_the_eight_symmetries_of_the_square():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 1, 2, 4, 4)
    shown = {tuple(apply_view(x, v).flatten().tolist()) for v in view_set(8, "in-plane")}
    rotations = {tuple(torch.rot90(y, k, dims=(3, 4)).flatten().tolist()) for y in (x, x.flip(4)) for k in range(4)}
    assert shown == rotations and len(shown) == 8


@pytest.mark.parametrize("kind", ["flips", "in-plane"])
def test_every_view_is_undone_on_non_square_patches(kind):
    x = torch.rand(2, 3, 3, 4, 6)
    for view in view_set(8, kind):
        assert apply_view(x, view).shape[3:] == ((6, 4) if view.transpose else (4, 6))
        torch.testing.assert_close(undo_view(apply_view(x, view), view), x)


def test_the_blended_mean_is_the_view_average_of_a_net_that_is_not_transpose_equivariant():
    image = torch.rand(1, 1, 2, 5, 7)  # one window (the whole image, no context margin), not square in-plane

    def predictor(batch):
        return batch + 0.5 * batch.roll(1, dims=-1)  # depends on the W direction only

    views = view_set(8, "in-plane")
    mean, var = sliding_window_moments(image, predictor, roi_size=(2, 5, 7), overlap=0.0, sigma_scale=0.125,
                                       sw_batch_size=3, sw_device=torch.device("cpu"), views=views)
    outputs = torch.stack([undo_view(predictor(apply_view(image, v)), v) for v in views])
    torch.testing.assert_close(mean, outputs.mean(0))
    torch.testing.assert_close(var[0, 0], outputs[:, 0, 0].var(0, unbiased=False))
    assert float(var.max()) > 0


def test_views_follow_the_network_and_the_pixel_shape():
    slab, dual = tiny_model(), tiny_dualnet()
    for modality in ("ct", "mr", "xr"):
        assert views_for(slab, (0.7, 0.7, 5.0), modality) == "in-plane"
    assert views_for(slab, (0.7, 0.7, 5.0), "us") == "flips"  # the beam makes rows and columns differ
    assert views_for(slab, (0.5, 1.0, 1.0), "mr") == "flips"  # a transposed slice would change the anatomy's aspect
    assert views_for(dual, (1.0, 1.0, 1.0), "mr") == "flips"  # 3D kernels: slice-order flips are real views


def test_the_pipeline_reports_and_applies_the_view_set():
    rng = np.random.default_rng(0)
    array = rng.normal(100.0, 10.0, (4, 16, 20)).astype(np.float32)
    model = tiny_model()
    square = denoise_volume(Volume(array), model, modality="mr", options=InferenceOptions(tta=8, device="cpu"))
    forced = denoise_volume(Volume(array), model, modality="mr",
                            options=InferenceOptions(tta=8, device="cpu", tta_views="flips"))
    oblong = Volume(array, geometry=Geometry(spacing=(0.5, 1.0, 2.0)))
    auto_oblong = denoise_volume(oblong, model, modality="mr", options=InferenceOptions(tta=8, device="cpu"))
    assert (square.report["tta_views"], forced.report["tta_views"], auto_oblong.report["tta_views"]) == (
        "in-plane", "flips", "flips")
    np.testing.assert_array_equal(forced.denoised.array, auto_oblong.denoised.array)
    assert not np.array_equal(square.denoised.array, forced.denoised.array)
    echo = denoise_volume(Volume(array), model, modality="us", options=InferenceOptions(tta=8, device="cpu"))
    assert echo.report["tta_views"] == "flips"
    four = [denoise_volume(Volume(array), model, modality="mr", options=InferenceOptions(tta=4, device="cpu",
                                                                                       tta_views=kind))
            for kind in ("flips", "in-plane")]
    np.testing.assert_array_equal(four[0].denoised.array, four[1].denoised.array)


@pytest.mark.parametrize("kind", ["diagonal", "rot90", ""])
def test_an_unknown_view_set_is_refused_naming_it(kind):
    with pytest.raises(ConfigError, match="tta_views must be one of"):
        InferenceOptions(tta_views=kind)
    with pytest.raises(ConfigError, match="tta views must be one of"):
        view_set(8, kind)


def test_the_cli_passes_the_view_set():
    import argparse

    from MedDenoiseLib.cli.options import add_inference_arguments, inference_options

    parser = argparse.ArgumentParser()
    add_inference_arguments(parser)
    assert inference_options(parser.parse_args([])).tta_views == "auto"
    assert inference_options(parser.parse_args(["--tta-views", "flips"])).tta_views == "flips"
    with pytest.raises(SystemExit):
        parser.parse_args(["--tta-views", "diagonal"])
