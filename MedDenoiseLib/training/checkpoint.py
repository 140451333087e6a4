"""Resumable checkpoints without pickle: safetensors tensors + JSON state (config, step, log).

A checkpoint directory holds ``model.safetensors``, ``optimizer.safetensors`` (optimizer tensors and
the batch generator state of every rank), ``ema.safetensors`` when EMA is on, and ``state.json``
(step, full config, optimizer scalars, loss history and any extra bookkeeping such as validation
history, best score and wall time). Directories are replaced atomically (tmp dir + rename).
Checkpoints written before EMA/validation existed load unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import WeightsError, rule_message

__all__ = ["load_checkpoint", "load_weights", "save_checkpoint", "save_weights"]

_GEN = "generator_state"


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def _replace_dir(tmp: Path, directory: Path) -> None:
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    if old.exists():
        for f in old.iterdir():
            f.unlink()
        old.rmdir()


def save_checkpoint(directory: Path, *, model, optimizer, generator: torch.Generator, step: int,
                    config: dict, history: list[dict], extra: dict | None = None, ema=None,
                    generator_states: list[torch.Tensor] | None = None, scaler=None) -> None:
    """Write model, optimizer and generator state plus JSON bookkeeping, atomically (tmp dir + rename).

    ``generator_states`` (one per rank, rank 0 first) replaces ``generator``'s state in distributed
    runs; ``extra`` entries are stored in ``state.json`` beside step, config and history.
    """
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file(_cpu(model.state_dict()), str(tmp / "model.safetensors"))
    tensors, scalars = _flatten_optimizer(optimizer)
    states = generator_states or [generator.get_state()]
    tensors[_GEN] = states[0]
    for rank, state in enumerate(states[1:], start=1):
        tensors[f"{_GEN}.rank{rank}"] = state
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    if ema is not None:
        save_file(_cpu(ema.state_dict()), str(tmp / "ema.safetensors"))
    payload = {"step": step, "config": config, "optimizer": scalars, "history": history}
    if scaler is not None:
        payload["grad_scaler"] = {k: (float(v) if torch.is_tensor(v) else v) for k, v in scaler.state_dict().items()}
    payload.update(extra or {})
    (tmp / "state.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
    _replace_dir(tmp, directory)


def load_checkpoint(directory: Path, *, model, optimizer, generator: torch.Generator, ema=None, rank: int = 0,
                    scaler=None) -> dict:
    """Restore states in place; returns the JSON state (step, config, history, extras).

    ``rank`` picks that rank's generator state when the checkpoint has one (distributed runs).
    """
    directory = Path(directory)
    if not (directory / "state.json").is_file():
        raise WeightsError(rule_message("checkpoint", "must be a directory holding state.json", str(directory),
                                        "Pass RUN_DIR/checkpoint of an earlier run."))
    state = json.loads((directory / "state.json").read_text(encoding="utf-8"))
    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    tensors = load_file(str(directory / "optimizer.safetensors"))
    generators = {k: tensors.pop(k) for k in [k for k in tensors if k.startswith(_GEN)]}
    key = f"{_GEN}.rank{rank}" if rank else _GEN
    if key in generators:  # a rank missing from the checkpoint keeps its freshly seeded generator
        generator.set_state(generators[key])
    _restore_optimizer(optimizer, tensors, state["optimizer"])
    if ema is not None:
        ema_file = directory / "ema.safetensors"
        ema.load_state_dict(load_file(str(ema_file)) if ema_file.is_file() else model.state_dict())
    if scaler is not None and "grad_scaler" in state:
        scaler.load_state_dict(state["grad_scaler"])
    return state


def save_weights(directory: Path, state_dict: dict[str, torch.Tensor], meta: dict) -> None:
    """Write ``model.safetensors`` + ``meta.json`` atomically (used for the best-so-far weights)."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file(_cpu(state_dict), str(tmp / "model.safetensors"))
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    _replace_dir(tmp, directory)


def load_weights(directory: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The state dict and meta written by :func:`save_weights`."""
    directory = Path(directory)
    return load_file(str(directory / "model.safetensors")), json.loads((directory / "meta.json").read_text(encoding="utf-8"))


def _flatten_optimizer(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict = {"param_groups": sd["param_groups"], "state": {}}
    for index, entry in sd["state"].items():
        scalars["state"][str(index)] = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars["state"][str(index)][key] = value
    return tensors, scalars


def _restore_optimizer(optimizer, tensors: dict[str, torch.Tensor], scalars: dict) -> None:
    state: dict = {int(i): dict(v) for i, v in scalars["state"].items()}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": scalars["param_groups"]})
