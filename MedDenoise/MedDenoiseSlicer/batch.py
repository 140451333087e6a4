"""Denoise files on disk without loading them into the scene (console batch use).

Each input is handed to the worker as it is (NIfTI, NRRD, MHA or a DICOM series folder);
the engine writes ``<name>_denoised<ext>`` and ``<name>_uncertainty<ext>`` (plus the
``.ctbl`` colour table) into the output folder, atomically and only on success.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .job import DenoiseSettings, ProgressLogger, RunCancelled, WorkerError, WorkerLauncher
from .protocol import EXIT_CANCELLED, Done, Event, WorkerRequest, error_summary, parse_line

logger = logging.getLogger(__name__)
#: Extensions kept for outputs; anything else (DICOM folders, .dcm) becomes NRRD.
KEEP_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass
class FileResult:
    """Outcome of one input file: output paths and report, or the error message."""

    input: Path
    denoised: Path | None = None
    uncertainty: Path | None = None
    report: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def output_paths(input_path: str | os.PathLike, output_dir: str | os.PathLike) -> tuple[Path, Path]:
    """``(denoised, uncertainty)`` paths for ``input_path`` inside ``output_dir``.

    Examples
    --------
    >>> [p.name for p in output_paths("/data/brain.nii.gz", "/out")]
    ['brain_denoised.nii.gz', 'brain_uncertainty.nii.gz']
    """
    name = Path(input_path).name
    ext = next((e for e in KEEP_EXTENSIONS if name.lower().endswith(e)), "")
    if ext:
        stem = name[: len(name) - len(ext)]
    else:  # DICOM folder or single .dcm file
        stem, ext = (Path(name).stem if name.lower().endswith(".dcm") else name), ".nrrd"
    folder = Path(output_dir)
    return folder / f"{stem}_denoised{ext}", folder / f"{stem}_uncertainty{ext}"


def denoise_files(input_paths: Sequence[str | os.PathLike], output_dir: str | os.PathLike, *,
                  settings: DenoiseSettings | None = None, launcher: WorkerLauncher | None = None,
                  on_event: Callable[[Path, Event], None] | None = None,
                  stop_on_error: bool = False) -> list[FileResult]:
    """Denoise every file of ``input_paths`` into ``output_dir`` (created if needed).

    Parameters
    ----------
    input_paths : sequence of path
        Volumes the engine can read (a DICOM series is given as its folder).
    output_dir : path
    settings : DenoiseSettings, optional
        ``modality=None`` lets the engine guess each file's modality.
    launcher : WorkerLauncher, optional
    on_event : callable, optional
        Called with ``(input_path, event)`` for every progress/log line (default: log ~every 10 %).
    stop_on_error : bool
        Raise :class:`WorkerError` at the first failure instead of going on with the next file.

    Returns
    -------
    list of FileResult
        One per input, in order; failed inputs carry ``error``.

    Raises
    ------
    RunCancelled
        Ctrl+C or a cancelled worker stops the whole batch.
    """
    settings = settings or DenoiseSettings()
    launcher = launcher or WorkerLauncher()
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for index, raw in enumerate(input_paths, start=1):
        source = Path(raw)
        denoised, uncertainty = output_paths(source, folder)
        result = FileResult(source)
        results.append(result)
        logger.info("MedDenoise batch %d/%d: %s", index, len(input_paths), source)
        if not source.exists():
            result.error = f"input {source} does not exist; check the path."
        elif source.resolve() in (denoised.resolve(), uncertainty.resolve()):
            result.error = f"output folder {folder} would overwrite the input {source}; choose another folder."
        else:
            _run_one(source, denoised, uncertainty, result, settings, launcher, on_event)
        if result.error:
            logger.error("MedDenoise batch: %s failed: %s", source.name, result.error)
            if stop_on_error:
                raise WorkerError(result.error)
    failed = sum(not r.ok for r in results)
    logger.info("MedDenoise batch: %d of %d done, %d failed", len(results) - failed, len(results), failed)
    return results


def _run_one(source: Path, denoised: Path, uncertainty: Path, result: FileResult, settings: DenoiseSettings,
             launcher: WorkerLauncher, on_event) -> None:
    request = WorkerRequest(input_path=str(source), output_path=str(denoised), labels_path=str(uncertainty),
                            modality=settings.modality, tta=int(settings.tta), device=settings.device,
                            model=settings.model or None, mc_dropout=int(settings.mc_dropout),
                            uncertainty_source=settings.uncertainty_source)
    process = launcher.process(request)
    default_logger = ProgressLogger(source.name)
    done: list[Done] = []

    def forward(line: str) -> None:
        event = parse_line(line)
        if isinstance(event, Done):
            done.append(event)
        if on_event is not None:
            on_event(source, event)
        else:
            default_logger(event)

    code = process.run(forward)
    if code == EXIT_CANCELLED or process.cancelled:
        raise RunCancelled(f"batch cancelled while denoising {source}; files already written are kept.")
    log = [line for line in process.lines if not line.lstrip().startswith("{")]
    if code != 0 or not done:
        result.error = error_summary(log, code) if code != 0 else "worker ended without its 'done' line"
        return
    result.denoised, result.uncertainty, result.report = denoised, uncertainty, done[-1].report
