"""Per-modality intensity normalisation with an exact inverse.

The network never sees raw units (HU, scanner counts, grey levels): ``forward`` maps
them linearly to roughly [0, 1] and ``inverse`` maps network outputs back to the
input's units. Both are computed in float64 and returned as float32; nothing is
clipped, so values outside the window survive the round trip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, InputError, rule_message
from .volume import Volume

logger = logging.getLogger(__name__)

#: Modalities the library normalises.
MODALITIES = ("ct", "mr", "us", "xr")
#: DICOM Modality (0008,0060) codes, upper case, and the modality they map to.
DICOM_MODALITY_MAP = {"CT": "ct", "MR": "mr", "US": "us",
                      "CR": "xr", "DX": "xr", "XA": "xr", "RF": "xr", "MG": "xr", "DR": "xr"}
#: Bit depths tried, smallest first, for X-ray scaling.
XR_BIT_DEPTHS = (8, 10, 12, 14, 16)
#: Fixed CT window: x' = (HU - CT_OFFSET) / CT_SCALE puts air at 0 and water at 0.5.
CT_OFFSET, CT_SCALE = -1000.0, 2000.0
#: MR robust percentiles mapped to 0 and 1.
MR_PERCENTILES = (0.5, 99.5)
#: Percentile of an X-ray image mapped to 1 by the ``xr_percentile`` choice.
XR_PERCENTILE = 99.5
#: How a model wants its inputs normalised (card key ``normalization``, training ``data.normalization``):
#: ``default`` is each modality's rule below; ``xr_percentile`` scales radiographs by their content.
NORMALIZATION_CHOICES = ("default", "xr_percentile")
_METHODS = ("ct_window", "mr_percentile", "mr_minmax", "constant", "us_8bit", "xr_bits", "xr_percentile")


def canonical_modality(modality: str) -> str:
    """Map ``"ct"``, ``"MR"``, DICOM codes (``"DX"``, ``"MG"``, ...) to one of :data:`MODALITIES`.

    Raises
    ------
    ConfigError
        If ``modality`` is neither a listed name nor a listed DICOM code.

    Examples
    --------
    >>> canonical_modality("MG")
    'xr'
    """
    key = str(modality).strip()
    if key.lower() in MODALITIES:
        return key.lower()
    if key.upper() in DICOM_MODALITY_MAP:
        return DICOM_MODALITY_MAP[key.upper()]
    raise ConfigError(rule_message("modality", f"must be one of {', '.join(MODALITIES)} or a DICOM code "
                                   f"({', '.join(DICOM_MODALITY_MAP)})", modality,
                                   "Pass e.g. modality='ct', or 'mr' for percentile scaling of any other image."))


@dataclass(frozen=True)
class Normalization:
    """A linear intensity map, x' = (x - offset) / scale, and its inverse x = x' * scale + offset.

    Attributes
    ----------
    modality : str, one of :data:`MODALITIES`.
    scale : float, input units per normalised unit (> 0).
    offset : float, input value mapped to 0.
    method : str, how ``scale`` and ``offset`` were chosen (see ``fit_normalization``).

    Examples
    --------
    >>> norm = Normalization("ct", scale=2000.0, offset=-1000.0, method="ct_window")
    >>> norm.forward(np.array([-1000, 0, 1000], np.int16))
    array([0. , 0.5, 1. ], dtype=float32)
    >>> norm.inverse(norm.forward(np.array([-1000, 0, 1000], np.int16)))
    array([-1000.,     0.,  1000.], dtype=float32)
    """

    modality: str
    scale: float
    offset: float
    method: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "modality", canonical_modality(self.modality))
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(rule_message("scale", "must be finite and > 0", self.scale,
                                           "Build normalisations with fit_normalization()."))
        if not np.isfinite(self.offset):
            raise ConfigError(rule_message("offset", "must be finite", self.offset,
                                           "Build normalisations with fit_normalization()."))
        if self.method not in _METHODS:
            raise ConfigError(rule_message("method", f"must be one of {', '.join(_METHODS)}", self.method,
                                           "Use a record written by Normalization.to_dict()."))
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "offset", float(self.offset))

    def forward(self, array: np.ndarray) -> np.ndarray:
        """Input units to normalised units, float32 (computed in float64, never clipped)."""
        return ((np.asarray(array, dtype=np.float64) - self.offset) / self.scale).astype(np.float32)

    def inverse(self, array: np.ndarray) -> np.ndarray:
        """Normalised units back to input units, float32 (computed in float64)."""
        return (np.asarray(array, dtype=np.float64) * self.scale + self.offset).astype(np.float32)

    def to_dict(self) -> dict[str, str | float]:
        """JSON-ready record; ``from_dict`` rebuilds the same object."""
        return {"modality": self.modality, "scale": self.scale, "offset": self.offset, "method": self.method}

    @classmethod
    def from_dict(cls, record: dict) -> "Normalization":
        """Rebuild from ``to_dict`` output.

        Raises
        ------
        ConfigError
            If keys are missing or unknown, or a value breaks a rule.
        """
        expected = {"modality", "scale", "offset", "method"}
        if set(record) != expected:
            raise ConfigError(rule_message("record", f"must have exactly the keys {sorted(expected)}",
                                           sorted(record), "Pass the dict written by Normalization.to_dict()."))
        return cls(modality=record["modality"], scale=float(record["scale"]), offset=float(record["offset"]),
                   method=record["method"])


def _fit_mr(values: np.ndarray) -> Normalization:
    nonzero = values[values != 0]
    sample = values if nonzero.size * 2 >= values.size or nonzero.size == 0 else nonzero
    low, high = (float(p) for p in np.percentile(sample, MR_PERCENTILES))
    if high > low:
        return Normalization("mr", scale=high - low, offset=low, method="mr_percentile")
    low, high = float(sample.min()), float(sample.max())
    if high > low:
        logger.warning("MR percentiles %s are equal (%g); scaling min..max instead.", MR_PERCENTILES, low)
        return Normalization("mr", scale=high - low, offset=low, method="mr_minmax")
    logger.warning("Constant MR volume (%g); mapping it to 0.5 with scale 1.", low)
    return Normalization("mr", scale=1.0, offset=low - 0.5, method="constant")


def _fit_xr(values: np.ndarray) -> Normalization:
    peak = float(values.max()) if values.size else 0.0
    for bits in XR_BIT_DEPTHS:
        if peak <= 2**bits - 1:
            return Normalization("xr", scale=float(2**bits - 1), offset=0.0, method="xr_bits")
    raise InputError(rule_message("array", "must fit in 16 bits for X-ray scaling", f"max {peak:g}",
                                  "Use modality='mr' for percentile scaling, or rescale the detector values."))


def _fit_xr_percentile(values: np.ndarray) -> Normalization:
    high = float(np.percentile(values, XR_PERCENTILE))
    if high > 0:
        return Normalization("xr", scale=high, offset=0.0, method="xr_percentile")
    peak = float(values.max())
    if peak > 0:
        logger.warning("X-ray percentile %g is %g; scaling by the maximum %g instead.", XR_PERCENTILE, high, peak)
        return Normalization("xr", scale=peak, offset=0.0, method="xr_percentile")
    logger.warning("X-ray image has no positive value (maximum %g); scale 1.", peak)
    return Normalization("xr", scale=1.0, offset=0.0, method="constant")


def normalization_choice(card: dict) -> str:
    """The normalisation a model card asks for (``card["normalization"]``; ``default`` when absent).

    Raises
    ------
    ConfigError
        If the card names a choice outside :data:`NORMALIZATION_CHOICES`.
    """
    choice = card.get("normalization", "default") if isinstance(card, dict) else "default"
    if choice not in NORMALIZATION_CHOICES:
        raise ConfigError(rule_message("card normalization", f"must be one of {', '.join(NORMALIZATION_CHOICES)}",
                                       choice, "Use a card whose normalization is one of these (a newer "
                                       "MedDenoise may have written it: update the library)."))
    return choice


def fit_normalization(array: np.ndarray, modality: str, choice: str = "default") -> Normalization:
    """Choose the normalisation of ``array`` for ``modality``.

    Parameters
    ----------
    array : np.ndarray
        Voxels in input units (any shape, any real dtype); must be finite.
    modality : str
        ``"ct"``, ``"mr"``, ``"us"``, ``"xr"`` (any case) or a DICOM Modality code
        (CT, MR, US, CR, DX, XA, RF, MG, DR).
    choice : str
        One of :data:`NORMALIZATION_CHOICES`: the rule the model was trained with (its card's
        ``normalization``). ``xr_percentile`` needs ``modality`` X-ray.

    Returns
    -------
    Normalization

    Raises
    ------
    ConfigError
        Unknown ``modality`` or ``choice``, or ``xr_percentile`` for another modality.
    InputError
        Empty array, NaN/Inf voxels, or X-ray values above 65535 (default choice only).

    Notes
    -----
    Every map is linear, x' = (x - offset) / scale; nothing is clipped.

    - ``ct``: fixed window, x' = (HU + 1000) / 2000: air 0, water 0.5, 1000 HU at 1.
    - ``mr``: robust percentiles, p0.5 -> 0 and p99.5 -> 1. When at least half the voxels
      are non-zero all voxels are used; otherwise only the non-zero ones (zero
      background of skull-stripped or padded scans). If the percentiles are equal,
      min -> 0 and max -> 1; if the volume is constant c, scale 1 and offset c - 0.5,
      so it maps to 0.5 with no division by zero.
    - ``us``: x' = x / 255 (8-bit B-mode grey levels).
    - ``xr``: x' = x / (2**bits - 1), ``bits`` the smallest of 8, 10, 12, 14, 16 whose
      range holds the largest value (detectors store 10-16 significant bits in uint16,
      so the dtype alone would overstate the depth).
    - ``xr`` with ``choice="xr_percentile"``: x' = x / p99.5, the image's own bright end, so the
      same anatomy reads alike whatever the detector's bit depth or gain, and a few noisy pixels
      above a bit boundary do not change the scale (if p99.5 <= 0, the maximum; if that is <= 0, 1).

    Examples
    --------
    >>> fit_normalization(np.array([0, 700, 1023], np.uint16), "DX").scale
    1023.0
    """
    modality = canonical_modality(modality)
    if choice not in NORMALIZATION_CHOICES:
        raise ConfigError(rule_message("choice", f"must be one of {', '.join(NORMALIZATION_CHOICES)}", choice,
                                       "Pass the model card's 'normalization', or 'default'."))
    if choice == "xr_percentile" and modality != "xr":
        raise ConfigError(rule_message("modality", "must be xr for a model normalised with 'xr_percentile'",
                                       modality, "Use this model on radiographs (modality='xr', --modality xr)."))
    values = np.asarray(array)
    if values.size == 0:
        raise InputError(rule_message("array", "must hold at least one voxel", tuple(values.shape),
                                      "Pass the volume's voxels (Volume.array)."))
    bad = int(np.count_nonzero(~np.isfinite(values))) if values.dtype.kind == "f" else 0
    if bad:
        raise InputError(rule_message("array", "must be finite", f"{bad} NaN/Inf voxels",
                                      "Read with read_volume(..., nonfinite='zero') or repair the input."))
    if modality == "ct":
        return Normalization("ct", scale=CT_SCALE, offset=CT_OFFSET, method="ct_window")
    if modality == "us":
        if values.size and float(values.max()) > 255:
            logger.warning("Ultrasound values reach %g > 255; they map above 1 (linear, not clipped).",
                           float(values.max()))
        return Normalization("us", scale=255.0, offset=0.0, method="us_8bit")
    if modality == "xr":
        return _fit_xr_percentile(values) if choice == "xr_percentile" else _fit_xr(values)
    return _fit_mr(values.ravel())


def guess_modality(volume: Volume) -> tuple[str, str]:
    """Guess the modality of ``volume`` and say why.

    Rules, first match wins:

    1. ``metadata["Modality"]`` holds a DICOM code of :data:`DICOM_MODALITY_MAP`.
    2. ``ct``: minimum in [-3072, -900] HU (air -1000, padding -1024/-2048/-3024) and
       maximum above 0.
    3. ``us``: uint8 voxels.
    4. ``xr``: a single slice of non-negative values above 8 bits (e.g. uint16).
    5. ``mr`` otherwise.

    Returns
    -------
    modality : str
        One of :data:`MODALITIES`.
    reason : str
        Human-readable justification, for logs and reports.

    Examples
    --------
    >>> guess_modality(Volume(np.zeros((1, 2, 2), np.uint8)))
    ('us', 'uint8 voxels (8-bit grey levels)')
    """
    code = str(volume.metadata.get("Modality", "")).strip().upper()
    if code in DICOM_MODALITY_MAP:
        return DICOM_MODALITY_MAP[code], f"DICOM Modality tag is {code!r}"
    note = f"; DICOM Modality {code!r} not mapped" if code else ""
    array = np.asarray(volume.array)
    if array.size == 0:
        return "mr", "empty volume" + note
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    if -3072 <= low <= -900 and high > 0:
        return "ct", f"minimum {low:g} looks like air in HU, maximum {high:g}" + note
    if array.dtype == np.uint8:
        return "us", "uint8 voxels (8-bit grey levels)" + note
    if array.shape[0] == 1 and low >= 0 and high > 255:
        return "xr", f"single slice with values 0..{high:g} above 8 bits" + note
    return "mr", f"no CT/US/X-ray pattern (range {low:g}..{high:g}, {array.dtype.name}){note}"
