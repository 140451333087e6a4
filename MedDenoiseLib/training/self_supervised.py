"""Self-supervised fine-tuning: two-stage training and "adapt this model to this scan".

Stage 1 trains on simulated noise with clean references; stage 2 fine-tunes the same network with
Noise2Void/Noise2Self on noisy-only scans, whose real noise may differ from the simulation.
:func:`adapt` is stage 2 on a single scan, as the Slicer "Adapt to this scan" button runs it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional

from ..errors import CancelledError, rule_message
from ..io import read_volume
from ..model_files import sha256_of
from ..models.resolve import resolve_model
from ..models.routing import single_network
from ..normalization import normalization_choice
from .config import TrainConfig
from .export import export
from .factories import create_n2v_config, default_patch, with_overrides
from .trainer import train

logger = logging.getLogger(__name__)

__all__ = ["adapt", "adapt_patch", "train_two_stage"]


def train_two_stage(supervised: TrainConfig, self_supervised: TrainConfig, run_dir: str | Path, *,
                    progress: Optional[Callable[[int, int, float], None]] = None,
                    should_stop: Optional[Callable[[], bool]] = None) -> Path:
    """Supervised pre-training (``run_dir/stage1``), then self-supervised fine-tuning (``run_dir/stage2``).

    Stage 1 is exported to ``run_dir/stage1/model`` (best validation weights when it validated) and
    becomes stage 2's ``init``; stage 2 takes stage 1's model section. Returns stage 2's checkpoint
    directory; export it with ``export(config2, run_dir / "stage2", out)``. Both stages resume.
    """
    run_dir = Path(run_dir)
    train(supervised, run_dir / "stage1", progress=progress, should_stop=should_stop)
    if should_stop is not None and should_stop():
        return run_dir / "stage1" / "checkpoint"
    stage1_model = export(supervised, run_dir / "stage1", run_dir / "stage1" / "model")
    stage2 = with_overrides(self_supervised, {"init": str(stage1_model)})
    stage2 = stage2.model_copy(update={"model": dict(supervised.model)})
    stage2 = TrainConfig.model_validate(stage2.model_dump(mode="json"))
    return train(stage2, run_dir / "stage2", progress=progress, should_stop=should_stop)


def adapt_patch(scan_shape: tuple[int, int, int], card: dict) -> tuple[tuple[int, int, int], int]:
    """(patch_size, loss_margin) for fine-tuning on one scan: the model's training patch (or default),
    cut to the scan so no voxel is repeated inside a patch (a repeated voxel would leak past the blind spot)."""
    data = card.get("training", {}).get("config", {}).get("data", {})
    name = card.get("architecture", {}).get("name", "slab25d")
    patch, margin = default_patch(name)
    patch = tuple(data.get("patch_size", patch))
    margin = int(data.get("loss_margin", margin))
    size = tuple(min(int(p), int(n)) for p, n in zip(patch, scan_shape))
    return size, min(margin, (size[0] - 1) // 2)


def adapt(scan: str | Path, model: str | Path, *, steps: int, out: str | Path, modality: Optional[str] = None,
          algorithm: str = "n2v", fraction: float = 0.2, struct_axis: Optional[str] = None, struct_span: int = 0,
          lr: float = 1e-4, batch_size: int = 4, patch_size: Optional[tuple[int, int, int]] = None,
          seed: int = 0, device: str = "auto", run_dir: str | Path | None = None,
          progress: Optional[Callable[[int, int, float], None]] = None,
          should_stop: Optional[Callable[[], bool]] = None) -> Path:
    """Fine-tune ``model`` self-supervised on one noisy ``scan`` and export it to ``out``.

    Parameters
    ----------
    scan : path
        The noisy volume (any format ``read_volume`` reads); it is its own training data, no clean
        reference is needed.
    model : str or path
        Shipped model name or model directory.
    steps : int
        Fine-tuning steps (a few hundred take minutes on a CPU with the shipped models).
    out : path
        Model directory to write (weights + card, with ``adapted_from`` naming model and scan).
    modality : str, optional
        Default: the model card's.
    algorithm, fraction, struct_axis, struct_span : masking (N2V with 20 % masked voxels by default, the
        DUAL-NET fine-tuning share; ``n2s`` for Noise2Self; a struct line for correlated noise).
    lr, batch_size, patch_size, seed, device : optimisation (patch default: :func:`adapt_patch`).
    run_dir : path, optional
        Keep checkpoints and logs here (default: a temporary folder removed afterwards).
    progress, should_stop : callbacks as in :func:`~MedDenoiseLib.training.trainer.train`.

    Returns
    -------
    Path
        ``out``.
    """
    loaded = resolve_model(model, modality or "mr")
    single_network(loaded.network, loaded.name, "model")
    card = loaded.card
    modality = modality or card.get("modality", "mr")
    shape = read_volume(scan).array.shape
    default_size, margin = adapt_patch(shape, card)
    size = tuple(patch_size) if patch_size is not None else default_size
    if patch_size is not None:
        margin = min(margin, (size[0] - 1) // 2)
    arch = dict(card["architecture"])
    name = arch.pop("name")
    config = create_n2v_config(f"{card.get('name', loaded.path.name)}_adapted", modality, [str(scan)],
                               algorithm=algorithm, init=str(loaded.path), model=name, model_options=arch,
                               fraction=fraction, struct_axis=struct_axis, struct_span=struct_span, patch_size=size,
                               batch_size=batch_size, steps=steps, lr=lr, warmup_steps=max(1, steps // 10),
                               seed=seed, device=device)
    config = with_overrides(config, {"data.loss_margin": margin, "logs.tensorboard": False,
                                     "data.normalization": normalization_choice(card)})  # as the model was trained
    temporary = run_dir is None
    work = Path(tempfile.mkdtemp(prefix="meddenoise_adapt_")) if temporary else Path(run_dir)
    try:
        logger.info("adapting %s to %s for %d steps (%s, %.1f %% masked)", loaded.name, scan, steps, algorithm,
                    100 * fraction)
        train(config, work, progress=progress, should_stop=should_stop)
        if should_stop is not None and should_stop():
            raise CancelledError(rule_message("adapt", "was cancelled before the last step", str(scan),
                                              "Run it again; nothing was exported."))
        extra = {"adapted_from": {"model": card.get("name"), "model_sha256": card.get("sha256"), "scan": str(scan),
                                  "scan_sha256": sha256_of(Path(scan)) if Path(scan).is_file() else None}}
        return export(config, work, out, extra_card=extra, weights="last")
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)
