"""Back-off order: batch, then patch, then CPU; then a clear DeviceError."""

import pytest
import torch

from MedDenoiseLib.errors import DeviceError
from MedDenoiseLib.inference.backoff import RunSettings, next_settings, run_with_backoff
from MedDenoiseLib.inference.device import is_out_of_memory


class TestBackoff:
    def test_sequence_ends_on_cpu(self):
        settings = RunSettings(2, (32, 64, 64), torch.device("cuda"))
        steps = []
        while (step := next_settings(settings)) is not None:
            settings, message = step
            steps.append(message)
        assert steps == ["patch batch 2 -> 1", "patch (32, 64, 64) -> (32, 32, 32)", "device cuda -> cpu"]
        assert settings.device.type == "cpu"

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
