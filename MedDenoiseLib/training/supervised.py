"""Supervised training on simulated physics noise, checkpointed and resumable across sessions."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..models import build_model, count_parameters
from ..models.card import save_model
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import PatchSampler

logger = logging.getLogger(__name__)


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up then cosine decay to 2 % of the peak rate."""
    o = config.optim
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    progress = (step - o.warmup_steps) / max(1, o.steps - o.warmup_steps)
    return o.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _seeded_model(config: TrainConfig):
    """Build the network with weights initialised from ``config.seed`` (torch's RNG forked, not touched)."""
    arch = dict(config.model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build_model(arch.pop("name"), **arch)


def train(config: TrainConfig, run_dir: str | Path, *, progress=None, should_stop=None) -> Path:
    """Train (or resume) until ``config.optim.steps``; returns the checkpoint directory."""
    run_dir = Path(run_dir)
    ckpt = run_dir / "checkpoint"
    if config.threads:
        torch.set_num_threads(config.threads)
    model = _seeded_model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    step, history = 0, []
    if (ckpt / "state.json").is_file():
        state = load_checkpoint(ckpt, model=model, optimizer=optimizer, generator=generator)
        step, history = state["step"], state["history"]
        logger.info("resumed %s at step %d", ckpt, step)
    logger.info("training %s (%d parameters) for %d steps", config.name, count_parameters(model), config.optim.steps)
    sampler = PatchSampler(config, generator)
    m = config.data.loss_margin
    started, window_loss = time.perf_counter(), []
    model.train()
    while step < config.optim.steps:
        if step % config.data.refresh_every == 0 or not sampler.pairs:
            sampler.refresh(step // config.data.refresh_every)
        noisy, clean = sampler.batch()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        predicted = model(noisy)
        depth = noisy.shape[2]
        loss = F.l1_loss(predicted[:, :, m:depth - m], clean[:, :, m:depth - m])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
        optimizer.step()
        step += 1
        window_loss.append(float(loss.detach()))
        if step % config.checkpoint_every == 0 or step == config.optim.steps:
            history.append({"step": step, "loss": sum(window_loss) / len(window_loss), "lr": lr_at(step - 1, config),
                            "seconds": round(time.perf_counter() - started, 1)})
            window_loss = []
            save_checkpoint(ckpt, model=model, optimizer=optimizer, generator=generator, step=step,
                            config=config.model_dump(mode="json"), history=history)
            logger.info("step %d loss %.5f", step, history[-1]["loss"])
        if progress is not None:
            progress(step, config.optim.steps, window_loss[-1] if window_loss else float(loss.detach()))
        if should_stop is not None and should_stop():
            break
    return ckpt


def export(config: TrainConfig, run_dir: str | Path, out_dir: str | Path, *, extra_card: dict | None = None) -> Path:
    """Export the latest checkpoint as a model directory (weights + card)."""
    ckpt = Path(run_dir) / "checkpoint"
    arch = dict(config.model)
    model = build_model(arch.pop("name"), **arch)
    optimizer = torch.optim.AdamW(model.parameters())
    state = load_checkpoint(ckpt, model=model, optimizer=optimizer, generator=torch.Generator())
    card = {"name": config.name, "modality": config.noise.modality,
            "noise": config.noise.model_dump(mode="json"), "training": {
                "steps": state["step"], "config": config.model_dump(mode="json"), "history": state["history"],
                "device": "cpu"}}
    card.update(extra_card or {})
    return save_model(model.eval(), out_dir, card)
