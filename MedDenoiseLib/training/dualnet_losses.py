"""DUAL-NET's auxiliary losses: noise-estimation calibration and the stage-2 self-supervised terms.

Added to the content loss (L1 + SSIM + edge, or the masked loss of ``n2v``/``n2s``) with the weights of
``loss`` in the training config (all 0 by default):

* ``noise_nll`` — Gaussian negative log-likelihood of the noise under the NEB's std ``sigma(x)``.
  Supervised: of the true residual ``noisy - clean`` (calibration against the simulated noise).
  Self-supervised: of ``noisy - mu(x)`` on the masked voxels, ``mu`` being the NEB's blind-spot denoise
  (the probabilistic blind-spot objective of Laine et al. 2019 with a zero-variance prior; ``sigma`` then
  also absorbs the error of ``mu``).
* ``neb_l1`` — ``|mu - clean|`` (supervised only): trains the NEB's own denoise.
* ``error_nll`` — Gaussian NLL of the SRB's remaining error ``x_hat - clean`` (``x_hat`` detached) under
  ``sigma (1 - alpha)``, the model's own uncertainty (supervised only).
* ``consistency`` — ``alpha |x_hat - mu|`` with ``alpha`` and ``mu`` detached: the SRB is pulled towards
  the NEB's denoise where the NEB is confident.
* ``tv`` — weak anisotropic total variation ``mean |grad x_hat|`` of the SRB output.

Gaussian NLL per voxel: ``0.5 log(2 pi) + log sigma + r^2 / (2 sigma^2)`` (mean over voxels).

References
----------
Nix DA, Weigend AS. Estimating the mean and variance of the target probability distribution. ICNN 1994.
Laine S, Karras T, Lehtinen J, Aila T. High-quality self-supervised deep image denoising. NeurIPS 2019.
Rudin LI, Osher S, Fatemi E. Nonlinear total variation based noise removal algorithms. Physica D 1992.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional

import torch

from ..errors import ConfigError, ShapeError, rule_message

__all__ = ["AUXILIARY_TERMS", "SUPERVISED_ONLY", "AuxiliaryLoss", "consistency_loss", "gaussian_nll",
           "total_variation"]

#: Weight names of the auxiliary terms, as in ``LossConfig``.
AUXILIARY_TERMS = ("noise_nll", "neb_l1", "error_nll", "consistency", "tv")
#: Terms that need the clean image (algorithm ``supervised``).
SUPERVISED_ONLY = ("neb_l1", "error_nll")
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _same_shape(name: str, *tensors: torch.Tensor) -> None:
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise ShapeError(rule_message(name, "needs tensors of one shape", sorted(shapes),
                                      "Pass (B, 1, D, H, W) maps of the same patch."))


def gaussian_nll(residual: torch.Tensor, sigma: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood of ``residual`` under zero mean and std ``sigma``.

    ``mask`` (booleans) restricts the mean to some voxels; an empty mask gives a zero that keeps the graph.

    Examples
    --------
    >>> r, s = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 2.0])
    >>> round(float(gaussian_nll(r, s)), 4)  # (0.9189 + (0.9189 + 0.6931 + 0.5)) / 2
    1.5155
    """
    _same_shape("gaussian_nll", residual, sigma)
    if bool((sigma <= 0).any()):
        raise ConfigError(rule_message("sigma", "must be > 0 everywhere", float(sigma.min()),
                                       "Predict it through softplus plus a floor, as the DUAL-NET NEB does."))
    per_voxel = _HALF_LOG_2PI + torch.log(sigma) + 0.5 * (residual / sigma) ** 2
    if mask is None:
        return per_voxel.mean()
    _same_shape("gaussian_nll mask", residual, mask)
    chosen = per_voxel[mask]
    return chosen.mean() if chosen.numel() else per_voxel.sum() * 0.0


def consistency_loss(prediction: torch.Tensor, reference: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``mean(weight * |prediction - reference|)``.

    Examples
    --------
    >>> float(consistency_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.5])))
    1.25
    """
    _same_shape("consistency_loss", prediction, reference, weight)
    return (weight * (prediction - reference).abs()).mean()


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic TV of ``(B, C, D, H, W)``: mean over the axes longer than 1 of ``mean |forward difference|``.

    Examples
    --------
    >>> float(total_variation(torch.tensor([0.0, 1.0, 3.0]).reshape(1, 1, 1, 1, 3)))
    1.5
    """
    if x.ndim != 5:
        raise ShapeError(rule_message("x", "must be (B, C, D, H, W)", tuple(x.shape), "Add axes: x[None, None]."))
    terms = [torch.diff(x, dim=dim).abs().mean() for dim in (2, 3, 4) if x.shape[dim] > 1]
    return torch.stack(terms).mean() if terms else x.sum() * 0.0


class AuxiliaryLoss:
    """Weighted sum of the DUAL-NET terms of the module docstring; zero weights are skipped.

    Parameters
    ----------
    weights : mapping
        Weight per name of :data:`AUXILIARY_TERMS` (missing names count as 0).

    ``__call__(outputs, noisy, clean, mask)`` takes the dict of ``DualNet.forward_all`` (or just the
    denoised tensor when only ``tv`` is on), the noisy patch, the clean patch (None when self-supervised)
    and the blind-spot mask (None when supervised); it returns ``(total, parts)`` with detached parts.
    """

    def __init__(self, weights: Mapping[str, float]) -> None:
        unknown = sorted(set(weights) - set(AUXILIARY_TERMS))
        if unknown or any(float(v) < 0 for v in weights.values()):
            raise ConfigError(rule_message("auxiliary loss weights", f"must be >= 0 and named in {AUXILIARY_TERMS}",
                                           dict(weights), "Use e.g. {'noise_nll': 0.1}."))
        self.weights = {k: float(weights.get(k, 0.0)) for k in AUXILIARY_TERMS}

    @property
    def active(self) -> bool:
        return any(self.weights.values())

    @property
    def needs_model_outputs(self) -> bool:
        """True when a term needs more than the denoised image (``forward_all`` of the model)."""
        return any(self.weights[k] for k in AUXILIARY_TERMS if k != "tv")

    def __call__(self, outputs, noisy: torch.Tensor, clean: Optional[torch.Tensor],
                 mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, dict[str, float]]:
        outputs = outputs if isinstance(outputs, Mapping) else {"denoised": outputs}
        denoised = outputs["denoised"]
        w, terms = self.weights, {}
        if self.needs_model_outputs and outputs.get("sigma") is None:
            raise ConfigError(rule_message("loss.noise_nll / neb_l1 / error_nll / consistency",
                                           "need a model with a noise-estimation branch (DUAL-NET with neb=True)",
                                           sorted(k for k in AUXILIARY_TERMS if w[k] and k != "tv"),
                                           "Set these weights to 0 or use model: {name: dualnet}."))
        if clean is None and any(w[k] for k in SUPERVISED_ONLY):
            raise ConfigError(rule_message("loss.neb_l1 / loss.error_nll", "need clean images (algorithm "
                                           "'supervised')", {k: w[k] for k in SUPERVISED_ONLY},
                                           "Set them to 0 for n2v/n2s fine-tuning."))
        if w["noise_nll"]:
            if clean is not None:
                terms["noise_nll"] = gaussian_nll(noisy - clean, outputs["sigma"])
            else:
                terms["noise_nll"] = gaussian_nll(noisy - outputs["neb_denoised"], outputs["sigma"], mask)
        if w["neb_l1"]:
            terms["neb_l1"] = (outputs["neb_denoised"] - clean).abs().mean()
        if w["error_nll"]:
            terms["error_nll"] = gaussian_nll(denoised.detach() - clean, outputs["error_std"])
        if w["consistency"]:
            terms["consistency"] = consistency_loss(denoised, outputs["neb_denoised"].detach(),
                                                    outputs["alpha"].detach())
        if w["tv"]:
            terms["tv"] = total_variation(denoised)
        if not terms:
            return denoised.sum() * 0.0, {}
        total = sum(w[k] * v for k, v in terms.items())
        return total, {k: float(v.detach()) for k, v in terms.items()}
