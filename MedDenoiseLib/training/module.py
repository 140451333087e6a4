"""What one training step computes, for every algorithm, plus building the network to train.

``TrainingObjective.prepare`` turns a sampled batch into network inputs, targets and (for the
self-supervised algorithms) a blind-spot mask, drawing masks from the run's generator on the CPU;
``TrainingObjective.loss`` scores the prediction. Supervised: the DUAL-NET weighted loss on the
inner slices. ``n2v``/``n2s``: MSE (or L1) on masked voxels of the inner slices, against the
noisy input itself. Either way DUAL-NET's auxiliary terms (``loss.noise_nll``, ``neb_l1``,
``error_nll``, ``consistency``, ``tv``; :mod:`.dualnet_losses`) are added when their weight is > 0;
``TrainingObjective.forward`` then asks the network for all its outputs (``return_all=True``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from safetensors.torch import load_file
from torch import nn

from ..errors import ConfigError, rule_message
from ..models import build_model
from ..models.card import load_model
from ..models.routing import single_network
from ..model_files import shipped_models
from ..normalization import normalization_choice
from .config import TrainConfig
from .dualnet_losses import AUXILIARY_TERMS, AuxiliaryLoss
from .losses import DenoisingLoss, masked_loss
from .n2v_masking import n2s_mask, n2v_mask
from .widen import widen_features

logger = logging.getLogger(__name__)

__all__ = ["CITATIONS", "Batch", "TrainingObjective", "build_network", "init_state_dict", "noise_weights",
           "widen_input_channels"]

#: References per algorithm, copied into exported model cards.
CITATIONS = {
    "supervised": ["Zhao et al., Loss functions for image restoration with neural networks, IEEE TCI 2017",
                   "Wang et al., Image quality assessment: from error visibility to structural similarity, "
                   "IEEE TIP 2004"],
    "n2v": ["Krull, Buchholz and Jug, Noise2Void - learning denoising from single noisy images, CVPR 2019",
            "Broaddus et al., Removing structured noise with self-supervised blind-spot networks, ISBI 2020"],
    "n2s": ["Batson and Royer, Noise2Self: blind denoising by self-supervision, ICML 2019"],
}


@dataclass
class Batch:
    """Network inputs, loss targets and (self-supervised) the boolean blind-spot mask."""

    inputs: torch.Tensor
    target: torch.Tensor
    mask: Optional[torch.Tensor] = None
    noise_level: Optional[torch.Tensor] = None  # (B,) for models with a noise-level input

    def to(self, device: torch.device) -> "Batch":
        if device.type == "cpu":
            return self
        move = (lambda t: None if t is None else t.to(device, non_blocking=True))
        return Batch(move(self.inputs), move(self.target), move(self.mask), move(self.noise_level))


class TrainingObjective:
    """Prepares batches and computes the loss of ``config.algorithm``."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.margin = config.data.loss_margin
        loss = config.loss
        self.supervised_loss = DenoisingLoss(l1=loss.l1, ssim=loss.ssim, edge=loss.edge, ssim_sigma=loss.ssim_sigma,
                                            mse=loss.mse)
        self.auxiliary = AuxiliaryLoss({k: getattr(loss, k) for k in AUXILIARY_TERMS})

    def check_model(self, model: nn.Module) -> None:
        """ConfigError unless ``model`` provides the outputs the auxiliary terms need."""
        if self.auxiliary.needs_model_outputs and not getattr(model, "has_own_uncertainty", False):
            raise ConfigError(rule_message("loss.noise_nll / neb_l1 / error_nll / consistency",
                                           "need a model with a noise-estimation branch", type(model).__name__,
                                           "Use model: {name: dualnet, neb: true} or set these weights to 0."))

    def forward(self, network: nn.Module, inputs: torch.Tensor, noise_level: Optional[torch.Tensor] = None):
        """The network's prediction: a tensor, or DUAL-NET's dict of outputs when auxiliary terms need it.

        ``noise_level`` ((B,), models with ``model.noise_map``) is passed as the network's second argument.
        """
        if self.auxiliary.needs_model_outputs:
            if noise_level is not None:
                raise ConfigError(rule_message("model.noise_map", "cannot be combined with DUAL-NET's auxiliary "
                                               "loss terms", True, "Drop noise_map, or set those weights to 0."))
            return network(inputs, return_all=True)
        if noise_level is not None:
            return network(inputs, noise_level)
        return network(inputs)

    def prepare(self, noisy: torch.Tensor, clean: Optional[torch.Tensor], generator: torch.Generator,
                noise_level: Optional[torch.Tensor] = None) -> Batch:
        """Inputs/targets for one step; masks are drawn from ``generator`` (CPU)."""
        algorithm = self.config.algorithm
        if algorithm == "supervised":
            if clean is None:
                raise ConfigError(rule_message("algorithm", "'supervised' needs clean volumes with simulated noise",
                                               algorithm, "Set noise.level_range, or use algorithm: n2v."))
            return Batch(noisy, clean, noise_level=noise_level)
        masking = self.config.masking
        if algorithm == "n2v":
            masked, mask = n2v_mask(noisy, fraction=masking.fraction, radius=masking.radius,
                                    struct_axis=masking.struct_axis, struct_span=masking.struct_span,
                                    generator=generator)
        else:
            masked, mask = n2s_mask(noisy, grid=masking.grid, generator=generator)
        return Batch(masked, noisy, mask, noise_level)

    def loss(self, prediction, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """(loss, detached parts) on the inner slices (``data.loss_margin`` skipped at each depth end).

        ``prediction`` is the denoised tensor or the dict of :meth:`forward` (its ``denoised`` entry is scored).
        """
        outputs = prediction if isinstance(prediction, dict) else {"denoised": prediction}
        m, depth = self.margin, outputs["denoised"].shape[2]
        inner = slice(m, depth - m)
        outputs = {k: (v[:, :, inner].float() if v is not None else None) for k, v in outputs.items()}
        denoised, target = outputs["denoised"], batch.target[:, :, inner]
        mask = batch.mask[:, :, inner] if batch.mask is not None else None
        if mask is None:
            if self.config.loss.noise_normalized:
                weights = noise_weights(batch.inputs[:, :, inner].float(), target)
                denoised, target = denoised * weights, target * weights
            value, parts = self.supervised_loss(denoised, target)
        else:
            value = masked_loss(denoised, target, mask, kind=self.config.masking.loss)
            parts = {"masked": float(value.detach())}
        if not self.auxiliary.active:
            return value, parts
        supervised = mask is None
        noisy = batch.inputs[:, :, inner] if supervised else target
        extra, extra_parts = self.auxiliary(outputs, noisy, target if supervised else None, mask)
        return value + extra, {**parts, **extra_parts}


def noise_weights(noisy: torch.Tensor, clean: torch.Tensor, *, floor: float = 1e-4) -> torch.Tensor:
    """(B, 1, 1, 1, 1) weights mean(std) / std of each patch's noise, std(noisy - clean) (no gradient).

    Scaling prediction and target by them turns the scale-free L1 and edge terms into losses
    relative to each patch's noise. The batch's mean weight is 1 when every patch has the same
    noise and grows with their spread (mean(std) * mean(1/std) >= 1: about 1.3-1.5 for MR levels
    1-12 %); Adam's steps do not depend on that scale. ``floor`` (in the normalised intensities
    training uses, data range about 1) keeps noise-free patches finite.
    """
    with torch.no_grad():
        std = (noisy - clean).flatten(1).std(dim=1).clamp_min(floor)
        return (std.mean() / std).view(-1, 1, 1, 1, 1)


def build_network(config: TrainConfig, *, load_init: bool = True) -> nn.Module:
    """The network of ``config.model`` with weights seeded from ``config.seed`` (torch's RNG forked, not
    touched), then overwritten by ``config.init`` when given and ``load_init``."""
    arch = dict(config.model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(arch.pop("name"), **arch)
    if config.init and load_init:
        state = init_state_dict(config.init)
        recorded, normalization = _init_record(config.init)  # read once: architecture and normalisation
        if getattr(model, "conditions_on_noise_level", False) and _same_but(recorded, config.model, "noise_map"):
            state = widen_input_channels(state, model.state_dict(), config.init)
        elif config.model.get("name") == "slab25d" and _same_but(recorded, config.model, "features"):
            state = _wider(state, config)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ConfigError(rule_message("init", "must hold weights of the architecture in config.model",
                                           config.init, "Copy the model section of its card (only model.noise_map may be "
                                           f"added to it, or slab25d features raised) ({str(exc)[:200]}).")) \
                from exc
        if normalization != config.data.normalization:  # allowed (a fine-tune may change the rule on purpose)
            logger.warning("init %s was trained with data.normalization %r; this run uses %r, so its inputs "
                           "start at another scale than the weights saw", config.init, normalization,
                           config.data.normalization)
        logger.info("initialised %s from %s", config.name, config.init)
    return model


def _same_but(recorded: dict, model: dict, key: str) -> bool:
    """Whether the ``recorded`` architecture (the init's) is ``model``'s with only ``key`` changed
    (``noise_map``, ``features``)."""
    drop = (lambda arch: {k: v for k, v in arch.items() if k != key})
    return drop(recorded) == drop(dict(model)) and recorded.get(key) != model.get(key)


def _wider(state: dict[str, torch.Tensor], config: TrainConfig) -> dict[str, torch.Tensor]:
    """``state`` widened to ``config.model.features`` (:mod:`.widen`), copies drawn from a generator seeded by
    ``config.seed``; the copies are logged, so the draw can be checked."""
    old, new = int(state["body.0.weight"].shape[0]), int(config.model["features"])  # the init's width, as stored
    state, drawn = widen_features(state, old, new, torch.Generator().manual_seed(config.seed))
    logger.info("%s: widened from %d to %d features; copied channels per layer: %s", config.init, old, new, drawn)
    return state


def widen_input_channels(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                         init: str) -> dict[str, torch.Tensor]:
    """``state`` with convolution weights that lack the last input channel of ``target`` padded with zeros.

    This starts a noise-level-conditioned model (``model.noise_map``: one more input channel, the last)
    from the weights of the same architecture without it (``build_network`` checks the recorded
    architecture first): the new channel's weights start at 0, so the network starts as exactly the
    blind model and learns how to use the level. Other mismatches are left for ``load_state_dict``.
    """
    widened = dict(state)
    for key, weight in state.items():
        wanted = target.get(key)
        if (wanted is None or weight.ndim < 3 or wanted.shape[1] != weight.shape[1] + 1
                or wanted.shape[:1] + wanted.shape[2:] != weight.shape[:1] + weight.shape[2:]):
            continue
        padded = torch.zeros(wanted.shape, dtype=weight.dtype)
        padded[:, :weight.shape[1]] = weight
        widened[key] = padded
        logger.info("%s: %s starts from %s with one new input channel at zero weight", init, key, tuple(weight.shape))
    return widened


def init_state_dict(init: str) -> dict[str, torch.Tensor]:
    """Weights to start from: a run's checkpoint directory (EMA weights when saved), a model directory
    (sha256-checked by ``load_model``) or a shipped model name."""
    path = Path(init).expanduser()
    if (path / "state.json").is_file() and (path / "model.safetensors").is_file():
        ema = path / "ema.safetensors"
        return load_file(str(ema if ema.is_file() else path / "model.safetensors"))
    model_dir = path if (path / "card.json").is_file() else shipped_models().get(init)
    if model_dir is not None:
        loaded = load_model(model_dir)
        return single_network(loaded.network, loaded.name, "init").state_dict()
    shipped = shipped_models()
    raise ConfigError(rule_message("init", "must be a checkpoint directory, a model directory or a shipped model",
                                   init, f"Shipped models: {sorted(shipped)}."))


def _init_record(init: str) -> tuple[dict, str]:
    """(model section, normalization choice) recorded with ``init``: a checkpoint's config or a model card."""
    path = Path(init).expanduser()
    if (path / "state.json").is_file():
        config = json.loads((path / "state.json").read_text(encoding="utf-8"))["config"]
        return dict(config["model"]), config.get("data", {}).get("normalization", "default")
    shipped = shipped_models()
    card_dir = path if (path / "card.json").is_file() else shipped.get(init)
    if card_dir is None:
        raise ConfigError(rule_message("init", "must be a checkpoint directory, a model directory or a shipped "
                                       "model", init, f"Shipped models: {sorted(shipped)}."))
    card = json.loads((Path(card_dir) / "card.json").read_text(encoding="utf-8"))
    return dict(card["architecture"]), normalization_choice(card)


def architecture_of(init: str) -> dict:
    """The model section (``{"name": ..., **kwargs}``) recorded with ``init`` (card or checkpoint)."""
    return _init_record(init)[0]

