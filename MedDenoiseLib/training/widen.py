"""Start a wider ``slab25d`` from a narrower one's weights, computing the same function (Net2WiderNet).

Each new hidden channel copies a randomly drawn existing one: its incoming weights (plus a little noise, so
the copies can learn apart), bias and batch-norm parameters and statistics; the next convolution divides
every copy's outgoing weights by the number of copies of that channel, so their sum is what the original
contributed. Without noise the wider network's output equals the narrower one's, in training mode too:
copies have the same activations, hence the same batch statistics.

Reference: Chen, Goodfellow, Shlens, "Net2Net: accelerating learning via knowledge transfer", ICLR 2016.
"""

from __future__ import annotations

import re

import torch

from ..errors import ConfigError, rule_message

__all__ = ["draw_copies", "widen_features"]

_CONV = re.compile(r"^body\.(\d+)\.weight$")


def draw_copies(old: int, new: int, generator: torch.Generator) -> list[int]:
    """The source channel of each of the ``new - old`` added channels, drawn uniformly from ``range(old)``."""
    if new < old:
        raise ConfigError(rule_message("model.features", "must not be smaller than the init model's features",
                                       new, f"Use {old} or more, or start from scratch (no init)."))
    return torch.randint(0, old, (new - old,), generator=generator).tolist()


def _conv_indices(state: dict[str, torch.Tensor]) -> list[int]:
    return sorted(int(m.group(1)) for key in state if (m := _CONV.match(key)) and state[key].ndim == 4)


def _grow_rows(tensor: torch.Tensor, copies: list[int]) -> torch.Tensor:
    return torch.cat([tensor, tensor[copies]], dim=0)


def widen_features(state: dict[str, torch.Tensor], old: int, new: int, generator: torch.Generator,
                   noise: float = 0.01) -> tuple[dict[str, torch.Tensor], list[list[int]]]:
    """``state`` of a ``slab25d`` with ``old`` hidden features widened to ``new``; also the copies drawn per layer.

    ``noise``: std of the Gaussian added to the copied incoming weights, relative to each layer's weight std
    (0 keeps the function exactly). Draws come from ``generator`` layer by layer: that layer's copies, then its
    noise (so with noise the later layers' copies differ from those drawn without it).
    """
    widened = dict(state)
    convs = _conv_indices(state)
    drawn = []
    for position, index in enumerate(convs[:-1]):  # every conv but the last produces hidden features
        copies = draw_copies(old, new, generator)
        drawn.append(copies)
        weight = widened[f"body.{index}.weight"]  # input columns already widened by the previous layer's turn
        grown = _grow_rows(weight, copies)
        if noise > 0:
            jitter = torch.randn(grown[old:].shape, generator=generator, dtype=weight.dtype)
            grown[old:] += noise * float(weight.std()) * jitter
        widened[f"body.{index}.weight"] = grown
        for key in (f"body.{index}.bias", *(f"body.{index + 1}.{name}" for name in  # the batch norm after it
                                            ("weight", "bias", "running_mean", "running_var"))):
            if key in state and state[key].ndim == 1:
                widened[key] = _grow_rows(state[key], copies)
        following = f"body.{convs[position + 1]}.weight"
        counts = 1 + torch.bincount(torch.tensor(copies, dtype=torch.long), minlength=old).to(weight.dtype)
        outgoing = widened[following] / counts.view(1, -1, 1, 1)
        widened[following] = torch.cat([outgoing, outgoing[:, copies]], dim=1)
    return widened, drawn
