"""One worker run on a volume node: export -> worker process -> import, with progress and cancel.

``WorkerJob`` holds what every run shares (temp directory, process, line parsing, cancel,
blocking wait); ``DenoiseJob`` denoises a node and ``AdaptJob`` (:mod:`.adapt`) fine-tunes a
model on it. A job is driven either by a GUI timer (``start`` then ``poll`` every 200 ms,
then ``finish``) or in one blocking call (``wait``). Inputs and outputs travel as NRRD files
in a per-run ``tempfile.mkdtemp`` directory that is deleted whatever happens; output
nodes are created only after the worker succeeded, so a cancelled or failed run leaves
the scene exactly as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from . import nodes
from .protocol import EXIT_CANCELLED, Done, Event, LogLine, Progress, WorkerRequest, worker_arguments
from .protocol import error_summary, format_progress, parse_line, worker_environment
from .runner import WORKER_SCRIPT, WorkerProcess, default_python, engine_directory

logger = logging.getLogger(__name__)
LOG_TAIL_LINES = 20


class WorkerError(RuntimeError):
    """The worker failed; ``str()`` gives its clearest error line plus the last lines it printed.

    Attributes
    ----------
    message : str
        The worker's last ``ERROR`` message (or the exit code when it printed none).
    returncode : int or None
    log_tail : list of str
    """

    def __init__(self, message: str, *, returncode: int | None = None, log_tail: Sequence[str] = (),
                 action: str = "Denoising") -> None:
        self.message, self.returncode, self.log_tail = message, returncode, list(log_tail)
        text = f"{action} failed: {message}"
        if self.log_tail:
            text += "\n\nLast worker output:\n" + "\n".join(self.log_tail)
        super().__init__(text)


class RunCancelled(RuntimeError):
    """The run was cancelled (by the user, Ctrl+C or SIGTERM); nothing was added to the scene."""


@dataclass(frozen=True)
class DenoiseSettings:
    """User choices of one run (see :class:`~MedDenoiseSlicer.protocol.WorkerRequest`)."""

    modality: str | None = None
    tta: int = 8
    device: str = "auto"
    model: str | None = None
    mc_dropout: int = 0
    uncertainty_source: str = "tta"


class WorkerLauncher:
    """Builds and starts the worker; subclass or replace it to run something else (tests).

    Parameters
    ----------
    python : str, optional
        Interpreter with torch (default ``PythonSlicer`` inside Slicer, else ``sys.executable``).
    script : str, optional
        Worker script (default the module's ``Scripts/meddenoise_worker.py``).
    pythonpath : sequence of str, optional
        Prepended to the child's ``PYTHONPATH`` (default: where ``MedDenoiseLib`` lives).
    base_environment : mapping, optional
        Environment the child starts from (default ``os.environ``; inside Slicer the
        application's startup environment, as ``slicer.util.launchConsoleProcess`` does).
    """

    def __init__(self, python: str | None = None, script: str | os.PathLike | None = None,
                 pythonpath: Sequence[str] | None = None, base_environment: Mapping[str, str] | None = None) -> None:
        self.python = python or default_python()
        self.script = str(script or WORKER_SCRIPT)
        self.pythonpath = [str(p) for p in pythonpath] if pythonpath is not None else [str(engine_directory())]
        self.base_environment = dict(base_environment) if base_environment is not None else None

    @classmethod
    def for_slicer(cls) -> "WorkerLauncher":
        """``PythonSlicer`` with Slicer's startup environment, as ``slicer.util.launchConsoleProcess`` uses."""
        import slicer

        try:
            base = slicer.util.startupEnvironment()
        except Exception:  # noqa: BLE001 - older Slicer or slicer-core: the current environment
            base = None
        return cls(python=shutil.which("PythonSlicer"), base_environment=base)

    def command(self, request) -> list[str]:
        """Full command line of the worker for ``request`` (a WorkerRequest or an AdaptRequest)."""
        return [self.python, self.script, *worker_arguments(request)]

    def environment(self, request) -> dict[str, str]:
        """Child environment of ``request`` (see :meth:`device_environment`)."""
        return self.device_environment(request.device)

    def device_environment(self, device: str) -> dict[str, str]:
        """Child environment: CPU forced with ``CUDA_VISIBLE_DEVICES=-1`` for ``"cpu"``, engine on PYTHONPATH."""
        return worker_environment(device, base=self.base_environment, pythonpath=self.pythonpath)

    def process(self, request) -> WorkerProcess:
        """A not yet started :class:`WorkerProcess` for ``request``."""
        return WorkerProcess(self.command(request), env=self.environment(request))


class ProgressLogger:
    """Logs progress to the console about every 10 % (batch and ``wait=True`` runs)."""

    def __init__(self, label: str = "", step: float = 0.1) -> None:
        self.label, self.step, self.next = label, step, 0.0

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress) and event.fraction >= self.next:
            logger.info("%s%3.0f%% %s", f"{self.label}: " if self.label else "", 100 * event.fraction,
                        format_progress(event))
            self.next = event.fraction + self.step
        elif isinstance(event, LogLine) and event.level in ("WARNING", "ERROR"):
            logger.warning("worker: %s", event.message)


class WorkerJob:
    """What every worker run on a volume node shares; subclasses build the request and finish.

    Parameters
    ----------
    volume_node : vtkMRMLScalarVolumeNode
        Input (never modified).
    launcher : WorkerLauncher, optional
        Starts the worker (inject a fake one in tests).
    temp_root : str, optional
        Parent of the per-run temp directory (Slicer's temp directory in the GUI).
    """

    #: Word used in messages ("Denoising failed: ...").
    action = "Denoising"
    #: Message of :class:`RunCancelled`.
    cancelled_text = "denoising was cancelled; nothing was added to the scene."

    def __init__(self, volume_node, *, launcher: WorkerLauncher | None = None, temp_root: str | None = None) -> None:
        if volume_node is None or volume_node.GetImageData() is None:
            raise ValueError("select an input volume that holds voxels; the input is empty.")
        if volume_node.GetScene() is None:
            raise ValueError("the input volume must be in a scene (add it with slicer.mrmlScene.AddNode).")
        components = volume_node.GetImageData().GetNumberOfScalarComponents()
        if components != 1:
            raise ValueError(f"the input volume must have 1 component per voxel; got {components} (colour or vector "
                             "image). Convert it first with the 'Vector to Scalar Volume' module.")
        self.volume_node = volume_node
        self.launcher = launcher or WorkerLauncher()
        self.temp_root = temp_root
        self.temp_dir: str | None = None
        self.request = None
        self.process: WorkerProcess | None = None
        self.state = "created"
        self.progress: Progress | None = None
        self.done: Done | None = None
        self.log: list[str] = []
        self._started_at: float | None = None
        self._first_step: tuple[float, int] | None = None

    # -- start / poll ----------------------------------------------------------------------------
    def _make_request(self, folder: Path):
        """Export what the worker needs into ``folder`` and return its request (subclasses)."""
        raise NotImplementedError

    def _describe(self) -> str:
        return f"{self.action.lower()} {self.volume_node.GetName()!r}"

    def start(self) -> "WorkerJob":
        """Export the input and launch the worker; the temp dir is removed again if that fails."""
        if self.state != "created":
            raise RuntimeError(f"a {type(self).__name__} runs once; create a new one for another run.")
        self.temp_dir = tempfile.mkdtemp(prefix="MedDenoise-", dir=self.temp_root)
        try:
            self.request = self._make_request(Path(self.temp_dir))
            self.process = self.launcher.process(self.request)
            self._started_at = time.monotonic()
            self.process.start()
        except BaseException:
            self.state = "failed"
            self._cleanup()
            raise
        self.state = "running"
        logger.info("MedDenoise: %s (%s)", self._describe(), self.request)
        return self

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def finished(self) -> bool:
        """True once the worker has exited and all its output was polled."""
        return self.process is not None and self.process.finished

    def poll(self, timeout: float = 0.0) -> list[Event]:
        """Parse what the worker printed since the last call (non-blocking by default)."""
        if self.process is None or self.state not in ("running",):
            return []
        events = []
        for line in self.process.poll_lines(timeout=timeout):
            event = parse_line(line)
            if isinstance(event, Progress):
                event = self.progress = self._timed(event)
            elif isinstance(event, Done):
                self.done = event
            else:
                self.log.append(event.text)
            events.append(event)
        return events

    def _timed(self, event: Progress) -> Progress:
        """Step-counted progress (adapt) carries no timing: add elapsed and an ETA from the step rate."""
        if not event.steps or event.eta_s is not None:
            return event
        now = time.monotonic()
        if self._first_step is None:
            self._first_step = (now, event.step)
        first_time, first_step = self._first_step
        eta = None
        if event.step > first_step:
            eta = (now - first_time) / (event.step - first_step) * max(event.steps - event.step, 0)
        return replace(event, elapsed_s=now - (self._started_at or now), eta_s=eta)

    def log_tail(self, count: int = LOG_TAIL_LINES) -> list[str]:
        """The last ``count`` log lines of the worker (progress JSON excluded)."""
        return self.log[-count:]

    # -- end -----------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Kill the worker's whole process tree, delete the temp dir (and anything half-written)."""
        if self.state != "running":
            return
        if self.process is not None:
            self.process.cancel()
        self.state = "cancelled"
        self._cleanup()
        self._discard()
        logger.info("MedDenoise: cancelled; %s", self.cancelled_text)

    def _require_finished(self) -> None:
        """Raise RunCancelled for a cancelled job, RuntimeError while the worker still runs."""
        if self.state == "cancelled":
            raise RunCancelled(self.cancelled_text)
        if self.state != "running" or not self.finished:
            raise RuntimeError("finish() needs a worker that has exited; call poll() until job.finished.")

    def _check_exit(self) -> int:
        """Read the last lines; raise RunCancelled / WorkerError unless the worker succeeded with its done line."""
        self.poll()
        code = self.process.returncode
        if code == EXIT_CANCELLED or (code is not None and code < 0 and self.process.cancelled):
            self.state = "cancelled"
            raise RunCancelled(self.cancelled_text)
        if code != 0 or self.done is None:
            self.state = "failed"
            message = error_summary(self.log, code) if code != 0 else "worker ended without its 'done' line"
            raise WorkerError(message, returncode=code, log_tail=self.log_tail(), action=self.action)
        return code

    def wait(self, on_event: Callable[[Event], None] | None = None):
        """Run to the end in this thread (console and tests); Ctrl+C cancels the worker.

        Returns what :meth:`finish` returns.
        """
        if self.state == "created":
            self.start()
        callback = on_event or ProgressLogger(self.volume_node.GetName())
        try:
            while self.state == "running" and not self.finished:
                for event in self.poll(timeout=0.1):
                    callback(event)
        except BaseException:  # Ctrl+C, or a failing callback: never leave the worker running
            self.cancel()
            raise
        return self.finish()

    def finish(self):
        raise NotImplementedError

    def _cleanup(self) -> None:
        """Delete the run's temp directory (``self.temp_dir`` keeps its path for inspection)."""
        if self.temp_dir and os.path.isdir(self.temp_dir):
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _discard(self) -> None:
        """Remove outputs a cancelled or failed run left outside the temp dir (subclasses)."""


class DenoiseJob(WorkerJob):
    """Denoise one volume node out of process.

    Parameters
    ----------
    volume_node : vtkMRMLScalarVolumeNode
        Input (never modified).
    settings : DenoiseSettings
    launcher : WorkerLauncher, optional
        Starts the worker (inject a fake one in tests).
    output_node, labels_node : optional
        Existing nodes to fill instead of creating ``"<input> denoised"`` / ``"<input> uncertainty"``.
    with_labels : bool
        Also produce the uncertainty label map (default True).
    temp_root : str, optional
        Parent of the per-run temp directory (Slicer's temp directory in the GUI).
    """

    def __init__(self, volume_node, settings: DenoiseSettings | None = None, *, launcher: WorkerLauncher | None = None,
                 output_node=None, labels_node=None, with_labels: bool = True, temp_root: str | None = None) -> None:
        super().__init__(volume_node, launcher=launcher, temp_root=temp_root)
        self.settings = settings or DenoiseSettings()
        self.output_node, self.labels_node, self.with_labels = output_node, labels_node, with_labels
        self.outputs: nodes.OutputNodes | None = None

    def _make_request(self, folder: Path) -> WorkerRequest:
        input_path = nodes.export_volume(self.volume_node, str(folder / "input.nrrd"))
        return WorkerRequest(
            input_path=input_path, output_path=str(folder / "denoised.nrrd"),
            labels_path=str(folder / "uncertainty_labels.nrrd") if self.with_labels else None,
            modality=self.settings.modality, tta=int(self.settings.tta), device=self.settings.device,
            model=self.settings.model or None, mc_dropout=int(self.settings.mc_dropout),
            uncertainty_source=self.settings.uncertainty_source)

    def finish(self):
        """Turn a finished run into nodes.

        Returns
        -------
        nodes.OutputNodes
            ``(denoised, uncertainty, report)``.

        Raises
        ------
        RunCancelled
            The run was cancelled.
        WorkerError
            The worker failed; the message carries its ERROR line and log tail.
        """
        if self.state == "succeeded":
            return self.outputs
        self._require_finished()
        try:
            code = self._check_exit()
            if self.volume_node.GetScene() is None:
                self.state = "failed"
                raise WorkerError("the input volume was removed from the scene during the run", returncode=code)
            try:
                self.outputs = nodes.add_output_nodes(
                    self.volume_node, self.request.output_path, self.request.labels_path,
                    denoised_node=self.output_node, labels_node=self.labels_node, report=self.done.report)
            except nodes.OutputError as exc:
                self.state = "failed"
                raise WorkerError(str(exc), returncode=code, log_tail=self.log_tail()) from exc
            self.state = "succeeded"
            for step in self.done.report.get("backoff") or ():
                logger.warning("MedDenoise: %s", step)
            return self.outputs
        except BaseException:
            if self.state == "running":
                self.state = "failed"
            raise
        finally:
            self._cleanup()
