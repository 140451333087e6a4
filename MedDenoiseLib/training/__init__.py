"""Training of the registered models: supervised on simulated physics noise, self-supervised
(Noise2Void, Noise2Self, structN2V) on noisy-only scans, two-stage, per-scan adaptation, and
distributed data-parallel runs under torchrun. See docs/training.md.
"""

from .config import TrainConfig, dump_config, load_config
from .export import export
from .factories import create_n2v_config, create_supervised_config, with_overrides
from .self_supervised import adapt, train_two_stage
from .trainer import train

__all__ = ["TrainConfig", "adapt", "create_n2v_config", "create_supervised_config", "dump_config", "export",
           "load_config", "train", "train_two_stage", "with_overrides"]
