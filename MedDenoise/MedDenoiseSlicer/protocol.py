"""The worker protocol: command line, child environment and the JSON progress lines.

Pure Python (no MRML, no Qt, no torch). The worker is ``meddenoise denoise`` (or
``meddenoise adapt``) run with ``--progress json``: it prints one JSON object per line on
stdout, ``progress`` events while it works and one ``done`` event at the end, and logs
prose on stderr as ``LEVEL logger: message``. Any other line (library warnings,
tracebacks) is kept as a log line, so a stray print never breaks the parser.

Denoise progress: ``{"event": "progress", "stage": "denoise", "patch", "patches", "tta",
"tta_total", "elapsed_s", "eta_s", "fraction"}``; done: ``{"event": "done", "outputs": [...],
"report": {...}}``. Adapt progress: ``{"event": "progress", "stage": "adapt", "step", "steps",
"loss"}`` (no timing: the job adds elapsed and ETA); done: ``{"event": "done", "model": DIR,
"denoised": PATH or null}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence, Union

#: Modalities of the engine, and how the module shows them.
MODALITIES = ("ct", "mr", "us", "xr")
MODALITY_LABELS = {"ct": "CT", "mr": "MR", "us": "Ultrasound", "xr": "X-ray"}
#: Engine devices, and how the module shows them.
DEVICES = ("auto", "cuda", "cpu")
DEVICE_LABELS = {"auto": "Auto", "cuda": "GPU", "cpu": "CPU"}
#: Test-time augmentation passes the engine accepts.
TTA_CHOICES = (1, 2, 4, 8)
#: Uncertainty estimates: spread over the TTA views, Monte-Carlo dropout, or the model's own output.
UNCERTAINTY_METHODS = ("tta", "mcdropout", "model")
UNCERTAINTY_LABELS = {"tta": "TTA spread", "mcdropout": "MC dropout", "model": "Model's own"}
#: The engine's ``--uncertainty-source`` value of each method.
UNCERTAINTY_SOURCES = {"tta": "tta", "mcdropout": "mc_dropout", "model": "model"}
#: Exit codes of ``meddenoise``: success, a MedDenoiseError, cancelled by SIGINT/SIGTERM.
EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 2, 130


class ProtocolError(ValueError):
    """A worker request that cannot be turned into a valid command line."""


@dataclass(frozen=True)
class WorkerRequest:
    """Everything one worker run needs; paths are files in the run's temp directory.

    Attributes
    ----------
    input_path, output_path, std_path, labels_path : str
        Input volume, denoised output, per-voxel std map and uint8 label map.
    modality : str or None
        One of :data:`MODALITIES`; None lets the engine guess from the file.
    tta : int
        Flip passes, one of :data:`TTA_CHOICES`.
    device : str
        One of :data:`DEVICES` (or ``cuda:N``).
    model : str or None
        Shipped model name or model directory; None means the modality's default.
    mc_dropout : int
        Monte-Carlo dropout samples per flip (0 = off).
    uncertainty_source : str
        The engine's ``--uncertainty-source``: ``"tta"``, ``"mc_dropout"`` or ``"model"`` (the model's own std).
    """

    input_path: str
    output_path: str
    std_path: str | None = None
    labels_path: str | None = None
    modality: str | None = None
    tta: int = 8
    device: str = "auto"
    model: str | None = None
    mc_dropout: int = 0
    uncertainty_source: str = "tta"

    def __post_init__(self) -> None:
        if self.modality is not None and self.modality not in MODALITIES:
            raise ProtocolError(f"modality must be one of {MODALITIES} or None (guess); got {self.modality!r}. "
                                "Pick the modality in the module panel, e.g. 'mr'.")
        if self.uncertainty_source not in UNCERTAINTY_SOURCES.values():
            raise ProtocolError(f"uncertainty_source must be one of {sorted(UNCERTAINTY_SOURCES.values())}; got "
                                f"{self.uncertainty_source!r}. Use 'tta'.")
        if self.tta not in TTA_CHOICES:
            raise ProtocolError(f"tta must be one of {TTA_CHOICES}; got {self.tta!r}. Use 8 for the best quality.")
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise ProtocolError(f"device must be one of {DEVICES} or cuda:N; got {self.device!r}. Use 'auto'.")
        if int(self.mc_dropout) < 0:
            raise ProtocolError(f"mc_dropout must be >= 0; got {self.mc_dropout!r}. Use 0 (off) or e.g. 8.")


@dataclass(frozen=True)
class AdaptRequest:
    """One ``meddenoise adapt`` run: fine-tune ``model`` on ``input_path`` for ``steps`` steps.

    Attributes
    ----------
    input_path : str
        The noisy scan (NRRD in the run's temp directory).
    output_dir : str
        Model directory the engine exports (weights + card.json); must not exist yet.
    model : str
        Shipped model name or model directory to start from.
    steps : int
        Fine-tuning steps (>= 1).
    modality : str or None
        None: the model card's.
    device : str
        One of :data:`DEVICES` (or ``cuda:N``).
    run_dir : str or None
        Checkpoints and logs (kept inside the run's temp directory, so a cancel removes them).
    """

    input_path: str
    output_dir: str
    model: str
    steps: int = 200
    modality: str | None = None
    device: str = "auto"
    run_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise ProtocolError("adapt needs a model to start from; choose a model in the panel or import one.")
        if int(self.steps) < 1:
            raise ProtocolError(f"steps must be >= 1; got {self.steps!r}. Use e.g. 200.")
        if self.modality is not None and self.modality not in MODALITIES:
            raise ProtocolError(f"modality must be one of {MODALITIES} or None (the model's); got {self.modality!r}.")
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise ProtocolError(f"device must be one of {DEVICES} or cuda:N; got {self.device!r}. Use 'auto'.")


def adapt_arguments(request: AdaptRequest) -> list[str]:
    """Arguments of ``meddenoise adapt`` (after the program) for ``request``.

    Examples
    --------
    >>> adapt_arguments(AdaptRequest("in.nrrd", "/m/out", "mr_default", steps=50, device="cpu"))
    ['adapt', 'in.nrrd', '--model', 'mr_default', '--steps', '50', '--out', '/m/out', '--device', 'cpu', '--progress', 'json']
    """
    args = ["adapt", request.input_path, "--model", str(request.model), "--steps", str(int(request.steps)),
            "--out", request.output_dir, "--device", request.device, "--progress", "json"]
    if request.modality is not None:
        args += ["--modality", request.modality]
    if request.run_dir:
        args += ["--run-dir", request.run_dir]
    return args


def worker_arguments(request: Union[WorkerRequest, AdaptRequest]) -> list[str]:
    """Arguments of the worker for a denoise or an adapt request."""
    return adapt_arguments(request) if isinstance(request, AdaptRequest) else denoise_arguments(request)


def denoise_arguments(request: WorkerRequest) -> list[str]:
    """Arguments of ``meddenoise denoise`` (after the program) for ``request``.

    Examples
    --------
    >>> denoise_arguments(WorkerRequest("in.nrrd", "out.nrrd", modality="mr", tta=2, device="cpu"))[:6]
    ['denoise', 'in.nrrd', 'out.nrrd', '--tta', '2', '--device']
    """
    args = ["denoise", request.input_path, request.output_path, "--tta", str(request.tta),
            "--device", request.device, "--progress", "json"]
    if request.modality is not None:
        args += ["--modality", request.modality]
    if request.model:
        args += ["--model", str(request.model)]
    if request.mc_dropout:
        args += ["--mc-dropout", str(int(request.mc_dropout))]
    if request.uncertainty_source != "tta":
        args += ["--uncertainty-source", request.uncertainty_source]
    if request.std_path:
        args += ["--uncertainty", request.std_path]
    if request.labels_path:
        args += ["--uncertainty-labels", request.labels_path]
    return args


def worker_environment(device: str, *, base: Mapping[str, str] | None = None,
                       pythonpath: Sequence[str] = ()) -> dict[str, str]:
    """Environment of the child process only (the caller's ``os.environ`` is never written).

    ``device == "cpu"`` hides every GPU with ``CUDA_VISIBLE_DEVICES=-1``; ``pythonpath``
    entries go first on ``PYTHONPATH`` so the worker imports the shipped ``MedDenoiseLib``.

    Examples
    --------
    >>> worker_environment("cpu", base={})["CUDA_VISIBLE_DEVICES"]
    '-1'
    """
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PYTHONIOENCODING", "utf-8")
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = "-1"
    paths = [str(p) for p in pythonpath] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


@dataclass(frozen=True)
class Progress:
    """A ``progress`` event: patch ``patch`` of ``patches``, TTA pass ``tta`` of ``tta_total`` (denoise),
    or fine-tuning step ``step`` of ``steps`` with its ``loss`` (adapt)."""

    stage: str = "denoise"
    patch: int = 0
    patches: int = 0
    tta: int = 0
    tta_total: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    fraction: float = 0.0
    step: int = 0
    steps: int = 0
    loss: float | None = None


@dataclass(frozen=True)
class Done:
    """The final ``done`` event: files written and the engine's report (device, seconds, backoff...);
    ``model`` is the exported model directory of an adapt run."""

    outputs: tuple[str, ...] = ()
    report: dict = field(default_factory=dict)
    model: str | None = None


@dataclass(frozen=True)
class LogLine:
    """Any other line; ``level`` is ``ERROR``/``WARNING``/``INFO``/``DEBUG`` when the line says so."""

    text: str
    level: str = ""

    @property
    def message(self) -> str:
        """The text without its ``LEVEL logger:`` prefix."""
        if self.level and self.text.startswith(self.level):
            head, sep, rest = self.text.partition(": ")
            if sep and " " in head:
                return rest.strip()
            return self.text[len(self.level):].strip()
        return self.text


Event = Union[Progress, Done, LogLine]
_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def parse_line(line: str) -> Event:
    """Turn one output line into a :class:`Progress`, :class:`Done` or :class:`LogLine`.

    Malformed JSON, JSON that is not an object and unknown events are log lines.

    Examples
    --------
    >>> parse_line('{"event": "progress", "patch": 2, "patches": 4, "tta": 1, "tta_total": 8}').patch
    2
    >>> parse_line("ERROR meddenoise: bad input").level
    'ERROR'
    """
    text = line.rstrip("\r\n")
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            payload = json.loads(stripped)
        except json.JSONDecodeError:
            payload = None
        if isinstance(payload, dict):
            event = payload.get("event")
            if event == "progress":
                return _progress(payload)
            if event == "done":
                return _done(payload)
    level = next((lv for lv in _LEVELS if stripped.startswith(lv + " ") or stripped.startswith(lv + ":")), "")
    return LogLine(text, "ERROR" if level == "CRITICAL" else level)


def _progress(payload: dict) -> Progress:
    def number(key, kind, default):
        try:
            return kind(payload[key])
        except (KeyError, TypeError, ValueError):
            return default

    eta = payload.get("eta_s")
    step, steps = number("step", int, 0), number("steps", int, 0)
    default_fraction = step / steps if steps > 0 else 0.0
    return Progress(stage=str(payload.get("stage", "denoise")), patch=number("patch", int, 0),
                    patches=number("patches", int, 0), tta=number("tta", int, 0),
                    tta_total=number("tta_total", int, 0), elapsed_s=number("elapsed_s", float, 0.0),
                    eta_s=None if eta is None else number("eta_s", float, None),
                    fraction=min(max(number("fraction", float, default_fraction), 0.0), 1.0),
                    step=step, steps=steps, loss=number("loss", float, None))


def _done(payload: dict) -> Done:
    model = payload.get("model")
    outputs = payload.get("outputs")
    if not isinstance(outputs, (list, tuple)):
        outputs = [p for p in (model, payload.get("denoised")) if p]
    report = payload.get("report")
    return Done(tuple(str(p) for p in outputs), dict(report) if isinstance(report, dict) else {},
                str(model) if model else None)


def format_duration(seconds: float | None) -> str:
    """``"0:42"``, ``"12:03"`` or ``"1:02:03"``; ``"?"`` when unknown.

    Examples
    --------
    >>> format_duration(42.4), format_duration(3723), format_duration(None)
    ('0:42', '1:02:03', '?')
    """
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_progress(progress: Progress) -> str:
    """Progress-bar text, e.g. ``"patch 3/12 · TTA 5/8 · ETA 0:42"`` or ``"step 30/200 · loss 0.0812 · ETA 1:10"``.

    Examples
    --------
    >>> format_progress(Progress(patch=3, patches=12, tta=5, tta_total=8, eta_s=42))
    'patch 3/12 · TTA 5/8 · ETA 0:42'
    >>> format_progress(Progress(stage="adapt", step=30, steps=200, loss=0.08123, eta_s=70))
    'step 30/200 · loss 0.0812 · ETA 1:10'
    """
    if progress.steps:
        loss = "" if progress.loss is None else f" · loss {progress.loss:.4f}"
        return f"step {progress.step}/{progress.steps}{loss} · ETA {format_duration(progress.eta_s)}"
    return (f"patch {progress.patch}/{progress.patches} · TTA {progress.tta}/{progress.tta_total}"
            f" · ETA {format_duration(progress.eta_s)}")


def format_report(report: Mapping) -> str:
    """Status-line summary of a ``done`` report, e.g. ``"Done on cuda in 12.3 s (model mr_demo, TTA 8)"``."""
    text = f"Done on {report.get('device', '?')} in {float(report.get('seconds', 0.0)):.1f} s"
    extras = [f"model {report['model']}"] if report.get("model") else []
    if report.get("tta"):
        extras.append(f"TTA {report['tta']}")
    if report.get("backoff"):
        extras.append("memory back-off: " + "; ".join(str(b) for b in report["backoff"]))
    if report.get("std_scale") not in (None, 1.0):
        floor = float(report.get("std_floor") or 0.0)
        edge = float(report.get("std_edge") or 0.0)
        with_floor = f" with floor {floor:.3g}" if floor else ""
        width = float(report.get("std_edge_width") or 0.0)
        spread = f" spread over {width:.3g} voxel" if edge and width else ""
        with_edge = f" and edge term {edge:.3g} voxel x gradient{spread}" if edge else ""
        extras.append(f"std calibrated x {float(report['std_scale']):.3g}{with_floor}{with_edge}")
    return text + (f" ({', '.join(extras)})" if extras else "")


def error_summary(lines: Sequence[str], returncode: int | None) -> str:
    """The worker's clearest error: its last ``ERROR`` message, else the last line, else the exit code."""
    events = [parse_line(line) for line in lines]
    errors = [e.message for e in events if isinstance(e, LogLine) and e.level == "ERROR" and e.message]
    if errors:
        return errors[-1]
    texts = [e.text.strip() for e in events if isinstance(e, LogLine) and e.text.strip()]
    if texts:
        return f"worker exited with code {returncode}: {texts[-1]}"
    return f"worker exited with code {returncode} and printed nothing"
