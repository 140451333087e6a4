"""One denoising run of a volume node: export -> worker process -> import, with progress and cancel.

``DenoiseJob`` is driven either by a GUI timer (``start`` then ``poll`` every 200 ms, then
``finish``) or in one blocking call (``wait``). Inputs and outputs travel as NRRD files
in a per-run ``tempfile.mkdtemp`` directory that is deleted whatever happens; output
nodes are created only after the worker succeeded, so a cancelled or failed run leaves
the scene exactly as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from . import nodes
from .protocol import EXIT_CANCELLED, Done, Event, LogLine, Progress, WorkerRequest, denoise_arguments
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

    def __init__(self, message: str, *, returncode: int | None = None, log_tail: Sequence[str] = ()) -> None:
        self.message, self.returncode, self.log_tail = message, returncode, list(log_tail)
        text = f"Denoising failed: {message}"
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

    def command(self, request: WorkerRequest) -> list[str]:
        """Full command line of the worker for ``request``."""
        return [self.python, self.script, *denoise_arguments(request)]

    def environment(self, request: WorkerRequest) -> dict[str, str]:
        """Child environment of ``request`` (see :meth:`device_environment`)."""
        return self.device_environment(request.device)

    def device_environment(self, device: str) -> dict[str, str]:
        """Child environment: CPU forced with ``CUDA_VISIBLE_DEVICES=-1`` for ``"cpu"``, engine on PYTHONPATH."""
        return worker_environment(device, base=self.base_environment, pythonpath=self.pythonpath)

    def process(self, request: WorkerRequest) -> WorkerProcess:
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


class DenoiseJob:
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
        if volume_node is None or volume_node.GetImageData() is None:
            raise ValueError("select an input volume that holds voxels; the input is empty.")
        if volume_node.GetScene() is None:
            raise ValueError("the input volume must be in a scene (add it with slicer.mrmlScene.AddNode).")
        components = volume_node.GetImageData().GetNumberOfScalarComponents()
        if components != 1:
            raise ValueError(f"the input volume must have 1 component per voxel; got {components} (colour or vector "
                             "image). Convert it first with the 'Vector to Scalar Volume' module.")
        self.volume_node = volume_node
        self.settings = settings or DenoiseSettings()
        self.launcher = launcher or WorkerLauncher()
        self.output_node, self.labels_node, self.with_labels = output_node, labels_node, with_labels
        self.temp_root = temp_root
        self.temp_dir: str | None = None
        self.request: WorkerRequest | None = None
        self.process: WorkerProcess | None = None
        self.state = "created"
        self.progress: Progress | None = None
        self.done: Done | None = None
        self.log: list[str] = []
        self.outputs: nodes.OutputNodes | None = None

    # -- start / poll ----------------------------------------------------------------------------
    def start(self) -> "DenoiseJob":
        """Export the input and launch the worker; the temp dir is removed again if that fails."""
        if self.state != "created":
            raise RuntimeError("a DenoiseJob runs once; create a new one for another run.")
        self.temp_dir = tempfile.mkdtemp(prefix="MedDenoise-", dir=self.temp_root)
        try:
            folder = Path(self.temp_dir)
            input_path = nodes.export_volume(self.volume_node, str(folder / "input.nrrd"))
            self.request = WorkerRequest(
                input_path=input_path, output_path=str(folder / "denoised.nrrd"),
                labels_path=str(folder / "uncertainty_labels.nrrd") if self.with_labels else None,
                modality=self.settings.modality, tta=int(self.settings.tta), device=self.settings.device,
                model=self.settings.model or None, mc_dropout=int(self.settings.mc_dropout))
            self.process = self.launcher.process(self.request)
            self.process.start()
        except BaseException:
            self.state = "failed"
            self._cleanup()
            raise
        self.state = "running"
        logger.info("MedDenoise: denoising %r (%s)", self.volume_node.GetName(), self.settings)
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
                self.progress = event
            elif isinstance(event, Done):
                self.done = event
            else:
                self.log.append(event.text)
            events.append(event)
        return events

    def log_tail(self, count: int = LOG_TAIL_LINES) -> list[str]:
        """The last ``count`` log lines of the worker (progress JSON excluded)."""
        return self.log[-count:]

    # -- end -----------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Kill the worker's whole process tree, delete the temp dir; the scene is left untouched."""
        if self.state != "running":
            return
        if self.process is not None:
            self.process.cancel()
        self.state = "cancelled"
        self._cleanup()
        logger.info("MedDenoise: cancelled; no output was added")

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
        if self.state == "cancelled":
            raise RunCancelled("denoising was cancelled; nothing was added to the scene.")
        if self.state == "succeeded":
            return self.outputs
        if self.state != "running" or not self.finished:
            raise RuntimeError("finish() needs a worker that has exited; call poll() until job.finished.")
        self.poll()
        code = self.process.returncode
        try:
            if code == EXIT_CANCELLED or (code is not None and code < 0 and self.process.cancelled):
                self.state = "cancelled"
                raise RunCancelled("denoising was cancelled; nothing was added to the scene.")
            if code != 0 or self.done is None:
                self.state = "failed"
                message = error_summary(self.log, code) if code != 0 else "worker ended without its 'done' line"
                raise WorkerError(message, returncode=code, log_tail=self.log_tail())
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

    def _cleanup(self) -> None:
        """Delete the run's temp directory (``self.temp_dir`` keeps its path for inspection)."""
        if self.temp_dir and os.path.isdir(self.temp_dir):
            shutil.rmtree(self.temp_dir, ignore_errors=True)
