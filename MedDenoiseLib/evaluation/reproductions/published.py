"""Numbers published by the seed papers, kept as data with their source.

A value is only entered here when it was read from the publication (or a document quoting
it, named in ``source``). ``None`` means "not transcribed": the generated document then says
so instead of showing a number nobody checked.
"""

from __future__ import annotations

__all__ = ["GONDARA_2016", "NIT_RAIPUR", "DUALNET"]

GONDARA_2016: dict = {
    "source": "L. Gondara, ICDMW 2016 (arXiv:1608.04667), Tables II and IV: mean SSIM on the test images",
    "status": "not transcribed: the paper text was not available offline when this harness was written; enter "
              "the values per setting in MedDenoiseLib/evaluation/reproductions/published.py (Table II, combined data "
              "set) and regenerate this document",
    "ssim": {  # setting label -> {"noisy": ..., "nl_means": ..., "median": ..., "cdae": ...}
        "p=0.1, σ=1": None,
        "p=0.5, σ=1": None,
        "p=0.2, σ=5": None,
        "p=0.2, σ=10": None,
        "Poisson λ=5, p=0.2": None,
    },
}

NIT_RAIPUR: dict = {
    "source": "NIT Raipur per-modality CAE report, overall test means as quoted in MedDenoise issue 4",
    "psnr": 29.55,
    "ssim": 0.8742,
    "mae": 0.0226,
}

DUALNET: dict = {
    "source": "DUAL-NET paper table layout (no-denoise, BM4D, DnCNN, Noise2Void, proposed; mean ± SD, Δ, p)",
    "status": "layout only: the paper's numbers are on its own data and are not comparable with ours",
}
