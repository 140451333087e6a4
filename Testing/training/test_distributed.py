"""Distributed data-parallel training with torchrun on 2 CPU processes (gloo).

Both ranks must hold identical weights after every step, and only rank 0 may write files.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from MedDenoiseLib.training import TrainConfig, dump_config

REPO = Path(__file__).resolve().parents[2]

WORKER = """
import os, sys
import torch
torch.set_num_threads(1)
import torch.distributed as dist
from safetensors.torch import save_file
from MedDenoiseLib.training import load_config, train

config, out = load_config(sys.argv[1]), sys.argv[2]
rank = int(os.environ["RANK"])

def on_step(step, model):
    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()},
              f"{out}/rank{rank}_step{step}.safetensors")

train(config, f"{out}/run_rank{rank}", on_step=on_step)  # a run directory per rank: rank 1 must leave its empty

# Then the command line, as `torchrun -m MedDenoiseLib.cli train ...` runs it (one launch saves ~10 s of imports).
from MedDenoiseLib.cli.main import main
assert main(["train", "--config", sys.argv[1], "--run-dir", f"{out}/cli_run", "--export", f"{out}/cli_model",
             "--progress", "none"]) == 0
assert not dist.is_initialized()  # the command leaves the process group
"""


def _torchrun(args, cwd, timeout=240):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture()
def ddp_config(tmp_path, patients):
    train_files, validation_files = patients
    config = TrainConfig.model_validate({
        "name": "ddp", "seed": 5, "checkpoint_every": 1, "model": {"name": "dncnn", "depth": 3, "features": 8},
        "data": {"train": train_files, "validation": validation_files, "patch_size": (3, 16, 16), "batch_size": 2},
        "noise": {"modality": "mr", "level_range": (2.0, 6.0)}, "optim": {"steps": 2, "warmup_steps": 1, "lr": 1e-3},
        "validation": {"every": 1, "patches": 1, "patch_size": (3, 16, 16)}, "device": "cpu",
        "logs": {"tensorboard": False, "plot": False}})
    dump_config(config, tmp_path / "ddp.yaml")
    return tmp_path / "ddp.yaml"


@pytest.mark.skipif(not torch.distributed.is_gloo_available(), reason="torch built without gloo")
class TestDistributed:
    def test_ranks_agree_only_rank0_writes_and_cli_works(self, tmp_path, ddp_config):
        (tmp_path / "worker.py").write_text(WORKER, encoding="utf-8")
        _torchrun([str(tmp_path / "worker.py"), str(ddp_config), str(tmp_path)], cwd=tmp_path)
        for step in (1, 2):
            w0 = load_file(str(tmp_path / f"rank0_step{step}.safetensors"))
            w1 = load_file(str(tmp_path / f"rank1_step{step}.safetensors"))
            assert all(torch.equal(w0[k], w1[k]) for k in w0), f"ranks differ after step {step}"
        first, second = (load_file(str(tmp_path / f"rank0_step{s}.safetensors")) for s in (1, 2))
        assert not all(torch.equal(first[k], second[k]) for k in first)  # they did train
        assert not (tmp_path / "run_rank1").exists()
        ckpt = tmp_path / "run_rank0" / "checkpoint"
        state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
        assert state["world_size"] == 2 and state["step"] == 2 and len(state["validation"]) == 2
        generators = load_file(str(ckpt / "optimizer.safetensors"))
        assert not torch.equal(generators["generator_state"], generators["generator_state.rank1"])  # own patches

        card = json.loads((tmp_path / "cli_model" / "card.json").read_text(encoding="utf-8"))
        assert card["training"]["world_size"] == 2 and card["training"]["steps"] == 2
        assert (tmp_path / "cli_run" / "train_log.csv").is_file() and (tmp_path / "cli_run" / "config.yaml").is_file()
