"""Wrap a network as a patch predictor: device, eval/MC-dropout mode, noise-level input, dtype."""

from __future__ import annotations

import torch
from torch import nn

from .noise_level import conditioning_noise_sigma


class PatchPredictor:
    """Callable on (b, 1, d, h, w) batches; a context manager that restores the network's mode.

    * eval mode, except dropout layers when ``mc_samples > 0`` (Monte-Carlo dropout,
      Gal & Ghahramani, ICML 2016);
    * MC dropout masks come from torch's RNG inside ``torch.random.fork_rng`` seeded with
      ``seed``, so runs are reproducible and the caller's RNG state is untouched;
    * models with ``conditions_on_noise_level`` get the volume's noise std, estimated once
      (Immerkaer 1996, on voxels above the median) on the normalised image, as training does;
    * with ``own_uncertainty`` the output has two channels, the denoised patch and the model's own
      std map (``network.forward_with_uncertainty``, see the registry);
    * the output is float32 whatever autocast computed in.
    """

    def __init__(self, network: nn.Module, image: torch.Tensor, device: torch.device, *, mc_samples: int, seed: int,
                 own_uncertainty: bool = False):
        self.network, self.device, self.mc_samples, self.seed = network, device, mc_samples, seed
        self.own_uncertainty = own_uncertainty
        self.noise_level = None
        if getattr(network, "conditions_on_noise_level", False):
            self.noise_level = torch.tensor([conditioning_noise_sigma(image[0, 0].numpy())], dtype=torch.float32)
        self._modes = {module: module.training for module in network.modules()}
        first = next(network.parameters(), None)
        self._home = first.device if first is not None else torch.device("cpu")
        self._rng = None

    def __enter__(self) -> "PatchPredictor":
        self.network.to(self.device).eval()
        if self.mc_samples > 0:
            for module in self.network.modules():
                if isinstance(module, nn.modules.dropout._DropoutNd):
                    module.train()
        # torch.manual_seed seeds every CUDA device: fork them all so the caller's state comes back
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
        self._rng = torch.random.fork_rng(devices=devices)
        self._rng.__enter__()
        torch.manual_seed(self.seed)
        return self

    def __exit__(self, *exc) -> None:
        self._rng.__exit__(*exc)
        for module, training in self._modes.items():
            module.training = training
        self.network.to(self._home)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.own_uncertainty:
            denoised, std = self.network.forward_with_uncertainty(batch)
            return torch.cat([denoised.float(), std.float()], dim=1)
        if self.noise_level is not None:
            level = self.noise_level.to(batch.device).expand(batch.shape[0])
            return self.network(batch, level).float()
        return self.network(batch).float()


def build_predictor(network: nn.Module, image: torch.Tensor, device: torch.device, *, mc_samples: int,
                    seed: int, own_uncertainty: bool = False) -> PatchPredictor:
    return PatchPredictor(network, image, device, mc_samples=mc_samples, seed=seed, own_uncertainty=own_uncertainty)
