"""Clinical fidelity metrics: does a denoiser keep anatomy, texture, HU and small lesions?

PSNR and SSIM say how close an output is to the reference, not whether a reader can trust
it. These task-based metrics (after AAPM TG-233 and ICRU 87) answer that, one module per
concept:

- :mod:`.identity` — clean in -> clean out (PSNR of f(clean) against clean);
- :mod:`.bias` — HU / intensity bias in uniform ROIs found by :mod:`.rois`;
- :mod:`.nps` — noise power spectrum of the residual noise, peak and mean frequency;
- :mod:`.ttf` — task transfer function of an inserted disc, TTF50;
- :mod:`.lesions` — inserted low-contrast lesions, CNR and NPW d′;
- :mod:`.hallucination` — low-frequency structure of the error at edges;
- :mod:`.calibration` — uncertainty coverage, Spearman ρ, reliability bins;
- :mod:`.segmentation` — Dice of a fixed tissue segmentation vs the noisy input's;
- :mod:`.phantom` builds the inserts, :mod:`.case` scores one case, :mod:`.verdict`
  summarises and words the result.

``meddenoise evaluate --fidelity`` runs them all (see docs/fidelity.md).
"""

from .bias import intensity_bias
from .calibration import uncertainty_calibration
from .case import CaseFidelity, MethodRuns, compare_to_noisy, noise_is_paired, score_case, score_method
from .hallucination import edge_mask, structured_residual
from .identity import IDENTITY_CAP_DB, clean_in_clean_out
from .lesions import Lesion, draw_lesions, insert_lesions, lesion_scores
from .nps import NPSResult, noise_power_spectrum, nps_shift
from .phantom import FidelityPhantom, build_phantom
from .rois import UniformROIs, default_roi_size, find_uniform_rois, foreground_threshold
from .segmentation import segmentation_fidelity
from .ttf import DiscInsert, TTFResult, task_transfer_function, ttf50
from .verdict import FidelityThresholds, Verdict, summarize_fidelity, verdict

__all__ = [
    "CaseFidelity", "DiscInsert", "FidelityPhantom", "FidelityThresholds", "IDENTITY_CAP_DB", "Lesion",
    "MethodRuns", "NPSResult", "TTFResult", "UniformROIs", "Verdict", "build_phantom", "clean_in_clean_out",
    "compare_to_noisy", "default_roi_size", "draw_lesions", "edge_mask", "find_uniform_rois",
    "foreground_threshold", "insert_lesions", "intensity_bias", "lesion_scores", "noise_is_paired",
    "noise_power_spectrum", "nps_shift", "score_case", "score_method", "segmentation_fidelity",
    "structured_residual", "summarize_fidelity", "task_transfer_function", "ttf50", "uncertainty_calibration",
    "verdict",
]
