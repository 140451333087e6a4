"""Device selection, autocast policy and out-of-memory recognition."""

from __future__ import annotations

import contextlib

import torch

from ..errors import ConfigError, DeviceError, rule_message

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is a DeviceError."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ConfigError(rule_message("device", f"must be one of {list(DEVICE_CHOICES)} (or cuda:N)", name,
                                       "Use 'auto' to pick the GPU when present."))
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(rule_message("device", "needs a CUDA GPU visible to torch", name,
                                       "Use --device cpu, or install a CUDA build of torch (see README)."))
    return torch.device(name)


def autocast_context(device: torch.device, enabled: bool):
    """bf16 (or fp16 where bf16 is unsupported) autocast on CUDA only; a no-op elsewhere."""
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    with torch.cuda.device(device):
        native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    dtype = torch.bfloat16 if native_bf16 else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA OOM and CPU allocator failures."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def release_cached_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
