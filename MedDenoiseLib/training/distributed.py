"""Distributed data-parallel training under ``torchrun`` (NCCL on GPU, gloo on CPU).

``torchrun --nproc_per_node N -m MedDenoiseLib.cli train --config C.yaml`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed`
reads them, joins the process group and tells each rank its device. Every rank draws its own
patches (its batch generator is seeded from the config seed and its rank), gradients are
averaged by ``DistributedDataParallel``, and only rank 0 writes checkpoints, logs and exports.
Without those variables (a plain ``meddenoise train``) nothing is initialised.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ConfigError, rule_message

logger = logging.getLogger(__name__)

__all__ = ["DistContext", "init_distributed", "rank_seed"]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job; ``world_size == 1`` means not distributed."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on at least one (e.g. stop requests)."""
        if not self.enabled:
            return bool(flag)
        value = torch.tensor([1.0 if flag else 0.0], device=self._device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (e.g. early stopping decided from rank-0 validation)."""
        if not self.enabled:
            return bool(flag)
        value = torch.tensor([1.0 if flag else 0.0], device=self._device())
        dist.broadcast(value, src=0)
        return bool(value.item() > 0)

    def gather_objects(self, obj) -> list:
        """``obj`` of every rank, in rank order (on every rank)."""
        if not self.enabled:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def _device(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")


def rank_seed(seed: int, rank: int) -> int:
    """Seed of rank ``rank``'s batch generator (rank 0 keeps the config seed: single-process runs replay)."""
    return seed if rank == 0 else (seed * 1_000_003 + 7919 * rank) % 2**63


def init_distributed(device: str = "auto") -> DistContext:
    """Join the ``torchrun`` process group when ``WORLD_SIZE`` > 1 (once per process).

    The backend is NCCL when the run uses CUDA (each rank on GPU ``LOCAL_RANK``) and gloo on CPU.

    Raises
    ------
    ConfigError
        If ``WORLD_SIZE`` > 1 but ``RANK`` or ``MASTER_ADDR`` is missing (not started by torchrun).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if "RANK" not in os.environ or "MASTER_ADDR" not in os.environ:
        raise ConfigError(rule_message("environment", "needs RANK and MASTER_ADDR when WORLD_SIZE > 1",
                                       {"WORLD_SIZE": world}, "Start the job with torchrun --nproc_per_node N."))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
        logger.info("rank %d/%d joined the %s process group", rank, world, backend)
    return DistContext(rank=rank, world_size=world, local_rank=local, backend=backend)
