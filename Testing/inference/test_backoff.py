"""Back-off order: batch, then patch, then CPU; then a clear DeviceError."""

import pytest
import torch

from MedDenoiseLib.errors import DeviceError
from MedDenoiseLib.inference.backoff import RunSettings, next_settings, run_with_backoff
from MedDenoiseLib.inference.device import is_out_of_memory


class TestBackoff:
    def test_sequence_ends_on_cpu_with_the_original_patch(self):
        original = settings = RunSettings(2, (32, 64, 64), torch.device("cuda"))
        steps = []
        while settings.device.type == "cuda" and (step := next_settings(settings, original)) is not None:
            settings, message = step
            steps.append(message)
        assert steps == ["patch batch 2 -> 1", "patch (32, 64, 64) -> (32, 32, 32)", "patch (32, 32, 32) -> (16, 32, 32)",
                         "patch (16, 32, 32) -> (8, 32, 32)", "device cuda -> cpu (patch (32, 64, 64), batch 2)"]
        assert settings == RunSettings(2, (32, 64, 64), torch.device("cpu"))

    def test_cuda_oom_reaches_the_cpu(self):
        """A run that only ever fails on CUDA ends on the CPU with the original settings, and says so."""
        def run(settings):
            if settings.device.type == "cuda":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
            return "done on cpu"

        events = []
        result, used = run_with_backoff(run, RunSettings(1, (8, 32, 32), torch.device("cuda")), events)
        assert result == "done on cpu" and used == RunSettings(1, (8, 32, 32), torch.device("cpu"))
        assert events == ["out of memory: retrying with device cuda -> cpu (patch (8, 32, 32), batch 1)"]

    def test_gives_up_with_clear_error(self):
        def always_oom(settings):
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB")

        events = []
        with pytest.raises(DeviceError, match="memory must hold one patch of the smallest size"):
            run_with_backoff(always_oom, RunSettings(1, (8, 32, 32), torch.device("cpu")), events)
        assert events == []

    def test_oom_recognition(self):
        assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
        assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
        assert not is_out_of_memory(RuntimeError("size mismatch"))
        assert not is_out_of_memory(ValueError("out of memory"))
