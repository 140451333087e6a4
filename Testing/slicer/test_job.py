"""DenoiseJob / DenoiseLogic with a fake worker: success, cancel mid-run, failures, settings, source safety."""

import os

import numpy as np
import pytest
import slicer

from meddenoise_slicer_helpers import FakeLauncher, assert_process_gone, oblique_matrix, poll_until, volume_nodes
from MedDenoiseSlicer import nodes
from MedDenoiseSlicer.job import DenoiseJob, DenoiseSettings, RunCancelled, WorkerError
from MedDenoiseSlicer.logic import DenoiseLogic
from MedDenoiseSlicer.protocol import Progress


class TestSuccess:
    def test_denoise_returns_nodes_with_identical_oblique_geometry(self, app, volume):
        source = slicer.util.arrayFromVolume(volume).copy()
        app.slice_view("Red")
        logic = DenoiseLogic(FakeLauncher("nogeom"))  # worker writes no geometry: the input's must win
        denoised, uncertainty, report = logic.denoise(volume, modality="mr", tta=2, device="cpu", opacity=0.4)
        for node in (denoised, uncertainty):
            np.testing.assert_array_equal(nodes.ijk_to_ras(node), oblique_matrix())
            np.testing.assert_array_equal(nodes.ijk_to_ras(node), nodes.ijk_to_ras(volume))
        assert slicer.util.arrayFromVolume(uncertainty).dtype == np.uint8
        assert report["model"] == "fake" and report["tta"] == 2
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(volume), source)  # source unchanged
        composite = app.slice_logics["Red"].GetSliceCompositeNode()
        assert (composite.GetBackgroundVolumeID(), composite.GetForegroundVolumeID(), composite.GetLabelVolumeID()) \
            == (volume.GetID(), denoised.GetID(), uncertainty.GetID())
        assert composite.GetForegroundOpacity() == pytest.approx(0.4)

    def test_progress_events_and_log_lines_are_separated(self, volume):
        job = DenoiseJob(volume, DenoiseSettings(modality="mr", tta=4, device="cpu"), launcher=FakeLauncher())
        events = []
        outputs = job.wait(events.append)
        progress = [e for e in events if isinstance(e, Progress)]
        assert len(progress) == 3 * 4 and progress[-1].fraction == 1.0 and progress[0].tta_total == 4
        assert job.progress == progress[-1]
        assert "UserWarning: a library warning that is not JSON" in job.log and "{not json at all" in job.log
        assert not any(line.startswith('{"event"') for line in job.log)
        assert outputs.report["backoff"] == ["fake back-off: batch 4 -> 2"]
        assert job.state == "succeeded" and not os.path.exists(job.temp_dir)

    def test_cpu_is_forced_in_the_child_environment(self, volume, monkeypatch):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
        outputs = DenoiseLogic(FakeLauncher()).denoise(volume, modality="mr", tta=1, device="cpu")
        assert outputs.report["cuda_visible_devices"] == "-1" and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        outputs = DenoiseLogic(FakeLauncher()).denoise(volume, modality="mr", tta=1, device="auto")
        assert outputs.report["cuda_visible_devices"] == "0"

    def test_modality_is_guessed_and_settings_reach_the_worker(self, volume):
        launcher = FakeLauncher()
        DenoiseLogic(launcher).denoise(volume, tta=8, device="cpu", model="/models/x", uncertaintyMethod="mcdropout",
                                       mcDropout=6)
        argv = launcher.commands[-1]
        options = dict(zip(argv[argv.index("--tta")::2], argv[argv.index("--tta") + 1::2]))
        assert options["--modality"] == "mr" and options["--model"] == "/models/x" and options["--mc-dropout"] == "6"

    def test_not_waiting_returns_a_job_to_poll(self, volume):
        logic = DenoiseLogic(FakeLauncher("slow"))
        job = logic.denoise(volume, modality="mr", tta=2, wait=False)
        assert job.running
        poll_until(job, lambda: job.finished)
        assert logic.finishDenoise(job).denoised.GetName() == "Brain denoised"


class TestCancelAndFailure:
    def test_cancel_mid_run_leaves_no_nodes_and_no_temp_dir(self, volume, scene, tmp_path):
        pidfile = tmp_path / "grandchild.pid"
        before = [n.GetID() for n in volume_nodes(scene)]
        count = scene.GetNumberOfNodes()
        job = DenoiseLogic(FakeLauncher("hang", {"FAKE_PIDFILE": str(pidfile)})).denoise(
            volume, modality="mr", device="cpu", wait=False)
        assert os.path.isdir(job.temp_dir)
        poll_until(job, lambda: job.progress is not None and pidfile.exists())
        job.cancel()
        assert job.state == "cancelled" and not os.path.exists(job.temp_dir)
        assert [n.GetID() for n in volume_nodes(scene)] == before and scene.GetNumberOfNodes() == count
        assert job.process.returncode < 0
        with pytest.raises(RunCancelled):
            job.finish()
        assert_process_gone(pidfile)

    def test_worker_error_surfaces_its_message_and_log_tail(self, volume, scene):
        count = scene.GetNumberOfNodes()
        job = DenoiseLogic(FakeLauncher("error")).denoise(volume, modality="mr", wait=False)
        poll_until(job, lambda: job.finished)
        with pytest.raises(WorkerError) as info:
            job.finish()
        error = info.value
        assert error.message == "input has 12 NaN voxels; must be finite. Replace them before denoising."
        assert error.returncode == 2
        assert "INFO meddenoise: reading input" in error.log_tail
        assert "Last worker output:" in str(error) and "NaN voxels" in str(error)
        assert scene.GetNumberOfNodes() == count and not os.path.exists(job.temp_dir) and job.state == "failed"

    def test_crash_without_error_line_reports_exit_code_and_last_line(self, volume, scene):
        with pytest.raises(WorkerError, match="exited with code 3: RuntimeError: boom"):
            DenoiseLogic(FakeLauncher("crash")).denoise(volume, modality="mr")
        assert [n.GetName() for n in volume_nodes(scene)] == ["Brain"]

    def test_output_on_the_wrong_grid_adds_nothing(self, volume, scene):
        with pytest.raises(WorkerError, match="grid"):
            DenoiseLogic(FakeLauncher("badgrid")).denoise(volume, modality="mr")
        assert [n.GetName() for n in volume_nodes(scene)] == ["Brain"]

    def test_input_removed_during_the_run(self, volume, scene):
        job = DenoiseLogic(FakeLauncher("slow")).denoise(volume, modality="mr", tta=2, wait=False)
        scene.RemoveNode(volume)
        with pytest.raises(WorkerError, match="removed from the scene"):
            job.wait()
        assert volume_nodes(scene) == [] and job.state == "failed"

    def test_a_failing_progress_callback_cancels_the_worker(self, volume, scene):
        job = DenoiseLogic(FakeLauncher("hang")).denoise(volume, modality="mr", wait=False)

        def explode(event):
            if isinstance(event, Progress):
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            job.wait(explode)
        assert job.state == "cancelled" and job.process.returncode < 0 and not os.path.exists(job.temp_dir)

    def test_missing_worker_program_cleans_up(self, volume, tmp_path):
        launcher = FakeLauncher()
        launcher.python = str(tmp_path / "no-such-python")
        job = DenoiseJob(volume, DenoiseSettings(modality="mr"), launcher=launcher, temp_root=str(tmp_path))
        with pytest.raises(OSError):
            job.start()
        assert job.state == "failed" and os.listdir(tmp_path) == []


class TestValidation:
    def test_invalid_choices_are_clear(self, volume, scene, tiny_models, monkeypatch):
        monkeypatch.setenv("MEDDENOISE_MODELS", str(tiny_models))  # default MR model: a slab25d, no own uncertainty
        logic = DenoiseLogic(FakeLauncher())
        with pytest.raises(ValueError, match="modality"):
            logic.denoise(volume, modality="pet")
        with pytest.raises(ValueError, match="must differ from the input"):
            logic.denoise(volume, modality="mr", outputVolume=volume)
        with pytest.raises(ValueError, match="needs a model with its own uncertainty output; model 'mr_tiny' "
                                             r"\(slab25d\) has none. Use 'tta' or 'mcdropout'"):
            logic.denoise(volume, modality="mr", uncertaintyMethod="model")
        with pytest.raises(ValueError, match="select an input"):
            logic.denoise(None)
        empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
        with pytest.raises(ValueError, match="voxels"):
            logic.denoise(empty, modality="mr")
        rgb = slicer.util.addVolumeFromArray(np.zeros((2, 3, 4, 3), np.uint8), name="rgb",
                                             nodeClassName="vtkMRMLVectorVolumeNode")
        with pytest.raises(ValueError, match="1 component"):
            logic.denoise(rgb, modality="us")

    def test_mc_dropout_mapping(self):
        assert DenoiseLogic.mcDropoutSamples("tta", 8) == 0
        assert DenoiseLogic.mcDropoutSamples("model", 8) == 0
        assert DenoiseLogic.mcDropoutSamples("mcdropout", 5) == 5
        with pytest.raises(ValueError, match="at least 2"):
            DenoiseLogic.mcDropoutSamples("mcdropout", 1)


class TestOwnUncertainty:
    @pytest.fixture()
    def dual_models(self, tmp_path, monkeypatch):
        """A models root with a tiny DUAL-NET (own uncertainty) as the MR default."""
        pytest.importorskip("torch")
        from MedDenoiseLib.models.card import save_model
        from MedDenoiseLib.testing import tiny_dualnet

        save_model(tiny_dualnet(), tmp_path / "models" / "mr_dual", {"name": "mr_dual", "modality": "mr"})
        (tmp_path / "models" / "index.json").write_text('{"defaults": {"mr": "mr_dual"}}', encoding="utf-8")
        monkeypatch.setenv("MEDDENOISE_MODELS", str(tmp_path / "models"))
        return tmp_path / "models"

    def test_model_method_reaches_the_worker(self, volume, dual_models):
        launcher = FakeLauncher()
        outputs = DenoiseLogic(launcher).denoise(volume, modality="mr", tta=2, device="cpu",
                                                 uncertaintyMethod="model", mcDropout=8)
        argv = launcher.commands[-1]
        assert argv[argv.index("--uncertainty-source") + 1] == "model" and "--mc-dropout" not in argv
        assert outputs.report["uncertainty_source"] == "model"
        DenoiseLogic(launcher).denoise(volume, modality="mr", model=str(dual_models / "mr_dual"),
                                       uncertaintyMethod="model")  # a model directory works too
        assert "--uncertainty-source" in launcher.commands[-1]

    def test_other_methods_keep_the_tta_source(self, volume, dual_models):
        launcher = FakeLauncher()
        DenoiseLogic(launcher).denoise(volume, modality="mr", tta=2, uncertaintyMethod="tta")
        assert "--uncertainty-source" not in launcher.commands[-1]
        DenoiseLogic(launcher).denoise(volume, modality="mr", tta=2, uncertaintyMethod="mcdropout", mcDropout=4)
        argv = launcher.commands[-1]
        assert argv[argv.index("--uncertainty-source") + 1] == "mc_dropout" and "--mc-dropout" in argv

    def test_batch_files_take_the_method(self, tmp_path, volume, dual_models):
        source = nodes.export_volume(volume, str(tmp_path / "in.nrrd"))
        launcher = FakeLauncher()
        results = DenoiseLogic(launcher).denoiseFiles([source], str(tmp_path / "out"), modality="mr",
                                                      uncertaintyMethod="model")
        assert results[0].ok and "--uncertainty-source" in launcher.commands[-1]
