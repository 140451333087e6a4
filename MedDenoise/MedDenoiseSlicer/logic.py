"""The module's logic without Slicer's application: what ``MedDenoiseLogic`` inherits.

Everything here runs on ``slicer-core`` (tests) and inside Slicer (GUI and Python console)::

    logic = slicer.util.getModuleLogic("MedDenoise")
    denoised, uncertainty, report = logic.denoise(volumeNode, modality="mr", tta=8)
    results = logic.denoiseFiles(["/data/a.nii.gz", "/data/b.nrrd"], "/data/out", modality="mr")
    modelDir = logic.adapt(volumeNode, modality="mr", steps=200)   # then logic.denoise(..., model=modelDir)
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

from . import views
from .adapt import DEFAULT_ADAPT_STEPS, AdaptJob, AdaptSettings, adapted_model_directory, default_models_directory
from .batch import FileResult, denoise_files
from .dicom_export import add_to_dicom_database, export_derived_series
from .job import DenoiseJob, DenoiseSettings, WorkerLauncher
from .modality import guess_node_modality
from .models import (ModelError, ModelInfo, default_model_name, own_uncertainty_problem, read_card, shipped_models,
                     verify_model)
from .nodes import OutputNodes
from .protocol import MODALITIES, UNCERTAINTY_METHODS, UNCERTAINTY_SOURCES

logger = logging.getLogger(__name__)


class DenoiseLogic:
    """Start, finish and batch MedDenoise runs; all arguments are explicit (no widget state).

    Parameters
    ----------
    launcher : WorkerLauncher, optional
        How the worker process is started (default ``PythonSlicer`` + the module's worker script).
    """

    def __init__(self, launcher: WorkerLauncher | None = None) -> None:
        self.launcher = launcher

    # -- choices ---------------------------------------------------------------------------------
    def workerLauncher(self) -> WorkerLauncher:
        """The launcher in use (created on first use, so nothing starts at import).

        Inside Slicer: ``PythonSlicer`` with Slicer's startup environment, as ``launchConsoleProcess`` uses;
        elsewhere this Python with ``os.environ``.
        """
        if self.launcher is None:
            self.launcher = WorkerLauncher.for_slicer()
        return self.launcher

    def guessModality(self, volumeNode) -> tuple[str, str]:
        """``(modality, reason)`` from the DICOM Modality attribute or the intensity range."""
        return guess_node_modality(volumeNode)

    def _resolveModality(self, volumeNode, modality: str | None) -> str:
        """``modality`` checked, or guessed from the volume (and logged) when None."""
        if modality is None:
            modality, reason = self.guessModality(volumeNode)
            logger.info("MedDenoise: modality guessed as %s (%s)", modality, reason)
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}; got {modality!r}. Use e.g. 'mr'.")
        return modality

    def availableModels(self, modality: str | None = None) -> list[ModelInfo]:
        """Shipped models (of ``modality`` when given)."""
        return shipped_models(modality)

    def defaultModel(self, modality: str) -> str | None:
        """Name of the modality's default shipped model, or None."""
        return default_model_name(modality)

    def modelChoices(self, modality: str, current: str = "") -> list[tuple[str, str, str]]:
        """``(value, kind, name)`` rows of the model selector, ``value`` being what ``model=`` takes.

        First ``("", "default", <default model>)`` (kind ``"none"`` when no default is installed), then
        the shipped models of ``modality`` (``"shipped"``), then ``current`` when it is a model
        directory (``"adapted"`` when its card says ``adapted_from``, else ``"imported"``).
        """
        default = self.defaultModel(modality)
        rows = [("", "default" if default else "none", default or "")]
        rows += [(m.name, "shipped", m.title or m.name) for m in self.availableModels(modality)]
        if current and current not in [value for value, _kind, _name in rows]:
            try:
                adapted = "adapted_from" in read_card(current)[0]
            except ModelError:
                adapted = False
            rows.append((current, "adapted" if adapted else "imported", os.path.basename(current.rstrip("/\\"))))
        return rows

    def verifyModel(self, path: str) -> ModelInfo:
        """Check an imported model directory (card, weights, sha256); raises ModelError."""
        return verify_model(path)

    @staticmethod
    def mcDropoutSamples(uncertaintyMethod: str, samples: int = 8) -> int:
        """Monte-Carlo dropout samples the engine gets for an uncertainty method (0 for ``"tta"`` and ``"model"``).

        Raises
        ------
        ValueError
            For an unknown method, or ``"mcdropout"`` with fewer than 2 samples.
        """
        if uncertaintyMethod not in UNCERTAINTY_METHODS:
            raise ValueError(f"uncertaintyMethod must be one of {UNCERTAINTY_METHODS}; got {uncertaintyMethod!r}. "
                             "Use 'tta' (spread over the TTA views).")
        if uncertaintyMethod == "mcdropout":
            if int(samples) < 2:
                raise ValueError(f"MC dropout needs at least 2 samples; got {samples}. Use 8.")
            return int(samples)
        return 0

    # -- one volume ------------------------------------------------------------------------------
    def startDenoise(self, volumeNode, *, modality: str | None = None, tta: int = 8, device: str = "auto",
                     model: str | None = None, mcDropout: int = 0, uncertaintyMethod: str | None = None,
                     outputVolume=None, uncertaintyVolume=None, tempRoot: str | None = None) -> DenoiseJob:
        """Export ``volumeNode`` and start the worker; returns the running :class:`DenoiseJob`.

        ``modality=None`` guesses it; ``uncertaintyMethod`` (``"tta"``/``"mcdropout"``/``"model"``), when
        given, decides ``mcDropout`` (``"mcdropout"`` keeps ``mcDropout`` or uses 8) and what the std map
        shows (``"model"``: the model's own uncertainty, e.g. DUAL-NET's).

        Raises
        ------
        ValueError
            Invalid input or choices (e.g. the output node is the input node, or ``"model"`` with a model
            that has no uncertainty output of its own).
        """
        if volumeNode is None:
            raise ValueError("select an input volume.")
        for name, node in (("output volume", outputVolume), ("uncertainty label map", uncertaintyVolume)):
            if node is not None and node is volumeNode:
                raise ValueError(f"the {name} must differ from the input volume (the source is never overwritten); "
                                 "choose 'Create new' in the output selector.")
        if outputVolume is not None and outputVolume.IsA("vtkMRMLLabelMapVolumeNode"):
            raise ValueError("the output volume must be a scalar volume, not a label map; choose 'Create new'.")
        modality = self._resolveModality(volumeNode, modality)
        settings = self._settings(modality, tta, device, model, mcDropout, uncertaintyMethod)
        job = DenoiseJob(volumeNode, settings, launcher=self.workerLauncher(), output_node=outputVolume,
                         labels_node=uncertaintyVolume, temp_root=tempRoot)
        return job.start()

    def finishDenoise(self, job: DenoiseJob, *, showResult: bool = True, opacity: float = 0.5) -> OutputNodes:
        """Import the outputs of a finished job; with ``showResult`` set the compare layers.

        Raises RunCancelled or WorkerError like :meth:`DenoiseJob.finish`.
        """
        outputs = job.finish()
        if showResult:
            views.show_compare(job.volume_node, outputs.denoised, outputs.uncertainty, opacity=opacity)
        return outputs

    def denoise(self, volumeNode, *, modality: str | None = None, tta: int = 8, device: str = "auto",
                model: str | None = None, mcDropout: int = 0, uncertaintyMethod: str | None = None,
                outputVolume=None, uncertaintyVolume=None, wait: bool = True, showResult: bool = True,
                opacity: float = 0.5, tempRoot: str | None = None):
        """Denoise one volume node.

        Parameters
        ----------
        volumeNode : vtkMRMLScalarVolumeNode
            Input; never modified.
        modality : {"ct", "mr", "us", "xr"}, optional
            Guessed from DICOM Modality / intensities when None.
        tta : {1, 2, 4, 8}
            Flip passes (uncertainty = spread over them).
        device : {"auto", "cuda", "cpu"}
            ``"cpu"`` hides the GPUs from the worker (``CUDA_VISIBLE_DEVICES=-1``).
        model : str, optional
            Shipped model name or model directory; default the modality's shipped model.
        mcDropout : int
            Monte-Carlo dropout samples per flip (0 = off).
        uncertaintyMethod : {"tta", "mcdropout", "model"}, optional
            Overrides ``mcDropout`` as in the panel; ``"model"`` shows the model's own uncertainty (a model
            whose card says ``own_uncertainty``, e.g. DUAL-NET; a ValueError names the fix otherwise).
        outputVolume, uncertaintyVolume : optional
            Existing nodes to fill instead of new ``"<input> denoised"`` / ``"<input> uncertainty"``.
        wait : bool
            True: block until done (progress is logged) and return the nodes; False: return the
            running job (``job.poll()``, ``job.cancel()``, then ``logic.finishDenoise(job)``).
        showResult : bool
            Set the compare layers (original / denoised at ``opacity`` / uncertainty labels).

        Returns
        -------
        OutputNodes or DenoiseJob
            ``(denoised, uncertainty, report)`` when ``wait``; the job otherwise.

        Raises
        ------
        ValueError, RunCancelled, WorkerError

        Examples
        --------
        In Slicer's Python console::

            logic = slicer.util.getModuleLogic("MedDenoise")
            denoised, uncertainty, report = logic.denoise(getNode("MRHead"), modality="mr", tta=8)
        """
        job = self.startDenoise(volumeNode, modality=modality, tta=tta, device=device, model=model,
                                mcDropout=mcDropout, uncertaintyMethod=uncertaintyMethod, outputVolume=outputVolume,
                                uncertaintyVolume=uncertaintyVolume, tempRoot=tempRoot)
        if not wait:
            return job
        job.wait()
        return self.finishDenoise(job, showResult=showResult, opacity=opacity)

    # -- files -----------------------------------------------------------------------------------
    def denoiseFiles(self, inputPaths: Sequence[str], outputDir: str, *, modality: str | None = None, tta: int = 8,
                     device: str = "auto", model: str | None = None, mcDropout: int = 0,
                     uncertaintyMethod: str | None = None, stopOnError: bool = False) -> list[FileResult]:
        """Denoise files into ``outputDir`` (``<name>_denoised``, ``<name>_uncertainty``); progress is logged.

        ``modality=None`` lets the engine guess each file; ``uncertaintyMethod`` as in :meth:`denoise`.
        Returns one FileResult per input (``.ok``, ``.denoised``, ``.uncertainty``, ``.report``, ``.error``).
        """
        if isinstance(inputPaths, (str, bytes)):
            inputPaths = [inputPaths]
        if modality is not None and modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES} or None (guess per file); got {modality!r}.")
        settings = self._settings(modality, tta, device, model, mcDropout, uncertaintyMethod)
        return denoise_files(list(inputPaths), outputDir, settings=settings, launcher=self.workerLauncher(),
                             stop_on_error=stopOnError)

    def _settings(self, modality, tta, device, model, mcDropout, uncertaintyMethod) -> DenoiseSettings:
        """The run's settings; ``uncertaintyMethod`` (when given) decides MC dropout and the std map's source."""
        source = "tta"
        if uncertaintyMethod is not None:
            mcDropout = self.mcDropoutSamples(uncertaintyMethod, mcDropout or 8)
            source = UNCERTAINTY_SOURCES[uncertaintyMethod]
        if source == "model":
            problem = own_uncertainty_problem(model or None, modality)
            if problem:
                raise ValueError(problem)
        return DenoiseSettings(modality=modality, tta=int(tta), device=device, model=model or None,
                               mc_dropout=int(mcDropout), uncertainty_source=source)

    # -- compare ---------------------------------------------------------------------------------
    def setForegroundOpacity(self, scene, opacity: float) -> int:
        """Fade every slice view between original (0) and denoised (1)."""
        return views.set_foreground_opacity(scene, opacity)

    def showCompare(self, source, denoised, uncertainty=None, *, opacity: float = 0.5) -> list:
        """Background original, foreground denoised at ``opacity``, label layer uncertainty."""
        return views.show_compare(source, denoised, uncertainty, opacity=opacity)

    def showSideBySide(self, source, denoised, uncertainty=None) -> bool:
        """Original left (Red), denoised right (Yellow), linked."""
        return views.show_side_by_side(source, denoised, uncertainty)

    # -- DICOM -----------------------------------------------------------------------------------
    def exportDicom(self, denoisedVolume, outputDir: str, *, sourceVolume=None, seriesDescription: str | None = None,
                    addToDatabase: bool = False):
        """Write a denoised output as a derived DICOM series in the source's study; returns its ``DerivedSeries``.

        ImageType DERIVED\\SECONDARY, new Series/SOP Instance UIDs, the model and its sha256 in
        DerivationDescription; patient/study from the source's DICOM file or subject hierarchy.
        ``outputDir`` must be new or hold no DICOM files (the source series is never touched);
        ``addToDatabase`` indexes the series in Slicer's DICOM database. Raises ValueError or the
        engine's InputError/ConfigError with a fix.
        """
        written = export_derived_series(denoisedVolume, outputDir, source_node=sourceVolume,
                                        series_description=seriesDescription)
        if addToDatabase:
            add_to_dicom_database(str(written.directory))
        return written

    # -- adapt -----------------------------------------------------------------------------------
    def adaptedModelsDirectory(self) -> str:
        """Folder that receives adapted models (``~/.MedDenoise/Models``; Slicer's settings folder in Slicer)."""
        return str(default_models_directory())

    def startAdapt(self, volumeNode, *, modality: str | None = None, model: str | None = None,
                   steps: int = DEFAULT_ADAPT_STEPS, device: str = "auto", modelsDir: str | None = None,
                   outputDir: str | None = None, tempRoot: str | None = None) -> AdaptJob:
        """Export ``volumeNode`` and start ``meddenoise adapt`` in the worker; returns the running :class:`AdaptJob`.

        ``modality=None`` guesses it; ``model=None`` starts from the modality's default model.
        The model goes to ``outputDir``, default a new ``<modelsDir>/<input>_adapted_<timestamp>``
        (``modelsDir`` default :meth:`adaptedModelsDirectory`).

        Raises
        ------
        ValueError
            Invalid input or choices, no model to start from, or an existing ``outputDir``.
        """
        if volumeNode is None:
            raise ValueError("select an input volume.")
        modality = self._resolveModality(volumeNode, modality)
        try:
            valid = int(steps) == float(steps) and int(steps) >= 1
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise ValueError(f"steps must be a whole number >= 1; got {steps!r}. Use e.g. {DEFAULT_ADAPT_STEPS}.")
        model = model or self.defaultModel(modality)
        if not model:
            raise ValueError(f"no default {modality} model is installed to adapt; choose or import a model first.")
        if outputDir is None:
            folder = modelsDir or self.adaptedModelsDirectory()
            outputDir = str(adapted_model_directory(os.path.expanduser(folder), volumeNode.GetName()))
        settings = AdaptSettings(model=str(model), steps=int(steps), modality=modality, device=device)
        job = AdaptJob(volumeNode, settings, output_dir=outputDir, launcher=self.workerLauncher(), temp_root=tempRoot)
        return job.start()

    def finishAdapt(self, job: AdaptJob) -> str:
        """The verified model directory of a finished adapt job (``job.model_info`` describes it).

        Raises RunCancelled or WorkerError like :meth:`AdaptJob.finish`.
        """
        return job.finish()

    def adapt(self, volumeNode, *, modality: str | None = None, model: str | None = None,
              steps: int = DEFAULT_ADAPT_STEPS, device: str = "auto", modelsDir: str | None = None,
              outputDir: str | None = None, wait: bool = True, tempRoot: str | None = None):
        """Fine-tune a model self-supervised (Noise2Void) on this scan (``meddenoise adapt``).

        Parameters
        ----------
        volumeNode : vtkMRMLScalarVolumeNode
            The noisy scan; it is its own training data (no clean reference) and is never modified.
        modality : {"ct", "mr", "us", "xr"}, optional
            Guessed when None.
        model : str, optional
            Shipped model name or model directory to start from; default the modality's default model.
        steps : int
            Fine-tuning steps (200 take minutes on a CPU).
        device : {"auto", "cuda", "cpu"}
            ``"cpu"`` hides the GPUs from the worker.
        modelsDir, outputDir : str, optional
            Where the model is exported: ``outputDir`` itself (must not exist), else a new
            ``<modelsDir>/<input>_adapted_<timestamp>``; ``modelsDir`` defaults to
            :meth:`adaptedModelsDirectory`.
        wait : bool
            True: block until done and return the model directory; False: return the running
            job (``job.poll()``, ``job.cancel()``, then ``logic.finishAdapt(job)``).

        Returns
        -------
        str or AdaptJob
            The adapted model directory (card + weights, sha256 verified), usable as
            ``logic.denoise(..., model=directory)``; the job when not ``wait``.

        Raises
        ------
        ValueError, RunCancelled, WorkerError
            A cancel or failure leaves no model directory and no temp directory.

        Examples
        --------
        In Slicer's Python console::

            logic = slicer.util.getModuleLogic("MedDenoise")
            modelDir = logic.adapt(getNode("MRHead"), modality="mr", steps=200)
            denoised, uncertainty, report = logic.denoise(getNode("MRHead"), modality="mr", model=modelDir)
        """
        job = self.startAdapt(volumeNode, modality=modality, model=model, steps=steps, device=device,
                              modelsDir=modelsDir, outputDir=outputDir, tempRoot=tempRoot)
        if not wait:
            return job
        return job.wait()
