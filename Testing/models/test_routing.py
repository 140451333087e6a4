"""Models routed by noise level: card checks, member loading and sha256, per-volume choice in the pipeline,
refusals where one network is needed, the threshold fit, the CLI, the benchmark and the models table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from MedDenoiseLib.errors import ConfigError, WeightsError
from MedDenoiseLib.models.card import load_model, save_model
from MedDenoiseLib.models.routing import RoutedNetwork, route_members
from MedDenoiseLib.pipeline import InferenceOptions, denoise_volume
from MedDenoiseLib.testing import tiny_model
from MedDenoiseLib.uncertainty_calibration import CARD_KEY
from MedDenoiseLib.volume import Volume


def _routed(root: Path, up_to: float = 0.05, **routes) -> Path:
    """A routed MR model: ``light`` (seed 1) up to ``up_to``, ``heavy`` (seed 2) above."""
    save_model(tiny_model(seed=1), root / "light", {"name": "tiny_light", "modality": "mr"})
    save_model(tiny_model(seed=2), root / "heavy", {"name": "tiny_heavy", "modality": "mr"})
    card = {"name": "tiny_routed", "modality": "mr", "parameters": 2,
            "routes": {"estimate": "conditioning_noise_sigma",
                       "members": [{"path": "light", "up_to": up_to}, {"path": "heavy"}], **routes}}
    (root / "card.json").write_text(json.dumps(card), encoding="utf-8")
    return root


def _noisy(sigma: float, seed: int = 0) -> Volume:
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[0:4, 0:32, 0:32]
    clean = 100.0 + 80.0 * ((yy - 16) ** 2 + (xx - 16) ** 2 < 80)
    return Volume((clean + rng.normal(scale=sigma, size=clean.shape)).astype(np.float32))


def test_choose_takes_the_first_member_whose_bound_holds_the_estimate():
    network = RoutedNetwork([tiny_model(), tiny_model(), tiny_model()], [{}, {}, {}], [0.1, 0.2])
    assert [network.choose(v) for v in (0.0, 0.1, 0.15, 0.2, 0.3)] == [0, 0, 1, 1, 2]


def test_calling_the_router_itself_is_refused():
    with pytest.raises(ConfigError, match="routed model"):
        RoutedNetwork([tiny_model(), tiny_model()], [{}, {}], [0.1])(np.zeros(1))


@pytest.mark.parametrize("routes", [
    {"estimate": "other", "members": [{"path": "a", "up_to": 1.0}, {"path": "b"}]},
    {"estimate": "conditioning_noise_sigma", "members": [{"path": "a"}]},
    {"estimate": "conditioning_noise_sigma", "members": [{"path": "a", "up_to": 1.0}, {"path": "b", "up_to": 2.0}]},
    {"estimate": "conditioning_noise_sigma", "members": [{"path": "a", "up_to": 2.0}, {"path": "b", "up_to": 1.0},
                                                         {"path": "c"}]},
    {"estimate": "conditioning_noise_sigma", "members": [{"up_to": 1.0}, {"path": "b"}]},
])
def test_malformed_routes_are_refused_with_the_rule(routes):
    with pytest.raises(WeightsError, match="card routes"):
        route_members({"routes": routes})


def test_load_checks_every_members_sha256(tmp_path):
    root = _routed(tmp_path / "routed")
    loaded = load_model(root)
    assert isinstance(loaded.network, RoutedNetwork) and loaded.name == "tiny_routed"
    assert [card["name"] for card in loaded.network.cards] == ["tiny_light", "tiny_heavy"]
    weights = root / "heavy" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(WeightsError, match="sha256"):
        load_model(root)


def test_member_paths_must_stay_inside_the_model(tmp_path):
    root = _routed(tmp_path / "routed")
    card = json.loads((root / "card.json").read_text())
    card["routes"]["members"][1]["path"] = "../elsewhere"
    (root / "card.json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="inside the model directory"):
        load_model(root)


@pytest.mark.parametrize("up_to, member", [(10.0, 0), (-1.0, 1)])
def test_pipeline_runs_the_chosen_member_and_reports_it(tmp_path, up_to, member):
    loaded = load_model(_routed(tmp_path / "routed", up_to=up_to))
    noisy = _noisy(8.0)
    options = InferenceOptions(tta=2, device="cpu")
    routed = denoise_volume(noisy, loaded, modality="mr", options=options)
    direct = denoise_volume(noisy, load_model(tmp_path / "routed" / ("light", "heavy")[member]), modality="mr",
                            options=options)
    np.testing.assert_array_equal(routed.denoised.array, direct.denoised.array)
    route = routed.report["route"]
    assert route["member"] == ("tiny_light", "tiny_heavy")[member] and route["index"] == member
    assert route["router"] == "tiny_routed" and route["noise_estimate"] > 0 and route["up_to"] == [up_to]
    assert routed.report["model"] == route["member"]


def test_the_estimate_decides_between_light_and_heavy_noise(tmp_path):
    loaded = load_model(_routed(tmp_path / "routed", up_to=0.05))
    light = denoise_volume(_noisy(1.0), loaded, modality="mr", options=InferenceOptions(tta=1, device="cpu"))
    heavy = denoise_volume(_noisy(30.0), loaded, modality="mr", options=InferenceOptions(tta=1, device="cpu"))
    assert light.report["route"]["noise_estimate"] < 0.05 < heavy.report["route"]["noise_estimate"]
    assert (light.report["route"]["member"], heavy.report["route"]["member"]) == ("tiny_light", "tiny_heavy")


def test_the_chosen_members_calibration_is_applied(tmp_path):
    root = _routed(tmp_path / "routed", up_to=-1.0)
    card = json.loads((root / "heavy" / "card.json").read_text())
    card[CARD_KEY] = {"scales": {"tta": {"2": 3.0}}, "target": 0.9}
    (root / "heavy" / "card.json").write_text(json.dumps(card))
    result = denoise_volume(_noisy(8.0), load_model(root), modality="mr", options=InferenceOptions(tta=2, device="cpu"))
    assert result.report["std_scale"] == 3.0


def test_training_from_or_calibrating_a_routed_model_is_refused(tmp_path):
    from MedDenoiseLib.training.calibrate import calibrate_model
    from MedDenoiseLib.training.module import init_state_dict

    root = _routed(tmp_path / "routed")
    with pytest.raises(ConfigError, match="init.*single network"):
        init_state_dict(str(root))
    with pytest.raises(ConfigError, match="model.*single network"):
        calibrate_model(root, levels=[6.0], data=["unused.nrrd"])


def test_benchmark_complexity_lists_each_member():
    from MedDenoiseLib.cli.benchmark import _complexity

    network = RoutedNetwork([tiny_model(), tiny_model(features=4)], [{"name": "a"}, {"name": "b"}], [0.1])
    report = _complexity(network, (4, 16, 16))
    assert [m["member"] for m in report["members"]] == ["a", "b"]
    assert report["complexity"] == report["members"][0]["complexity"]  # 8 features cost more than 4
    assert report["members"][0]["complexity"]["flops"] > report["members"][1]["complexity"]["flops"]


def test_models_table_lists_the_rule_and_each_member(tmp_path):
    from MedDenoiseLib.evaluation.models_table import _shipped_table

    _routed(tmp_path / "root" / "tiny_routed", up_to=0.0421)
    lines = "\n".join(_shipped_table(tmp_path / "root"))
    assert "routed by noise level: `light` up to noise estimate 0.0421, `heavy` above" in lines
    assert "↳ `tiny_light` (`light`)" in lines and "↳ `tiny_heavy` (`heavy`)" in lines


def test_evaluation_refuses_a_case_any_member_was_trained_on(tmp_path):
    from MedDenoiseLib.evaluation.cases import Case, check_leakage
    from MedDenoiseLib.evaluation.methods import ModelMethod

    root = _routed(tmp_path / "routed")
    card = json.loads((root / "heavy" / "card.json").read_text())
    card["training"] = {"config": {"data": {"train": ["../shared/data/mr/brain.nii.gz"]}}}
    (root / "heavy" / "card.json").write_text(json.dumps(card))
    method = ModelMethod(f"model:{root}", "mr", tta=1, device="cpu")
    case = Case(name="brain", path="/elsewhere/brain.nii.gz", clean=np.zeros((1, 4, 4), np.float32), geometry=None)
    with pytest.raises(ConfigError, match="training data"):
        check_leakage([case], {method.name: method.card}, exclude=False)
    assert method.describe()["members"][1]["trained_on"] == ["../shared/data/mr/brain.nii.gz"]


def test_nonfinite_or_boolean_bounds_are_refused():
    for bad in (float("nan"), float("inf"), True):
        with pytest.raises(WeightsError, match="finite, increasing"):
            route_members({"routes": {"estimate": "conditioning_noise_sigma",
                                      "members": [{"path": "a", "up_to": bad}, {"path": "b"}]}})


def test_a_routed_member_is_refused_and_slicer_verifies_every_member(tmp_path):
    from MedDenoiseLib.model_files import read_card, verified_model

    root = _routed(tmp_path / "routed")
    card, directory = read_card(root)
    assert [p.parent.name for p in verified_model(card, directory)] == ["light", "heavy"]
    _routed(root / "heavy" / "inner")
    (root / "heavy" / "card.json").write_text((root / "heavy" / "inner" / "card.json").read_text())
    with pytest.raises(WeightsError, match="ordinary model"):
        verified_model(card, directory)


def test_adapting_a_routed_model_is_refused(tmp_path):
    from MedDenoiseLib.training.self_supervised import adapt

    root = _routed(tmp_path / "routed")
    with pytest.raises(ConfigError, match="model.*single network"):
        adapt(tmp_path / "scan.nrrd", model=str(root), modality="mr", steps=1, out=tmp_path / "adapted")


def test_route_fit_estimate_is_the_one_the_pipeline_routes_on(tmp_path):
    import torch

    from MedDenoiseLib.io import write_volume
    from MedDenoiseLib.noise import simulate_noise
    from MedDenoiseLib.training.route_fit import build_routed_model

    root = _routed(tmp_path / "routed")
    noisy = _noisy(0.0)
    write_volume(noisy, tmp_path / "clean.nrrd")
    card = build_routed_model(root, members=["light", "heavy"], name="r", levels=[6.0],
                              data=[str(tmp_path / "clean.nrrd")], crop=(4, 32, 32), seed=5)
    again = simulate_noise("mr", torch.from_numpy(noisy.array), level=6.0, generator=torch.Generator().manual_seed(5))
    result = denoise_volume(Volume(again.numpy()), load_model(root), modality="mr",
                            options=InferenceOptions(tta=1, device="cpu"))
    assert result.report["route"]["noise_estimate"] == pytest.approx(card["route_fit"]["points"][0]["noise_estimate"])


def test_members_normalised_otherwise_than_the_router_are_refused(tmp_path):
    """The pipeline normalises with the router's card before it picks a member, so they must agree."""
    root = _routed(tmp_path / "routed")
    for member in ("light", "heavy"):
        card_path = root / member / "card.json"
        card_path.write_text(json.dumps({**json.loads(card_path.read_text()), "modality": "xr",
                                         "normalization": "xr_percentile"}))
    router = json.loads((root / "card.json").read_text())
    (root / "card.json").write_text(json.dumps({**router, "modality": "xr"}))  # written without the key
    with pytest.raises(WeightsError, match=r"routed members' normalization must all be the router's card "
                                           r"normalization; got \['default', 'xr_percentile'\].*meddenoise route"):
        load_model(root)
    (root / "card.json").write_text(json.dumps({**router, "modality": "xr", "normalization": "xr_percentile"}))
    assert isinstance(load_model(root).network, RoutedNetwork)
