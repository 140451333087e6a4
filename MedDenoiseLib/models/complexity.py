"""Model size and cost: trainable parameters and floating-point operations of one forward pass.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on a copy of the network on the
``meta`` device (no memory, no arithmetic): every convolution, transposed convolution, matrix
product and scaled-dot-product attention is counted as 2 FLOPs per multiply-accumulate (MAC).
Bias additions, activations, normalisation, pooling and element-wise operations are not counted, so
``flops = 2 x MACs`` of the layers that dominate the cost, the usual convention of papers that report
"FLOPs" for CNNs as multiply-adds counted twice.
"""

from __future__ import annotations

import copy
import logging
from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop

from ..errors import ConfigError, rule_message
from .registry import count_parameters

logger = logging.getLogger(__name__)

__all__ = ["FLOP_CONVENTION", "PATCH_DHW", "count_flops", "model_complexity"]

#: The patch the product reports its cost for (D, H, W), the default inference patch.
PATCH_DHW = (32, 160, 160)
FLOP_CONVENTION = ("FLOPs = 2 x multiply-accumulates of convolutions, transposed convolutions, matrix products "
                   "and attention (torch.utils.flop_counter); biases, activations, norms and element-wise "
                   "operations not counted")

_aten = torch.ops.aten


def _cpu_flash_attention_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    # PyTorch's table has the CUDA kernels only; the CPU kernel takes the same (B, heads, L, E) tensors.
    return sdpa_flop(query_shape, key_shape, value_shape)


_CUSTOM = {}
if hasattr(_aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _CUSTOM[_aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_flash_attention_flop


def count_flops(model: nn.Module, shape: Sequence[int]) -> int:
    """FLOPs (2 x MACs, see the module docstring) of ``model(torch.zeros(shape))``.

    The count runs on a ``meta``-device copy, so it costs no memory and no arithmetic; a model that
    cannot run on ``meta`` is counted on a CPU copy instead (slower, same number).

    Examples
    --------
    >>> count_flops(nn.Conv3d(1, 2, 3, padding=1), (1, 1, 4, 4, 4))  # 64 voxels x 2 x 27 MACs x 2
    6912
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 5 or min(shape) < 1:
        raise ConfigError(rule_message("shape", "must be five positive ints (B, C, D, H, W)", shape,
                                       "Use e.g. (1, 1, 32, 160, 160)."))
    for device in ("meta", "cpu"):
        try:
            return _count_on(model, shape, torch.device(device))
        except (NotImplementedError, RuntimeError) as exc:
            if device == "cpu":
                raise
            logger.debug("FLOP count on meta failed (%s); counting on a CPU copy", exc)
    raise AssertionError("unreachable")


def _count_on(model: nn.Module, shape: tuple[int, ...], device: torch.device) -> int:
    replica = copy.deepcopy(model).to(device).eval()
    dtype = next(replica.parameters(), torch.zeros(())).dtype
    counter = FlopCounterMode(display=False, custom_mapping=_CUSTOM)
    inputs = [torch.zeros(shape, dtype=dtype, device=device)]
    if getattr(replica, "conditions_on_noise_level", False):  # the level map's cost is counted too
        inputs.append(torch.full((shape[0],), 0.05, dtype=dtype, device=device))
    with torch.no_grad(), counter:
        replica(*inputs)
    return int(counter.get_total_flops())


def model_complexity(model: nn.Module, patch: Sequence[int] = PATCH_DHW) -> dict:
    """JSON-ready parameters and FLOPs of one ``(1, 1, *patch)`` forward pass.

    Returns
    -------
    dict
        ``parameters`` (trainable), ``patch_dhw``, ``flops``, ``gflops`` (rounded), ``macs`` (= flops / 2) and
        ``convention`` (what was counted).
    """
    patch = tuple(int(p) for p in patch)
    if len(patch) != 3:
        raise ConfigError(rule_message("patch", "must be three ints (D, H, W)", patch, "Use (32, 160, 160)."))
    flops = count_flops(model, (1, 1, *patch))
    return {"parameters": count_parameters(model), "patch_dhw": list(patch), "flops": flops,
            "gflops": round(flops / 1e9, 3), "macs": flops // 2, "convention": FLOP_CONVENTION}
