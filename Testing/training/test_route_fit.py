"""Fitting a routed model's threshold: hand-computed choices, then the whole build on a tiny case and its CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import torch

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.inference.noise_level import conditioning_noise_sigma
from MedDenoiseLib.io import read_volume, write_volume
from MedDenoiseLib.models.card import load_model, save_model
from MedDenoiseLib.models.routing import RoutedNetwork
from MedDenoiseLib.noise import simulate_noise
from MedDenoiseLib.testing import tiny_model
from MedDenoiseLib.training.route_fit import best_threshold, build_routed_model
from MedDenoiseLib.volume import Volume


def test_threshold_sits_between_the_estimates_where_the_better_member_changes():
    # member 0 wins at estimates 1 and 2, member 1 at 3 and 4: cut midway between 2 and 3
    assert best_threshold([3.0, 1.0, 4.0, 2.0], [9.0, 1.0, 9.0, 1.0], [1.0, 4.0, 1.0, 4.0]) == 2.5


def test_threshold_is_judged_in_log_error_so_every_level_counts_alike():
    # member 0 is best at estimates 1 and 3, member 1 at 2, so one cut must give something up. Summed
    # absolute error keeps member 0 everywhere (0.1 + 2 + 100 = 102.1 against 0.1 + 1 + 103 = 104.1 for a
    # cut at 1.5); summed log error cuts at 1.5 (log 0.1 + log 1 + log 103 = 2.33 against 2.99)
    assert best_threshold([1.0, 2.0, 3.0], [0.1, 2.0, 100.0], [1.0, 1.0, 103.0]) == 1.5


def test_one_member_best_everywhere_puts_the_threshold_outside_the_points():
    assert best_threshold([1.0, 2.0], [1.0, 1.0], [2.0, 2.0]) == 3.0  # all to member 0
    assert best_threshold([1.0, 2.0], [2.0, 2.0], [1.0, 1.0]) == 0.0  # all to member 1


@pytest.fixture
def routed_dir(tmp_path):
    root = tmp_path / "routed"
    save_model(tiny_model(seed=1), root / "light", {"name": "light", "modality": "mr"})
    save_model(tiny_model(seed=2), root / "heavy", {"name": "heavy", "modality": "mr"})
    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[0:4, 0:32, 0:32]
    clean = (100 + 60 * ((yy - 16) ** 2 + (xx - 16) ** 2 < 80) + 3 * rng.normal(size=zz.shape)).astype(np.float32)
    write_volume(Volume(clean), tmp_path / "train.nrrd")
    return root, tmp_path / "train.nrrd"


def test_build_writes_a_loadable_card_with_every_point(routed_dir):
    root, image = routed_dir
    card = build_routed_model(root, members=["light", "heavy"], name="routed", levels=[2.0, 6.0, 12.0],
                              data=[str(image)], crop=(4, 32, 32))
    points = card["route_fit"]["points"]
    assert [p["level"] for p in points] == [2.0, 6.0, 12.0] and all(len(p["errors"]) == 2 for p in points)
    assert points[0]["noise_estimate"] < points[1]["noise_estimate"] < points[2]["noise_estimate"]
    threshold = card["routes"]["members"][0]["up_to"]
    assert threshold == pytest.approx(best_threshold([p["noise_estimate"] for p in points],
                                                     [p["errors"][0] for p in points],
                                                     [p["errors"][1] for p in points]), abs=1e-6)
    loaded = load_model(root)
    assert isinstance(loaded.network, RoutedNetwork) and loaded.network.up_to == [threshold]
    assert json.loads((root / "card.json").read_text()) == json.loads(json.dumps(card))


def test_build_refuses_other_than_two_members(routed_dir):
    root, image = routed_dir
    with pytest.raises(ConfigError, match="members.*exactly two"):
        build_routed_model(root, members=["light"], name="r", levels=[2.0], data=[str(image)])


def test_cli_route(routed_dir, capsys):
    from MedDenoiseLib.cli.main import main

    root, image = routed_dir
    code = main(["route", "--model", str(root), "--members", "light", "heavy", "--name", "routed", "--levels", "2",
                 "12", "--data", str(image), "--crop", "4", "32", "32"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["members"][1] == {"path": "heavy"}


def test_build_refuses_members_that_read_their_training_images_differently(routed_dir):
    root, image = routed_dir
    card_path = root / "heavy" / "card.json"
    card = json.loads(card_path.read_text())
    card["training"] = {"config": {"data": {"rescale_to": [0.0, 255.0]}}}
    card_path.write_text(json.dumps(card))
    with pytest.raises(ConfigError, match=r"members must have read their training images alike.*rescale_to.*"
                                          r"Route between members trained with the same intensity map"):
        build_routed_model(root, members=["light", "heavy"], name="r", levels=[2.0], data=[str(image)])


def test_build_refuses_members_that_normalise_differently(routed_dir):
    root, image = routed_dir
    card_path = root / "heavy" / "card.json"
    card_path.write_text(json.dumps({**json.loads(card_path.read_text()), "normalization": "xr_percentile"}))
    with pytest.raises(ConfigError, match=r"members must normalise their inputs alike.*'default', 'xr_percentile'"):
        build_routed_model(root, members=["light", "heavy"], name="r", levels=[2.0], data=[str(image)])


def test_build_maps_the_images_as_the_members_were_trained(routed_dir, tmp_path):
    """Members trained on rescaled images are scored on the image rescaled the same way (HU would fail Rician)."""
    root, image = routed_dir
    for member in ("light", "heavy"):
        card_path = root / member / "card.json"
        card = json.loads(card_path.read_text())
        card["training"] = {"config": {"data": {"rescale_to": [0.0, 255.0]}}}
        card_path.write_text(json.dumps(card))
    hu = tmp_path / "hu.nrrd"
    write_volume(Volume(read_volume(image).array - 1000.0), hu)
    card = build_routed_model(root, members=["light", "heavy"], name="routed", levels=[2.0, 12.0], data=[str(hu)],
                              crop=(4, 32, 32))
    assert [p["level"] for p in card["route_fit"]["points"]] == [2.0, 12.0]


def test_build_scores_and_records_the_members_normalization(tmp_path):
    root = tmp_path / "routed"
    for member, seed in (("light", 1), ("heavy", 2)):
        save_model(tiny_model(seed=seed), root / member, {"name": member, "modality": "xr",
                                                          "normalization": "xr_percentile"})
    yy, xx = np.mgrid[0:32, 0:32]
    clean = np.where((yy - 16) ** 2 + (xx - 16) ** 2 < 80, 400.0, 600.0 + 13.0 * xx)[None].astype(np.float32)
    write_volume(Volume(clean), tmp_path / "xr.nrrd")
    card = build_routed_model(root, members=["light", "heavy"], name="r", levels=[0.5],
                              data=[str(tmp_path / "xr.nrrd")], crop=(1, 32, 32), seed=3)
    assert card["normalization"] == "xr_percentile"
    # the estimate routing uses: the noisy image over its own 99.5th percentile (the bit rule would divide by 4095)
    noisy = simulate_noise("xr", torch.from_numpy(clean.copy()), level=0.5,
                           generator=torch.Generator().manual_seed(3)).numpy()
    expected = conditioning_noise_sigma(noisy / np.percentile(noisy, 99.5))
    assert card["route_fit"]["points"][0]["noise_estimate"] == pytest.approx(expected, rel=1e-5)
    assert load_model(root).card["normalization"] == "xr_percentile"
