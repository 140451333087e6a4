"""Resumable checkpoints without pickle: safetensors tensors + JSON state (config, step, log)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def save_checkpoint(directory: Path, *, model, optimizer, generator: torch.Generator, step: int,
                    config: dict, history: list[dict]) -> None:
    """Write model, optimizer and generator state plus JSON bookkeeping, atomically (tmp dir + rename)."""
    tmp = directory.with_name(directory.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    tensors, scalars = _flatten_optimizer(optimizer)
    tensors["generator_state"] = generator.get_state()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "state.json").write_text(json.dumps({"step": step, "config": config, "optimizer": scalars,
                                                "history": history}, indent=1))
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    if old.exists():
        for f in old.iterdir():
            f.unlink()
        old.rmdir()


def load_checkpoint(directory: Path, *, model, optimizer, generator: torch.Generator) -> dict:
    """Restore states in place; returns the JSON state (step, config, history)."""
    state = json.loads((directory / "state.json").read_text())
    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    tensors = load_file(str(directory / "optimizer.safetensors"))
    generator.set_state(tensors.pop("generator_state"))
    _restore_optimizer(optimizer, tensors, state["optimizer"])
    return state


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
