"""MedDenoise: deep-learning denoising of CT, MR, ultrasound and X-ray volumes in 3D Slicer.

The module file holds only what needs Slicer's application: metadata, the typed parameter
node, a thin widget, the logic shim (``DenoiseLogic`` from ``MedDenoiseSlicer`` does the
work, out of process) and the in-Slicer test. Torch is never imported here: the worker
process (``Scripts/meddenoise_worker.py`` under ``PythonSlicer``) is the only place it runs.
"""

import os
import shutil
import tempfile
from typing import Annotated

import qt
import slicer
import vtk
from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from MedDenoiseSlicer import dependencies, selftest
from MedDenoiseSlicer.adapt import DEFAULT_ADAPT_STEPS, AdaptJob
from MedDenoiseSlicer.job import RunCancelled
from MedDenoiseSlicer.logic import DenoiseLogic
from MedDenoiseSlicer.protocol import (DEVICE_LABELS, DEVICES, MODALITIES, MODALITY_LABELS, TTA_CHOICES,
                                       UNCERTAINTY_LABELS, UNCERTAINTY_METHODS, LogLine, Progress, format_progress,
                                       format_report)

POLL_INTERVAL_MS = 200


class MedDenoise(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedDenoise")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Filtering")]
        self.parent.dependencies = []
        self.parent.contributors = ["MedDenoise contributors"]
        self.parent.helpText = _(
            "Denoise CT, MR, ultrasound and X-ray volumes with 2.5D and 3D networks, with test-time augmentation and an "
            "uncertainty label map (low / medium / high). Runs in a separate process: the application stays "
            "responsive and Apply becomes Cancel. 'Adapt to this scan' fine-tunes the model on the input itself "
            "(Noise2Void) and selects the adapted model. From the Python console: "
            "<code>slicer.util.getModuleLogic('MedDenoise').denoise(volumeNode, modality='mr', tta=8)</code>.")
        self.parent.acknowledgementText = _(
            "Built on the MedDenoiseLib engine (PyTorch, SimpleITK) and 3D Slicer's scripted module template.")


@parameterNodeWrapper
class MedDenoiseParameterNode:
    """Panel state, saved with the scene. ``model`` is empty for the modality's default model."""

    inputVolume: vtkMRMLScalarVolumeNode
    modality: Annotated[str, Choice(list(MODALITIES))] = "mr"
    model: str = ""
    tta: Annotated[int, Choice(list(TTA_CHOICES))] = 8
    uncertaintyMethod: Annotated[str, Choice(list(UNCERTAINTY_METHODS))] = "tta"
    mcDropoutSamples: Annotated[int, WithinRange(2, 64)] = 8
    device: Annotated[str, Choice(list(DEVICES))] = "auto"
    outputVolume: vtkMRMLScalarVolumeNode
    uncertaintyVolume: vtkMRMLLabelMapVolumeNode
    opacity: Annotated[float, WithinRange(0.0, 1.0)] = 0.5
    adaptSteps: Annotated[int, WithinRange(1, 10000)] = DEFAULT_ADAPT_STEPS


class MedDenoiseWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Thin panel: reads the parameter node, starts/cancels runs, polls progress with a QTimer."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._timer = None
        self._lastInput = None
        self._lastOutputs = None
        self._modelsKey = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MedDenoise.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MedDenoiseLogic()
        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.connect("timeout()", self.onPollTimer)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.importModelButton.connect("clicked(bool)", self.onImportModel)
        self.ui.modelComboBox.connect("activated(int)", self.onModelChosen)
        self.ui.sideBySideButton.connect("clicked(bool)", self.onSideBySide)
        self.ui.dicomExportButton.connect("clicked(bool)", self.onDicomExport)
        self.ui.adaptButton.connect("clicked(bool)", self.onAdaptButton)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.cancelRun()
        self.removeObservers()
        if self._parameterNode and self._parameterNodeGuiTag:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)

    def onSceneStartClose(self, caller, event) -> None:
        self.cancelRun()
        self._lastOutputs = None
        self.ui.sideBySideButton.enabled = self.ui.dicomExportButton.enabled = False
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first and not first.IsA("vtkMRMLLabelMapVolumeNode"):
                self._parameterNode.inputVolume = first

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self._relabelChoices()
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
            self.updateGUIFromParameterNode()

    def _relabelChoices(self) -> None:
        """connectGui fills combo boxes with raw choice values; show readable labels instead."""
        for combo, labels, values in ((self.ui.modalityComboBox, MODALITY_LABELS, MODALITIES),
                                      (self.ui.deviceComboBox, DEVICE_LABELS, DEVICES),
                                      (self.ui.uncertaintyMethodComboBox, UNCERTAINTY_LABELS, UNCERTAINTY_METHODS)):
            for index, value in enumerate(values):
                combo.setItemText(index, labels[value])

    # -- parameter node -> GUI -----------------------------------------------------------------
    def updateGUIFromParameterNode(self, caller=None, event=None) -> None:
        params = self._parameterNode
        if params is None:
            return
        if params.inputVolume is not self._lastInput:
            self._lastInput = params.inputVolume
            self._guessModality()
        self._fillModels()
        self.ui.mcDropoutSpinBox.enabled = params.uncertaintyMethod == "mcdropout"
        running = self._job is not None
        self.ui.applyButton.enabled = running or bool(params.inputVolume)
        self.ui.adaptButton.enabled = bool(params.inputVolume) and not running
        if self._lastOutputs is not None:
            self.logic.setForegroundOpacity(slicer.mrmlScene, params.opacity)

    def _guessModality(self) -> None:
        volume = self._parameterNode.inputVolume
        if not volume or volume.GetImageData() is None:
            self.ui.modalityGuessLabel.text = ""
            return
        modality, reason = self.logic.guessModality(volume)
        self._parameterNode.modality = modality
        self.ui.modalityGuessLabel.text = _("guessed")
        self.ui.modalityGuessLabel.toolTip = reason

    def _fillModels(self) -> None:
        params = self._parameterNode
        if self._modelsKey == (params.modality, params.model):
            return
        self._modelsKey = (params.modality, params.model)
        labels = {"default": _("Default ({name})"), "none": _("Default (none shipped)"), "shipped": "{name}",
                  "imported": _("{name} (imported)"), "adapted": _("{name} (adapted)")}
        entries = [(value, labels[kind].format(name=name))
                   for value, kind, name in self.logic.modelChoices(params.modality, params.model)]
        values = [value for value, _label in entries]
        combo = self.ui.modelComboBox
        wasBlocked = combo.blockSignals(True)
        combo.clear()
        for value, label in entries:
            combo.addItem(label, value)
        combo.setCurrentIndex(values.index(params.model) if params.model in values else 0)
        combo.blockSignals(wasBlocked)

    def onModelChosen(self, index: int) -> None:
        self._parameterNode.model = self.ui.modelComboBox.itemData(index) or ""

    def onImportModel(self) -> None:
        path = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Model directory (card.json + weights)"))
        if not path:
            return
        with slicer.util.tryWithErrorDisplay(_("This model cannot be used."), waitCursor=True):
            info = self.logic.verifyModel(path)
            if info.modality and info.modality != self._parameterNode.modality:
                self._log(_("Note: model {name} was trained for {m}.").format(name=info.title, m=info.modality))
            self._parameterNode.model = str(info.path)
            self._log(_("Imported model {name} (sha256 verified): {path}").format(name=info.title, path=info.path))

    # -- run -----------------------------------------------------------------------------------------
    def onApplyButton(self) -> None:
        if self._job is not None:
            self.cancelRun()
            return
        params = self._parameterNode
        self._startJob(_("Failed to start denoising."), lambda: self.logic.startDenoise(
            params.inputVolume, modality=params.modality, tta=params.tta, device=params.device,
            model=params.model or None, mcDropout=params.mcDropoutSamples,
            uncertaintyMethod=params.uncertaintyMethod, outputVolume=params.outputVolume,
            uncertaintyVolume=params.uncertaintyVolume, tempRoot=slicer.util.tempDirectory()))

    def onAdaptButton(self) -> None:
        params = self._parameterNode
        self._startJob(_("Failed to start adapting."), lambda: self.logic.startAdapt(
            params.inputVolume, modality=params.modality, model=params.model or None, steps=params.adaptSteps,
            device=params.device, tempRoot=slicer.util.tempDirectory()))

    def _startJob(self, failure: str, start) -> None:
        """Run ``start()`` (a logic call returning a running job) and poll it; Apply becomes Cancel."""
        if self._job is not None:
            return
        with slicer.util.tryWithErrorDisplay(failure, waitCursor=True):
            if not self.logic.installDependencies(askConfirmation=True):
                self.ui.statusLabel.text = _("MedDenoise needs PyTorch and a few packages; nothing was installed.")
                return
            self.ui.logTextEdit.clear()
            self._job = start()
            self._setRunning(True)
            self._timer.start()

    def onPollTimer(self) -> None:
        job = self._job
        if job is None:
            self._timer.stop()
            return
        for event in job.poll():
            if isinstance(event, Progress):
                self.ui.progressBar.value = int(round(1000 * event.fraction))
                self.ui.progressBar.format = format_progress(event)
            elif isinstance(event, LogLine):
                self._log(event.text)
        if job.finished:
            self._timer.stop()
            self._finishRun()

    def _finishRun(self) -> None:
        job, self._job = self._job, None
        self._setRunning(False)
        adapting = isinstance(job, AdaptJob)
        try:
            result = self.logic.finishAdapt(job) if adapting else \
                self.logic.finishDenoise(job, opacity=self._parameterNode.opacity)
        except RunCancelled:
            self.ui.statusLabel.text = self._cancelledText(job)
        except Exception as exc:  # noqa: BLE001 - shown to the user with the worker's log tail
            self.ui.progressBar.format = _("failed")
            self.ui.statusLabel.text = _("Failed: {message}").format(message=getattr(exc, "message", str(exc)))
            self._log(str(exc))
            slicer.util.errorDisplay(_("Adapting failed.") if adapting else _("Denoising failed."), detailedText=str(exc))
        else:
            self.ui.progressBar.value = 1000
            if adapting:
                self._parameterNode.model = result
                self.ui.statusLabel.text = _("Adapted model saved and selected ({name}); press Apply to denoise "
                                             "with it.").format(name=os.path.basename(result))
                self._log(_("Adapted model (sha256 verified): {path}").format(path=result))
                return
            self._lastOutputs = result
            self.ui.statusLabel.text = format_report(result.report)
            self.ui.sideBySideButton.enabled = self.ui.dicomExportButton.enabled = True
            slicer.util.resetSliceViews()

    def cancelRun(self) -> None:
        if self._job is None:
            return
        job, self._job = self._job, None
        if self._timer:
            self._timer.stop()
        job.cancel()
        self._setRunning(False)
        self.ui.progressBar.format = _("cancelled")
        self.ui.statusLabel.text = self._cancelledText(job)

    @staticmethod
    def _cancelledText(job) -> str:
        return _("Cancelled; no model was saved.") if isinstance(job, AdaptJob) else \
            _("Cancelled; nothing was added to the scene.")

    def _setRunning(self, running: bool) -> None:
        self.ui.applyButton.text = _("Cancel") if running else _("Apply")
        self.ui.applyButton.toolTip = _("Stop the worker process; nothing is added.") if running else \
            _("Denoise in a separate process; press again to cancel.")
        for widget in (self.ui.inputsCollapsibleButton, self.ui.optionsCollapsibleButton,
                       self.ui.outputsCollapsibleButton, self.ui.adaptCollapsibleButton):
            widget.enabled = not running
        if running:
            self.ui.progressBar.value = 0
            self.ui.progressBar.format = _("starting worker…")
            text = _("Adapting on {device}…") if isinstance(self._job, AdaptJob) else _("Running on {device}…")
            self.ui.statusLabel.text = text.format(device=DEVICE_LABELS[self._parameterNode.device])
        self.updateGUIFromParameterNode()

    def _log(self, text: str) -> None:
        self.ui.logTextEdit.appendPlainText(text)

    # -- compare / adapt ------------------------------------------------------------------------------
    def onSideBySide(self) -> None:
        if self._lastOutputs is None:
            return
        with slicer.util.tryWithErrorDisplay(_("Side-by-side view failed.")):
            self.logic.showSideBySide(self._parameterNode.inputVolume, self._lastOutputs.denoised,
                                      self._lastOutputs.uncertainty)
            slicer.util.resetSliceViews()

    def onDicomExport(self) -> None:
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("New or empty folder for the series"))
        if not folder or self._lastOutputs is None:
            return
        with slicer.util.tryWithErrorDisplay(_("DICOM export failed."), waitCursor=True):
            series = self.logic.exportDicom(self._lastOutputs.denoised, folder, addToDatabase=True)
            self._log(_("Exported {n} DICOM files (derived series {uid}) to {folder}").format(
                n=len(series.files), uid=series.series_instance_uid, folder=folder))


class MedDenoiseLogic(ScriptedLoadableModuleLogic, DenoiseLogic):
    """Scriptable without the GUI; everything but installing packages comes from ``DenoiseLogic``. Example::

        logic = slicer.util.getModuleLogic("MedDenoise")
        denoised, uncertainty, report = logic.denoise(volumeNode, modality="mr", tta=8)
        logic.denoiseFiles(["/data/a.nii.gz"], "/data/out", modality="mr")
        modelDir = logic.adapt(volumeNode, modality="mr", steps=200)  # then logic.denoise(..., model=modelDir)
    """

    def __init__(self, launcher=None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        DenoiseLogic.__init__(self, launcher)

    def getParameterNode(self):
        return MedDenoiseParameterNode(super().getParameterNode())

    def adaptedModelsDirectory(self) -> str:
        """``<Slicer settings folder>/MedDenoise/Models``: kept across sessions, writable by the user."""
        return os.path.join(os.path.dirname(slicer.app.slicerUserSettingsFilePath), "MedDenoise", "Models")

    def missingDependencies(self) -> list:
        """Packages the worker still needs (``torch`` first), checked without importing them."""
        return dependencies.missing_worker_packages(self.resourcePath("requirements.txt"))

    def installDependencies(self, askConfirmation: bool = True, cpuOnly: bool = False) -> bool:
        """Install what is missing, asking first; never called at import. Returns True when ready."""
        return dependencies.install_worker_packages(self.resourcePath("requirements.txt"),
                                                    ask_confirmation=askConfirmation, cpu_only=cpuOnly)

    def resourcePath(self, relativePath: str) -> str:
        return os.path.join(os.path.dirname(__file__), "Resources", relativePath)


class MedDenoiseTest(ScriptedLoadableModuleTest):
    """Runs the real worker on CPU on a tiny oblique volume with a tiny model (inside Slicer)."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_denoise_tiny_volume_on_cpu()
        self.setUp()
        self.test_cancel_leaves_nothing()
        self.setUp()
        self.test_adapt_then_denoise_on_cpu()

    def test_denoise_tiny_volume_on_cpu(self) -> None:
        logic = MedDenoiseLogic()
        self.assertTrue(logic.installDependencies(askConfirmation=False, cpuOnly=True), logic.missingDependencies())
        model = selftest.tiny_model(logic.workerLauncher(), tempfile.mkdtemp(prefix="MedDenoiseTestModel-"))
        volume, array = selftest.tiny_volume()
        self.delayDisplay("Denoising a tiny volume on the CPU")
        denoised, labels, report = logic.denoise(volume, modality="mr", tta=2, device="cpu", model=model)
        self.assertEqual(report["device"], "cpu")
        self.assertEqual(selftest.output_problems(volume, array, denoised, labels), [])
        red = slicer.app.layoutManager().sliceWidget("Red").mrmlSliceCompositeNode()
        self.assertEqual((red.GetBackgroundVolumeID(), red.GetForegroundVolumeID(), red.GetLabelVolumeID()),
                         (volume.GetID(), denoised.GetID(), labels.GetID()))
        self.delayDisplay("Test passed")

    def test_cancel_leaves_nothing(self) -> None:
        logic = MedDenoiseLogic()
        volume, _array = selftest.tiny_volume()
        before = slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLVolumeNode")
        job = logic.denoise(volume, modality="mr", tta=8, device="cpu", wait=False)
        job.cancel()
        self.assertEqual(job.state, "cancelled")
        self.assertFalse(os.path.exists(job.temp_dir))
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLVolumeNode"), before)
        self.delayDisplay("Cancel test passed")

    def test_adapt_then_denoise_on_cpu(self) -> None:
        logic = MedDenoiseLogic()
        folder = tempfile.mkdtemp(prefix="MedDenoiseTestAdapt-")
        model = selftest.tiny_model(logic.workerLauncher(), folder)
        volume, array = selftest.tiny_volume()
        self.delayDisplay("Adapting the tiny model to a tiny volume on the CPU (2 steps)")
        adapted = logic.adapt(volume, modality="mr", model=model, steps=2, device="cpu", modelsDir=folder)
        self.assertTrue(os.path.basename(adapted).startswith("MedDenoiseTestVolume_adapted_"))
        self.assertEqual(logic.verifyModel(adapted).modality, "mr")
        denoised, labels, report = logic.denoise(volume, modality="mr", tta=1, device="cpu", model=adapted)
        self.assertEqual(report["device"], "cpu")
        self.assertEqual(selftest.output_problems(volume, array, denoised, labels), [])
        shutil.rmtree(folder, ignore_errors=True)
        self.delayDisplay("Adapt test passed")
