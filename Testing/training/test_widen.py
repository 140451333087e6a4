"""Net2WiderNet start of a wider slab25d: hand-computed copies, the same function, symmetry breaking, refusals,
and ``build_network`` starting a wider run from a narrower checkpoint."""

from __future__ import annotations

import pytest
import torch

from MedDenoiseLib.errors import ConfigError
from MedDenoiseLib.models import build_model
from MedDenoiseLib.training.config import TrainConfig
from MedDenoiseLib.training.module import build_network
from MedDenoiseLib.training.supervised import train
from MedDenoiseLib.training.widen import draw_copies, widen_features


def narrow_model(features: int = 8) -> torch.nn.Module:
    """A batch-norm slab25d with non-default statistics and a non-zero last layer (so the output is not x)."""
    torch.manual_seed(0)
    model = build_model("slab25d", features=features, depth=4, norm="batch", noise_map=True)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        model.body[-1].weight.normal_(0.0, 0.1)
    return model


def test_one_channel_copied_twice_splits_its_outgoing_weight_in_three():
    model = build_model("slab25d", features=1, depth=3, norm="none")
    state = {k: torch.ones_like(v) for k, v in model.state_dict().items()}
    widened, drawn = widen_features(state, 1, 3, torch.Generator().manual_seed(0), noise=0.0)
    assert drawn == [[0, 0], [0, 0]]  # one source channel: every copy is of channel 0
    assert widened["body.0.weight"].shape == (3, 12, 3, 3) and torch.equal(widened["body.0.bias"], torch.ones(3))
    assert torch.allclose(widened["body.2.weight"], torch.full((3, 3, 3, 3), 1 / 3))  # rows copied, columns / 3
    assert torch.allclose(widened["body.5.weight"], torch.full((4, 3, 3, 3), 1 / 3))  # last layer: columns only


def test_the_wider_network_computes_the_same_in_eval_and_training_mode():
    small = narrow_model()
    state, drawn = widen_features(small.state_dict(), 8, 13, torch.Generator().manual_seed(1), noise=0.0)
    assert [len(copies) for copies in drawn] == [5, 5, 5] and all(0 <= c < 8 for c in sum(drawn, []))
    wide = build_model("slab25d", features=13, depth=4, norm="batch", noise_map=True)
    wide.load_state_dict(state)
    x, level = torch.rand(2, 1, 3, 16, 16), torch.tensor([0.05, 0.1])
    for mode in ("eval", "train"):  # copies share batch statistics, so training mode agrees too
        getattr(small, mode)()
        getattr(wide, mode)()
        torch.testing.assert_close(wide(x, level), small(x, level), atol=1e-5, rtol=0)


def test_noise_lets_the_copies_differ_a_little():
    state = narrow_model().state_dict()
    exact, drawn = widen_features(state, 8, 12, torch.Generator().manual_seed(2), noise=0.0)
    jittered, drawn_again = widen_features(state, 8, 12, torch.Generator().manual_seed(2), noise=0.01)
    assert drawn[0] == drawn_again[0]  # each layer's copies are drawn before its noise
    first = exact["body.0.weight"]
    difference = jittered["body.0.weight"] - first
    assert torch.equal(difference[:8], torch.zeros_like(difference[:8]))  # originals untouched
    assert 0 < float(difference[8:].abs().max()) < 0.1 * float(state["body.0.weight"].std())


def test_narrowing_is_refused():
    with pytest.raises(ConfigError, match=r"model.features must not be smaller than the init model's features; "
                                          r"got 6.*Use 8 or more"):
        draw_copies(8, 6, torch.Generator())


def test_a_wider_run_starts_from_a_narrower_checkpoint(tmp_path, patients, caplog):
    train_files, _ = patients
    raw = {"name": "narrow", "seed": 4, "checkpoint_every": 1,
           "model": {"name": "slab25d", "features": 8, "depth": 3, "norm": "batch"},
           "data": {"train": train_files, "patch_size": (3, 16, 16), "batch_size": 2},
           "noise": {"modality": "mr", "level_range": (5.0, 5.0)},
           "optim": {"steps": 1, "warmup_steps": 1}}
    train(TrainConfig.model_validate(raw), tmp_path / "run")
    narrow = build_network(TrainConfig.model_validate({**raw, "init": str(tmp_path / "run" / "checkpoint")})).eval()
    wider_config = TrainConfig.model_validate({**raw, "model": {**raw["model"], "features": 12},
                                               "init": str(tmp_path / "run" / "checkpoint")})
    with caplog.at_level("INFO"):
        wide = build_network(wider_config).eval()
    assert "widened from 8 to 12 features" in caplog.text
    assert sum(p.numel() for p in wide.parameters()) > sum(p.numel() for p in narrow.parameters())
    x = torch.rand(1, 1, 3, 16, 16)
    torch.testing.assert_close(wide(x), narrow(x), atol=5e-3, rtol=0)  # the same up to the symmetry-breaking noise
