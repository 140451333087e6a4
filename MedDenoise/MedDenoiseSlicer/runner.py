"""The worker process: start, read lines without blocking, cancel the whole process tree.

Only ``subprocess`` and ``threading`` are used (no Qt, no ``slicer.app``), so the same
runner serves the GUI (a ``qt.QTimer`` in the Widget calls :meth:`WorkerProcess.poll_lines`),
the Python console and tests (blocking :meth:`WorkerProcess.run`). A reader thread moves
the child's merged stdout/stderr into a queue; nothing else is shared between threads.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

logger = logging.getLogger(__name__)

#: The worker script shipped with the module (``Scripts/meddenoise_worker.py``).
WORKER_SCRIPT = Path(__file__).resolve().parents[1] / "Scripts" / "meddenoise_worker.py"
_EOF = object()


def module_directory() -> Path:
    """Directory of ``MedDenoise.py``; in an installed Slicer module ``MedDenoiseLib`` ships beside it."""
    return Path(__file__).resolve().parents[1]


def engine_directory() -> Path:
    """Directory that holds the ``MedDenoiseLib`` package the worker must import.

    The module directory when the engine is shipped there (installed extension), else
    the repository root (source checkout, tests).
    """
    here = module_directory()
    for candidate in (here, here.parent):
        if (candidate / "MedDenoiseLib" / "__init__.py").is_file():
            return candidate
    return here


def default_python() -> str:
    """``PythonSlicer`` when it is on ``PATH`` (inside Slicer), else this interpreter."""
    return shutil.which("PythonSlicer") or sys.executable


class WorkerProcess:
    """One child process whose output lines are read by a background thread.

    Parameters
    ----------
    argv : sequence of str
        Full command line, program first.
    env : mapping, optional
        Environment of the child only (default: a copy of ``os.environ``).
    cwd : str, optional
        Working directory of the child.
    popen : callable, optional
        Replacement for ``subprocess.Popen`` (tests).

    Examples
    --------
    >>> proc = WorkerProcess([sys.executable, "-c", "print('hello')"])
    >>> proc.run()
    0
    >>> proc.lines[-1]
    'hello'
    """

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
                 popen: Callable[..., subprocess.Popen] = subprocess.Popen) -> None:
        self.argv = [str(a) for a in argv]
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen = popen
        self._process: subprocess.Popen | None = None
        self._queue: queue.Queue = queue.Queue()
        self._reader: threading.Thread | None = None
        self._eof = False
        self.lines: list[str] = []
        self.cancelled = False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "WorkerProcess":
        """Launch the child in its own process group / session and start the reader thread."""
        if self._process is not None:
            raise RuntimeError("WorkerProcess.start() was already called; create a new WorkerProcess per run.")
        kwargs = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                      bufsize=1, encoding="utf-8", errors="replace", env=self.env, cwd=self.cwd)
        if os.name == "posix":
            kwargs["start_new_session"] = True
        else:  # Windows: a new process group so the tree can be stopped together
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        logger.debug("starting worker: %s", " ".join(self.argv))
        self._process = self._popen(self.argv, **kwargs)
        self._reader = threading.Thread(target=self._read, name="MedDenoiseWorkerReader", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        stream = self._process.stdout
        try:
            for line in iter(stream.readline, ""):
                self._queue.put(line.rstrip("\r\n"))
        except (OSError, ValueError):  # pipe closed underneath us after a kill
            pass
        finally:
            self._queue.put(_EOF)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        """Exit status once the child has ended (negative: killed by that signal), else None."""
        return None if self._process is None else self._process.poll()

    @property
    def finished(self) -> bool:
        """True once the child has exited and every line it printed has been polled."""
        return self._process is not None and self._eof and self._process.poll() is not None

    # -- reading ------------------------------------------------------------------------------
    def poll_lines(self, timeout: float = 0.0) -> list[str]:
        """Lines printed since the last call; never blocks longer than ``timeout`` seconds."""
        new: list[str] = []
        deadline = time.monotonic() + max(timeout, 0.0)
        while not self._eof:
            wait = deadline - time.monotonic()
            try:
                item = self._queue.get(block=wait > 0 and not new, timeout=wait if wait > 0 else None)
            except queue.Empty:
                break
            if item is _EOF:
                self._eof = True
                if self._process is not None:
                    self._process.wait()
                break
            new.append(item)
        self.lines.extend(new)
        return new

    def wait(self, timeout: float | None = None) -> int:
        """Block until the child has exited and its output is drained; returns the exit status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.argv, timeout)
            self.poll_lines(timeout=0.1)
        return self._process.returncode

    def run(self, on_line: Callable[[str], None] | None = None) -> int:
        """Start (if needed), forward each line to ``on_line`` and return the exit status.

        Ctrl+C in the console cancels the child before the KeyboardInterrupt propagates.
        """
        if self._process is None:
            self.start()
        try:
            while not self.finished:
                for line in self.poll_lines(timeout=0.1):
                    if on_line is not None:
                        on_line(line)
        except KeyboardInterrupt:
            self.cancel()
            raise
        return self._process.returncode

    # -- cancel -------------------------------------------------------------------------------
    def cancel(self, timeout: float = 5.0) -> None:
        """Kill the child and every process it started (its process group), then reap it."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        self.cancelled = True
        kill_process_tree(process)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("worker %s did not exit %.0f s after SIGKILL", process.pid, timeout)
        if self._reader is not None:
            self._reader.join(timeout=1.0)


def kill_process_tree(process: subprocess.Popen) -> None:
    """Kill ``process`` and its descendants.

    POSIX: the child leads its own session (``start_new_session``), so ``os.killpg``
    reaches every process it spawned. Windows: ``psutil`` when present, else ``taskkill /T``.
    """
    if os.name == "posix":
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
        return
    try:
        import psutil  # optional; shipped with Slicer

        parent = psutil.Process(process.pid)
        for child in parent.children(recursive=True):
            child.kill()
        parent.kill()
    except ImportError:
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True, check=False)
    except Exception:  # noqa: BLE001 - the process may already be gone
        process.kill()
