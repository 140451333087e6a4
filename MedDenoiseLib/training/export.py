"""Export a run as a model directory (weights + card) that ``meddenoise denoise --model DIR`` loads.

The card records the architecture (filled in by ``save_model``), modality, noise config, algorithm,
steps, device, world size, wall time, the loss and validation histories, the validation metrics
of the exported weights next to the noisy-input baseline, the data provenance (source package and
licence of every training/validation file listed in the data manifest) and the citations.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

from safetensors.torch import load_file

from .. import __version__
from ..errors import ConfigError, MedDenoiseError, WeightsError, rule_message
from ..models import build_model
from ..models.card import save_model
from .batchnorm import batchnorm_layers, recompute_on_training_data
from .checkpoint import load_weights
from .config import TrainConfig
from .module import CITATIONS
from .provenance import data_provenance, find_manifest

logger = logging.getLogger(__name__)

__all__ = ["export", "select_weights"]


def select_weights(run_dir: Path, which: str = "auto") -> tuple[dict, str, dict | None]:
    """(state dict, description, validation scores) of the weights to export.

    ``which``: ``"best"`` (best validation SSIM, ``run_dir/best``), ``"last"`` (latest checkpoint, its EMA
    when saved) or ``"auto"`` (best when the run validated, else last).
    """
    best, ckpt = run_dir / "best", run_dir / "checkpoint"
    if which in ("best", "auto") and (best / "model.safetensors").is_file():
        state, meta = load_weights(best)
        return state, f"best validation SSIM (step {meta['step']})", meta
    if which == "best":
        raise WeightsError(rule_message("weights", "'best' needs a run with validation", str(best),
                                        "Add data.validation volumes, or export weights='last'."))
    if not (ckpt / "state.json").is_file():
        raise WeightsError(rule_message("run_dir", "must hold checkpoint/state.json", str(run_dir),
                                        "Train first: meddenoise train --config C.yaml --run-dir RUN."))
    ema = ckpt / "ema.safetensors"
    chosen = ema if ema.is_file() else ckpt / "model.safetensors"
    validation = json.loads((ckpt / "state.json").read_text(encoding="utf-8")).get("validation") or [None]
    return load_file(str(chosen)), "last checkpoint" + (" (EMA)" if ema.is_file() else ""), validation[-1]


def _reestimate_batchnorm(model, config: TrainConfig, run_dir: Path) -> str:
    """Re-estimate the batch-norm statistics of EMA weights (``optim.ema_bn_batches``); the card's note.

    The weights :func:`select_weights` chose are the EMA whenever the run kept one: ``best/`` holds it, and
    ``last`` takes ``ema.safetensors``.
    """
    count = config.optim.ema_bn_batches
    kept_ema = (run_dir / "checkpoint" / "ema.safetensors").is_file()
    if not (kept_ema and count and batchnorm_layers(model)):
        return ""
    try:
        done = recompute_on_training_data(model, config, count)
    except (OSError, MedDenoiseError) as error:
        raise ConfigError(rule_message("optim.ema_bn_batches", "needs the run's training data (data.train) at export",
                                       count, "Make data.train readable from here, or set "
                                       f"optim.ema_bn_batches: 0 to keep the last step's statistics ({error})."))
    logger.info("re-estimated the batch-norm statistics of the averaged weights on %d training batches", done)
    return f", batch-norm statistics re-estimated on {done} training batches"


def export(config: TrainConfig, run_dir: str | Path, out_dir: str | Path, *, extra_card: dict | None = None,
           weights: Literal["auto", "best", "last"] = "auto") -> Path:
    """Export a run's weights (see :func:`select_weights`) as a model directory with its card."""
    run_dir = Path(run_dir)
    state, description, scores = select_weights(run_dir, weights)
    ckpt_state = json.loads((run_dir / "checkpoint" / "state.json").read_text(encoding="utf-8"))
    arch = dict(config.model)
    model = build_model(arch.pop("name"), **arch)
    model.load_state_dict(state)
    reestimated = _reestimate_batchnorm(model, config, run_dir)
    description += reestimated
    manifest = find_manifest(config.data.train + config.data.validation, config.data.manifest)
    card = {
        "name": config.name,
        "modality": config.noise.modality,
        "normalization": config.data.normalization,
        "noise": config.noise.model_dump(mode="json"),
        "training": {
            "algorithm": config.algorithm,
            "steps": ckpt_state["step"],
            "weights": description,
            "init": config.init,
            "config": config.model_dump(mode="json"),
            "history": ckpt_state["history"],
            "validation_history": ckpt_state.get("validation", []),
            "stopped_early": ckpt_state.get("stopped_early", False),
            "device": ckpt_state.get("device", "cpu"),
            "world_size": ckpt_state.get("world_size", 1),
            "wall_seconds": ckpt_state.get("wall_seconds"),
            "library_version": __version__,
        },
        "metrics": {"validation": scores, "units": "normalised intensities, data_range 1; inner slices"
                    + ("; scored with the last step's batch-norm statistics, before re-estimation"
                       if reestimated else "")},
        "data": {
            "manifest": str(manifest) if manifest else None,
            "train": data_provenance(config.data.train, manifest=manifest),
            "validation": data_provenance(config.data.validation, manifest=manifest),
        },
        "citations": CITATIONS[config.algorithm],
    }
    card.update(extra_card or {})
    directory = save_model(model.eval(), out_dir, card)
    logger.info("exported %s (%s) to %s", config.name, description, directory)
    return directory
