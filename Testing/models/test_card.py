"""Weights + model card: round trip, sha256 check, shipped-model resolution without downloads."""

import json

import pytest
import torch

from MedDenoiseLib.errors import WeightsError
from MedDenoiseLib.testing import tiny_model
from MedDenoiseLib.models.card import load_model, save_model
from MedDenoiseLib.models.resolve import MODELS_ENV, resolve_model


def tiny():
    return tiny_model(seed=3)  # non-zero last layer: an unloaded network would answer differently


class TestCard:
    def test_round_trip_gives_identical_outputs(self, tmp_path):
        model = tiny().eval()
        save_model(model, tmp_path / "m", {"name": "tiny", "modality": "mr"})
        loaded = load_model(tmp_path / "m")
        card = json.loads((tmp_path / "m" / "card.json").read_text(encoding="utf-8"))
        assert card["architecture"]["name"] == "slab25d" and card["architecture"]["features"] == 8
        assert card["card_version"] == 1 and card["library_version"]
        assert len(card["sha256"]) == 64 and card["parameters"] == sum(p.numel() for p in model.parameters())
        x = torch.rand(1, 1, 3, 16, 16)
        torch.testing.assert_close(loaded.network(x), model(x))
        assert not torch.equal(model(x), x)  # the comparison above can fail
        torch.testing.assert_close(loaded.network.state_dict(), model.state_dict())
        assert loaded.name == "tiny" and not loaded.network.training

    def test_tampered_weights_are_refused(self, tmp_path):
        directory = save_model(tiny(), tmp_path / "m", {"name": "tiny"})
        weights = directory / "model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0xFF
        weights.write_bytes(bytes(data))
        with pytest.raises(WeightsError, match="sha256 of .* must equal the card's"):
            load_model(directory)

    def test_card_that_does_not_match_its_weights(self, tmp_path):
        directory = save_model(tiny(), tmp_path / "m", {"name": "tiny"})
        card = json.loads((directory / "card.json").read_text(encoding="utf-8"))
        card["architecture"]["features"] = 16
        (directory / "card.json").write_text(json.dumps(card), encoding="utf-8")
        with pytest.raises(WeightsError, match="weights must match the card's architecture"):
            load_model(directory)
        del card["architecture"]
        (directory / "card.json").write_text(json.dumps(card), encoding="utf-8")
        with pytest.raises(WeightsError, match="card architecture must be an object"):
            load_model(directory)

    def test_missing_card(self, tmp_path):
        with pytest.raises(WeightsError, match="must be a directory holding card.json"):
            load_model(tmp_path)


class TestResolve:
    def test_shipped_name_default_and_unknown(self, tmp_path, monkeypatch):
        save_model(tiny(), tmp_path / "mr_tiny", {"name": "mr_tiny", "modality": "mr"})
        (tmp_path / "index.json").write_text(json.dumps({"defaults": {"mr": "mr_tiny"}}), encoding="utf-8")
        monkeypatch.setenv(MODELS_ENV, str(tmp_path))
        assert resolve_model(None, "mr").name == "mr_tiny"
        assert resolve_model("mr_tiny", "ct").name == "mr_tiny"
        assert resolve_model(tmp_path / "mr_tiny", "mr").name == "mr_tiny"
        with pytest.raises(WeightsError, match="modality needs a shipped default model"):
            resolve_model(None, "ct")
        with pytest.raises(WeightsError, match="must be a shipped model name or an existing model directory"):
            resolve_model("nope", "mr")
