"""Per-modality convolutional autoencoder (NIT Raipur report), in 3D.

Same two-pool topology as Gondara's CNN-DAE (``cdae3d``) but widening instead of narrowing
towards the bottleneck: Conv64-pool-Conv128-pool-Conv128-up-Conv64-up-Conv1-sigmoid. One
model is trained per modality (CT, MR, ultrasound, X-ray).
"""

from __future__ import annotations

import logging

from .cdae3d import ConvAutoencoder3d
from .padding import check_positive_int
from .registry import register_model

logger = logging.getLogger(__name__)

# The report's bibliographic details (authors, year) were not available when this was written.
NIT_RAIPUR_REPORT = ("Per-modality convolutional autoencoders for medical image denoising "
                     "(Conv64-pool-Conv128-pool-Conv128-up-Conv64-up-Conv1, sigmoid output). "
                     "Project report, National Institute of Technology (NIT) Raipur.")


@register_model(
    "cae",
    description="Per-modality convolutional autoencoder (NIT Raipur report) in 3D: widths "
                "b-2b-2b-b with b=base_channels (64 in the report; 16 for a small CPU model), "
                "two poolings, sigmoid output: expects inputs in [0, 1].",
    citation=NIT_RAIPUR_REPORT,
    base_channels=64,
    pool_depth=True,
    output_activation="sigmoid",
    dropout=0.0,
)
class CAE3d(ConvAutoencoder3d):
    """Per-modality convolutional autoencoder with widths ``(b, 2b, 2b, b)``.

    Parameters
    ----------
    base_channels : int, default 64
        ``b``; 64 as in the report (about 0.89 M parameters). ``base_channels=16`` gives a
        model about 16 times smaller and cheaper, usable on CPU.
    pool_depth, output_activation, dropout
        As in :class:`~MedDenoiseLib.models.cdae3d.ConvAutoencoder3d`: 2x2x2 (or in-plane 1x2x2)
        pooling, ``"sigmoid"`` output for inputs in [0, 1] (or ``"none"``), ``nn.Dropout3d``
        probability after every hidden ReLU.

    Notes
    -----
    Inputs are padded to a multiple of 4 along pooled axes and cropped back (see ``cdae3d``).

    References
    ----------
    Per-modality convolutional autoencoders for medical image denoising. Project report,
    NIT Raipur.

    Examples
    --------
    >>> import torch
    >>> model = CAE3d(base_channels=2, pool_depth=False)
    >>> model(torch.rand(2, 1, 1, 9, 6)).shape
    torch.Size([2, 1, 1, 9, 6])
    """

    def __init__(
        self,
        *,
        base_channels: int = 64,
        pool_depth: bool = True,
        output_activation: str = "sigmoid",
        dropout: float = 0.0,
    ) -> None:
        b = check_positive_int(base_channels, "base_channels")
        super().__init__(channels=(b, 2 * b, 2 * b, b), pool_depth=pool_depth,
                         output_activation=output_activation, dropout=dropout)
