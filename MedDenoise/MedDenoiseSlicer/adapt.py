"""'Adapt to this scan': fine-tune a model self-supervised (Noise2Void) on one volume node, out of process.

``AdaptJob`` exports the node to NRRD in a per-run temp directory and runs ``meddenoise adapt IN
--model M --steps N --out DIR --progress json`` in the worker, exactly like a denoise run
(same launcher, same cancel, same progress machinery). The engine's checkpoints go to the temp
directory too (``--run-dir``), so a cancel or a failure leaves neither the temp directory nor a
half-written model directory behind. On success the exported directory is checked with
:func:`~MedDenoiseSlicer.models.verify_model` (card, weights, sha256) before it is returned.

Adapted models are kept, one directory per run, in a folder the user can write:
``<Slicer settings folder>/MedDenoise/Models`` inside Slicer, ``~/.MedDenoise/Models`` elsewhere,
named ``<input name>_adapted_<YYYYmmdd-HHMMSS>``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import nodes
from .job import WorkerError, WorkerJob, WorkerLauncher
from .models import ModelError, ModelInfo, verify_model
from .protocol import AdaptRequest

logger = logging.getLogger(__name__)
#: Default fine-tuning steps (a few minutes on a CPU with the shipped models).
DEFAULT_ADAPT_STEPS = 200


def default_models_directory() -> Path:
    """Where adapted models go outside Slicer: ``~/.MedDenoise/Models``."""
    return Path.home() / ".MedDenoise" / "Models"


def safe_name(name: str) -> str:
    """A file-system-safe version of a node name (``"MR Head (1)"`` -> ``"MR_Head_1"``).

    Examples
    --------
    >>> safe_name("MR Head (1)"), safe_name("..."), safe_name("a/b\\\\c")
    ('MR_Head_1', 'volume', 'a_b_c')
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name or "").strip("._")
    return cleaned[:60] or "volume"


def adapted_model_directory(models_dir: str | os.PathLike, input_name: str, *, now: float | None = None) -> Path:
    """A new, not yet existing ``<models_dir>/<input>_adapted_<timestamp>`` (``-2``, ``-3``... on a clash)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = Path(models_dir) / f"{safe_name(input_name)}_adapted_{stamp}"
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


@dataclass(frozen=True)
class AdaptSettings:
    """User choices of one adapt run (see :class:`~MedDenoiseSlicer.protocol.AdaptRequest`)."""

    model: str
    steps: int = DEFAULT_ADAPT_STEPS
    modality: str | None = None
    device: str = "auto"


class AdaptJob(WorkerJob):
    """Fine-tune a model on one volume node out of process; ``finish()`` returns the model directory.

    Parameters
    ----------
    volume_node : vtkMRMLScalarVolumeNode
        The noisy scan (never modified).
    settings : AdaptSettings
    output_dir : path
        Model directory to create; it must not exist (it is removed again on cancel or failure).
    launcher : WorkerLauncher, optional
    temp_root : str, optional
        Parent of the per-run temp directory.
    """

    action = "Adapting"
    cancelled_text = "adapting was cancelled; no model was saved."

    def __init__(self, volume_node, settings: AdaptSettings, *, output_dir: str | os.PathLike,
                 launcher: WorkerLauncher | None = None, temp_root: str | None = None) -> None:
        super().__init__(volume_node, launcher=launcher, temp_root=temp_root)
        self.settings = settings
        self.output_dir = str(Path(output_dir).expanduser().absolute())
        if os.path.lexists(self.output_dir):
            raise ValueError(f"the adapted model folder {self.output_dir} already exists; adapting never overwrites "
                             "a model. Choose another folder or leave it to the default.")
        self.model_info: ModelInfo | None = None

    def _make_request(self, folder: Path) -> AdaptRequest:
        parent = Path(self.output_dir).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"cannot create the models folder {parent} ({exc.strerror}); choose a folder you can "
                             "write.") from exc
        if not os.access(parent, os.W_OK):
            raise ValueError(f"the models folder {parent} is not writable; choose a folder you can write.")
        # The card records the scan's file name: name it after the node rather than "input".
        input_path = nodes.export_volume(self.volume_node, str(folder / f"{safe_name(self.volume_node.GetName())}.nrrd"))
        return AdaptRequest(input_path=input_path, output_dir=self.output_dir, model=str(self.settings.model),
                            steps=int(self.settings.steps), modality=self.settings.modality,
                            device=self.settings.device, run_dir=str(folder / "run"))

    def finish(self) -> str:
        """The verified model directory of a finished run.

        Raises
        ------
        RunCancelled
            The run was cancelled (no model directory is left).
        WorkerError
            The worker failed or exported a model that does not verify; the half-written
            directory is removed and the message carries the ERROR line and log tail.
        """
        if self.state == "succeeded":
            return self.output_dir
        self._require_finished()
        try:
            code = self._check_exit()
            try:
                self.model_info = verify_model(self.output_dir)
            except ModelError as exc:
                self.state = "failed"
                raise WorkerError(str(exc), returncode=code, log_tail=self.log_tail(), action=self.action) from exc
            self.state = "succeeded"
            logger.info("MedDenoise: adapted model %s written to %s", self.model_info.title, self.output_dir)
            return self.output_dir
        except BaseException:
            if self.state == "running":
                self.state = "failed"
            self._discard()
            raise
        finally:
            self._cleanup()

    def _discard(self) -> None:
        """Remove the (possibly half-written) model directory: it did not exist before this run."""
        if self.state != "succeeded" and os.path.lexists(self.output_dir):
            shutil.rmtree(self.output_dir, ignore_errors=True)
