"""The training loop shared by every algorithm: checkpointed, resumable exactly, optionally distributed.

One step: refresh noise when due -> sample a batch -> prepare (masks) -> forward (autocast on
CUDA) -> loss -> backward -> clip -> AdamW step -> EMA update. Every ``validation.every`` steps the
model (its EMA when enabled) is scored on the fixed validation patches; the best SSIM weights are
kept in ``run_dir/best`` and ``validation.patience`` validations without gain stop the run. Every
``checkpoint_every`` steps ``run_dir/checkpoint`` is replaced atomically and the logs rewritten.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from ..errors import ConfigError, rule_message
from ..inference.device import resolve_device
from ..models import count_parameters
from .checkpoint import load_checkpoint, save_checkpoint, save_weights
from .config import TrainConfig
from .data import PatchSampler
from .distributed import DistContext, init_distributed, rank_seed
from .logs import RunLog
from .module import TrainingObjective, build_network
from .optim import EMA, amp_setup, build_optimizer, lr_at
from .validation import ValidationSet

logger = logging.getLogger(__name__)

__all__ = ["RunState", "train", "training_device"]

Progress = Callable[[int, int, float], None]


@dataclass
class RunState:
    """Bookkeeping saved in ``state.json`` beside the tensors."""

    step: int = 0
    history: list = field(default_factory=list)
    validation: list = field(default_factory=list)
    best: Optional[dict] = None
    bad_validations: int = 0
    stopped_early: bool = False
    wall_seconds: float = 0.0
    device: str = "cpu"
    world_size: int = 1

    @classmethod
    def from_checkpoint(cls, state: dict) -> "RunState":
        known = {k: state[k] for k in cls.__dataclass_fields__ if k in state}
        return cls(**known)

    def extra(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("step", "history")}


def training_device(name: str, ctx: DistContext) -> torch.device:
    """The device of this process: its LOCAL_RANK GPU under NCCL, else ``resolve_device(name)``."""
    if ctx.backend == "nccl":
        return torch.device("cuda", ctx.local_rank)
    if ctx.enabled:
        return torch.device("cpu")
    return resolve_device(name)


def train(config: TrainConfig, run_dir: str | Path, *, progress: Progress | None = None,
          should_stop: Callable[[], bool] | None = None, resume_from: str | Path | None = None,
          on_step: Callable[[int, torch.nn.Module], None] | None = None) -> Path:
    """Train (or resume) until ``config.optim.steps`` or early stopping; returns the checkpoint directory.

    Parameters
    ----------
    config : TrainConfig
    run_dir : path
        ``checkpoint/``, ``best/``, ``train_log.csv``, ``curves.png`` (and ``tensorboard/``) go here;
        an existing ``checkpoint/`` is resumed. Only rank 0 writes.
    progress : callable (step, total, loss), optional
    should_stop : callable () -> bool, optional
        Polled after every step; True on any rank stops every rank (no checkpoint is forced).
    resume_from : path, optional
        Resume from this checkpoint directory instead of ``run_dir/checkpoint``.
    on_step : callable (step, model), optional
        Called on every rank after each optimiser step with the (unwrapped) network, e.g. for previews.
    """
    run_dir = Path(run_dir)
    ckpt = run_dir / "checkpoint"
    ctx = init_distributed(config.device)
    device = training_device(config.device, ctx)
    if config.threads:
        torch.set_num_threads(config.threads)
    source = Path(resume_from) if resume_from is not None else ckpt
    resuming = (source / "state.json").is_file()
    model = build_network(config, load_init=not resuming).to(device)
    optimizer = build_optimizer(model, config)
    autocast, scaler = amp_setup(device, config.optim.amp)
    ema = EMA(model, config.optim.ema_decay) if config.optim.ema_decay else None
    generator = torch.Generator().manual_seed(rank_seed(config.seed, ctx.rank))
    run = RunState(device=_device_name(device), world_size=ctx.world_size)
    if resuming:
        state = load_checkpoint(source, model=model, optimizer=optimizer, generator=generator, ema=ema,
                                rank=ctx.rank, scaler=scaler)
        _check_same_model(state, config, source)
        run = RunState.from_checkpoint(state)
        run.device, run.world_size = _device_name(device), ctx.world_size
        logger.info("resumed %s at step %d", source, run.step)
    if run.stopped_early or run.step >= config.optim.steps:
        return ckpt
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    network = _wrap(model, ctx, device)
    logger.info("training %s (%s, %d parameters) for %d steps on %s x %d", config.name, config.algorithm,
                count_parameters(model), config.optim.steps, device, ctx.world_size)
    sampler = PatchSampler(config, generator)
    objective = TrainingObjective(config)
    objective.check_model(model)
    validation = ValidationSet(config) if ctx.is_main and config.data.validation else None
    log = RunLog(run_dir, config.logs, enabled=ctx.is_main, title=config.name)
    started, seconds_before = time.perf_counter(), run.wall_seconds
    window: dict[str, list[float]] = {}
    network.train()
    try:
        while run.step < config.optim.steps:
            if run.step % config.data.refresh_every == 0 or not sampler.pairs:
                sampler.refresh(run.step // config.data.refresh_every)
            noisy, clean, noise_level = sampler.batch(run.step)
            batch = objective.prepare(noisy, clean, generator, noise_level).to(device)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(run.step, config)
            with autocast():
                prediction = objective.forward(network, batch.inputs, batch.noise_level)
            loss, parts = objective.loss(prediction, batch)
            optimizer.zero_grad(set_to_none=True)
            _backward_and_step(loss, model, optimizer, scaler, config.optim.grad_clip)
            if ema is not None:
                ema.update(model)
            run.step += 1
            window.setdefault("loss", []).append(loss.item())
            for key, value in parts.items():
                window.setdefault(key, []).append(value)
            stop_early = False
            if config.data.validation and (run.step % config.validation.every == 0
                                           or run.step == config.optim.steps):
                if validation is not None:
                    stop_early = _validate(run, validation, ema.model if ema else model, device, autocast,
                                           config, run_dir, log)
                stop_early = ctx.broadcast_flag(stop_early)
            run.wall_seconds = round(seconds_before + time.perf_counter() - started, 1)
            if run.step % config.checkpoint_every == 0 or run.step == config.optim.steps or stop_early:
                _checkpoint(run, window, config, ckpt, model, optimizer, generator, ema, scaler, ctx, log)
                window = {}
            if progress is not None:
                progress(run.step, config.optim.steps, window["loss"][-1] if window else loss.item())
            if on_step is not None:
                on_step(run.step, model)
            if ctx.any(bool(should_stop is not None and should_stop())) or stop_early:
                break
    finally:
        log.close()
    ctx.barrier()
    return ckpt


def _backward_and_step(loss, model, optimizer, scaler, grad_clip: float) -> None:
    if scaler is None:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


def _validate(run: RunState, validation: ValidationSet, model, device, autocast, config: TrainConfig,
              run_dir: Path, log: RunLog) -> bool:
    """Score, keep the best weights by SSIM, count validations without gain; True means stop early."""
    scores = validation.evaluate(model, device=device, autocast=autocast)
    run.validation.append({"step": run.step, **scores})
    log.scalars(run.step, scores, "validation")
    improved = run.best is None or scores["ssim"] > run.best["ssim"] + config.validation.min_delta
    if improved:
        run.best = {"step": run.step, **scores}
        run.bad_validations = 0
        save_weights(run_dir / "best", model.state_dict(), run.best)
    else:
        run.bad_validations += 1
    logger.info("step %d validation PSNR %.2f dB (noisy %.2f) SSIM %.4f (noisy %.4f)%s", run.step, scores["psnr"],
                scores["noisy_psnr"], scores["ssim"], scores["noisy_ssim"], " best" if improved else "")
    patience = config.validation.patience
    run.stopped_early = bool(patience and run.bad_validations >= patience)
    if run.stopped_early:
        logger.info("early stopping at step %d: %d validations without SSIM gain (best step %d)", run.step,
                    run.bad_validations, run.best["step"])
    return run.stopped_early


def _checkpoint(run: RunState, window: dict, config, ckpt: Path, model, optimizer, generator, ema, scaler,
                ctx: DistContext, log: RunLog) -> None:
    entry = {"step": run.step, "loss": sum(window["loss"]) / len(window["loss"]), "lr": lr_at(run.step - 1, config),
             "seconds": run.wall_seconds}
    parts = {k: sum(v) / len(v) for k, v in window.items() if k != "loss"}
    if len(parts) > 1:  # a single part equals the loss itself
        entry.update(parts)
    run.history.append(entry)
    states = ctx.gather_objects(generator.get_state())
    if ctx.is_main:
        save_checkpoint(ckpt, model=model, optimizer=optimizer, generator=generator, step=run.step,
                        config=config.model_dump(mode="json"), history=run.history, extra=run.extra(), ema=ema,
                        generator_states=states, scaler=scaler)
        log.scalars(run.step, {k: v for k, v in entry.items() if k != "step"}, "train")
        validated = bool(run.validation) and run.validation[-1]["step"] == run.step
        last = run.step == config.optim.steps or run.stopped_early
        log.write(run.history, run.validation, plot=validated or last or len(run.history) % 10 == 0)
        logger.info("step %d loss %.5f", run.step, entry["loss"])


def _wrap(model, ctx: DistContext, device: torch.device):
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _check_same_model(state: dict, config: TrainConfig, source: Path) -> None:
    saved = state.get("config", {}).get("model")
    if saved is not None and saved != config.model:
        raise ConfigError(rule_message("model", f"must equal the model of checkpoint {source}", config.model,
                                       f"Use the checkpoint's model section {saved} or a new run directory."))


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return "cpu"
