"""``meddenoise denoise IN OUT``: denoise one volume, write outputs only when everything succeeded."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import ConfigError, rule_message
from ..io import read_volume, write_volume
from ..io.dicom_export import check_dicom_target, write_derived_series
from ..io.dicom_tags import derivation_from_report, read_source_tags
from ..io.sitk_io import WRITE_EXTENSIONS, file_extension
from ..models.resolve import resolve_model
from ..normalization import guess_modality
from ..pipeline import DenoiseResult, denoise_volume
from ..uncertainty_labels import write_color_table
from .options import MODALITIES, add_inference_arguments, inference_options
from .reporting import StopFlag, emit_json, make_progress

logger = logging.getLogger("meddenoise")


def add_parser(sub) -> None:
    p = sub.add_parser("denoise", help="denoise a volume (NIfTI, NRRD, MHA, DICOM series)")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--modality", choices=MODALITIES, default=None, help="default: guessed from DICOM tags/intensities")
    add_inference_arguments(p)
    p.add_argument("--uncertainty", type=Path, default=None, help="write the per-voxel std map here")
    p.add_argument("--uncertainty-labels", type=Path, default=None,
                   help="write the uint8 uncertainty label map here (a .ctbl colour table is written beside it)")
    p.add_argument("--dtype", choices=("float32", "source"), default="float32",
                   help="output voxel type: float32, or the input's own type (rounded, clipped)")
    p.add_argument("--channel", type=int, default=None, help="component/time point of a vector or 4D image")
    p.add_argument("--rgb-to-gray", action="store_true", help="convert RGB (ultrasound) to grey, BT.601")
    p.add_argument("--progress", choices=("bar", "json", "none"), default="bar")
    p.add_argument("--dicom-out", type=Path, default=None,
                   help="also write the denoised volume as a derived DICOM series (ImageType DERIVED\\SECONDARY, "
                        "new Series UID) into this new folder or one without DICOM files; a DICOM input's "
                        "patient and study are kept")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_output_paths([args.output, args.uncertainty, args.uncertainty_labels])
    if args.dicom_out is not None:
        check_dicom_target(args.dicom_out)
    volume = read_volume(args.input, channel=args.channel, rgb_to_gray=args.rgb_to_gray)
    source_tags = _dicom_source_tags(args, volume)
    modality = args.modality or _guess(volume)
    options = inference_options(args)
    loaded = resolve_model(args.model, modality)
    progress = make_progress(args.progress)
    try:
        with StopFlag() as stop:
            result = denoise_volume(volume, loaded, modality=modality, options=options, progress=progress,
                                    should_stop=stop)
    finally:
        if progress is not None:
            progress.close()
    written = write_outputs(result, args.output, args.uncertainty, args.uncertainty_labels, dtype=args.dtype)
    if args.dicom_out is not None:
        written.append(_write_dicom(result, args.dicom_out, source_tags, modality, written, dtype=args.dtype))
    _summary(result, written, args.progress == "json")
    return 0


def _dicom_source_tags(args: argparse.Namespace, volume) -> dict | None:
    """Patient/study tags of a DICOM input, read before the long run (None: not DICOM or no --dicom-out)."""
    if args.dicom_out is None or not (args.input.is_dir() or file_extension(args.input) == ".dcm"):
        return None
    return read_source_tags(args.input, series_uid=volume.metadata.get("SeriesInstanceUID"))


def _write_dicom(result: DenoiseResult, out_dir: Path, source_tags: dict | None, modality: str, written: list[Path],
                 *, dtype: str) -> Path:
    """The derived series, last: when it fails, the files written before it are removed too."""
    integer_source = dtype == "source" and result.denoised.source_dtype.startswith(("int", "uint"))
    values = result.denoised.array
    if integer_source and (float(values.min()) < -32768 or float(values.max()) > 32767):
        logger.warning("denoised values exceed int16: the DICOM series stores them with a rescale slope instead "
                       "of the source's whole units")
        integer_source = False
    try:
        return write_derived_series(result.denoised, out_dir, source_tags=source_tags, modality=modality,
                                    derivation_description=derivation_from_report(result.report),
                                    quantization="round" if integer_source else "auto").directory
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def _guess(volume) -> str:
    modality, reason = guess_modality(volume)
    logger.info("modality guessed as %s (%s); override with --modality", modality, reason)
    return modality


def write_outputs(result: DenoiseResult, output: Path, uncertainty: Path | None, labels: Path | None,
                  *, dtype: str = "float32") -> list[Path]:
    """Write every requested output; if one fails, remove those already written (no half-made result)."""
    written: list[Path] = []
    try:
        written.append(write_volume(result.denoised, output, dtype="source" if dtype == "source" else "float32"))
        if uncertainty is not None:
            written.append(write_volume(result.uncertainty, uncertainty, dtype="float32"))
        if labels is not None:
            written.append(write_volume(result.labels, labels, dtype="uint8"))
            written.append(write_color_table(_ctbl_path(labels)))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def check_output_paths(paths: list[Path | None]) -> None:
    """Refuse unwritable output paths before any work is done (not after a long run)."""
    for path in (p for p in paths if p is not None):
        if file_extension(path) not in WRITE_EXTENSIONS:
            raise ConfigError(rule_message("output path", f"must end in one of {list(WRITE_EXTENSIONS)}", str(path),
                                           "Use e.g. out.nrrd or out.nii.gz."))
        if not path.parent.is_dir():
            raise ConfigError(rule_message("output folder", "must exist", str(path.parent), "Create it first."))


def _ctbl_path(labels: Path) -> Path:
    stem = labels.name[: len(labels.name) - len(file_extension(labels))]
    return labels.with_name(stem + ".ctbl")


def _summary(result: DenoiseResult, written: list[Path], as_json: bool) -> None:
    r = result.report
    line = (f"denoised in {r['seconds']:.1f} s on {r['device']} | model {r['model']} | {r['patches']} patches x "
            f"TTA {r['tta']}" + (f" x MC {r['mc_dropout']}" if r["mc_dropout"] else "")
            + f" | noise sigma {result.noise_sigma:.4g}" + (f" | {'; '.join(r['backoff'])}" if r["backoff"] else ""))
    if as_json:
        emit_json({"event": "done", "outputs": [str(p) for p in written], "report": r})
    logger.info("%s", line)
    for path in written:
        logger.info("wrote %s", path)
