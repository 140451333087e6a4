"""'Adapt to this scan' (AdaptJob / DenoiseLogic.adapt): fake worker for success, progress, cancel and failures,
then the real engine (`meddenoise adapt` on CPU with the tiny model) followed by a denoise with the adapted model."""

import json
import os
import sys

import numpy as np
import pytest
import slicer

from meddenoise_slicer_helpers import FakeLauncher, assert_process_gone, poll_until, volume_nodes
from MedDenoiseSlicer import selftest
from MedDenoiseSlicer.adapt import AdaptJob, AdaptSettings, adapted_model_directory, safe_name
from MedDenoiseSlicer.job import RunCancelled, WorkerError, WorkerLauncher
from MedDenoiseSlicer.logic import DenoiseLogic
from MedDenoiseSlicer.models import verify_model
from MedDenoiseSlicer.protocol import Progress, format_progress


@pytest.fixture()
def folders(tmp_path):
    """(models folder, temp root): the models folder does not exist yet, the temp root does."""
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    return tmp_path / "Models", temp_root


def adapt_kwargs(folders, **extra):
    models, temp_root = folders
    return {"modality": "mr", "model": "mr_start", "steps": 4, "device": "cpu", "modelsDir": str(models),
            "tempRoot": str(temp_root), **extra}


class TestSuccess:
    def test_adapt_returns_a_verified_model_directory(self, volume, scene, folders, monkeypatch):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
        source = slicer.util.arrayFromVolume(volume).copy()
        count = scene.GetNumberOfNodes()
        launcher = FakeLauncher()
        model_dir = DenoiseLogic(launcher).adapt(volume, **adapt_kwargs(folders))

        models, temp_root = folders
        assert os.path.dirname(model_dir) == str(models) and os.path.basename(model_dir).startswith("Brain_adapted_")
        info = verify_model(model_dir)
        assert info.path.name == os.path.basename(model_dir) and info.title == "mr_start_adapted"
        card = json.loads((info.path / "card.json").read_text(encoding="utf-8"))
        assert card["fake_env"]["CUDA_VISIBLE_DEVICES"] == "-1" and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        assert card["fake_env"]["run_dir"].startswith(str(temp_root))  # checkpoints stay in the run's temp dir
        assert os.path.basename(card["adapted_from"]["scan"]) == "Brain.nrrd"
        assert os.listdir(temp_root) == []
        argv = launcher.commands[-1]
        assert argv[argv.index("--fake-mode") + 2] == "adapt"
        options = dict(zip(argv[argv.index("--model")::2], argv[argv.index("--model") + 1::2]))
        assert options["--model"] == "mr_start" and options["--steps"] == "4" and options["--out"] == model_dir
        assert options["--modality"] == "mr" and options["--progress"] == "json" and options["--device"] == "cpu"
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(volume), source)
        assert scene.GetNumberOfNodes() == count

    def test_progress_has_steps_loss_and_an_eta(self, volume, folders):
        logic = DenoiseLogic(FakeLauncher("slow"))
        job = logic.adapt(volume, wait=False, **adapt_kwargs(folders, steps=6))
        assert isinstance(job, AdaptJob) and job.running
        events = poll_until(job, lambda: job.finished)
        progress = [e for e in events if isinstance(e, Progress)]
        assert [p.step for p in progress] == [1, 2, 3, 4, 5, 6] and {p.steps for p in progress} == {6}
        assert progress[-1].fraction == 1.0 and progress[2].fraction == pytest.approx(0.5)
        assert progress[0].eta_s is None and progress[2].eta_s > 0 and progress[-1].eta_s == 0
        assert progress[-1].elapsed_s > progress[0].elapsed_s > 0
        assert format_progress(progress[2]).startswith("step 3/6 · loss 0.0333 · ETA 0:0")
        assert "UserWarning: a library warning that is not JSON" in job.log
        model_dir = logic.finishAdapt(job)
        assert job.state == "succeeded" and job.model_info.path == verify_model(model_dir).path
        assert logic.finishAdapt(job) == model_dir  # idempotent

    def test_default_model_of_the_modality_and_guessed_modality(self, volume, folders, tmp_path, monkeypatch):
        root = tmp_path / "shipped"
        root.mkdir()
        (root / "index.json").write_text(json.dumps({"defaults": {"mr": "mr_shipped"}}), encoding="utf-8")
        monkeypatch.setenv("MEDDENOISE_MODELS", str(root))
        launcher = FakeLauncher()
        DenoiseLogic(launcher).adapt(volume, **adapt_kwargs(folders, model=None, modality=None))
        argv = launcher.commands[-1]
        assert argv[argv.index("--model") + 1] == "mr_shipped" and argv[argv.index("--modality") + 1] == "mr"
        with pytest.raises(ValueError, match="no default ct model"):
            DenoiseLogic(launcher).adapt(volume, **adapt_kwargs(folders, model=None, modality="ct"))

    def test_explicit_output_dir_and_default_models_folder(self, volume, folders, tmp_path, monkeypatch):
        target = tmp_path / "deep" / "mine"
        assert DenoiseLogic(FakeLauncher()).adapt(volume, **adapt_kwargs(folders, outputDir=str(target))) == str(target)
        verify_model(target)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert DenoiseLogic().adaptedModelsDirectory() == str(tmp_path / "home" / ".MedDenoise" / "Models")


    def test_adapted_model_is_offered_in_the_model_choices(self, volume, folders):
        logic = DenoiseLogic(FakeLauncher())
        model_dir = logic.adapt(volume, **adapt_kwargs(folders))
        rows = logic.modelChoices("mr", model_dir)
        assert rows[0][0] == "" and rows[0][1] in ("default", "none")
        assert rows[-1] == (model_dir, "adapted", os.path.basename(model_dir))
        assert logic.modelChoices("mr", "/elsewhere/x/")[-1] == ("/elsewhere/x/", "imported", "x")
        assert len(logic.modelChoices("mr", "")) == len(rows) - 1


class TestCancelAndFailure:
    def test_cancel_mid_run_leaves_no_model_dir_and_no_temp_dir(self, volume, scene, folders, tmp_path):
        pidfile = tmp_path / "grandchild.pid"
        count = scene.GetNumberOfNodes()
        job = DenoiseLogic(FakeLauncher("hang", {"FAKE_PIDFILE": str(pidfile)})).adapt(
            volume, wait=False, **adapt_kwargs(folders))
        assert os.path.isdir(job.temp_dir)
        poll_until(job, lambda: job.progress is not None and pidfile.exists())
        assert os.path.isdir(job.output_dir)  # half-written by the worker
        job.cancel()
        assert job.state == "cancelled" and job.process.returncode < 0
        assert not os.path.exists(job.temp_dir) and not os.path.exists(job.output_dir)
        assert os.listdir(folders[0]) == [] and os.listdir(folders[1]) == []
        assert scene.GetNumberOfNodes() == count
        with pytest.raises(RunCancelled, match="no model was saved"):
            job.finish()
        assert_process_gone(pidfile)

    def test_worker_error_surfaces_its_message_and_removes_the_half_written_model(self, volume, folders):
        job = DenoiseLogic(FakeLauncher("error")).adapt(volume, wait=False, **adapt_kwargs(folders))
        poll_until(job, lambda: job.finished)
        assert os.path.isdir(job.output_dir)
        with pytest.raises(WorkerError) as info:
            job.finish()
        error = info.value
        assert error.message == "export failed: disk full while writing the adapted model. Free some space."
        assert error.returncode == 2 and str(error).startswith("Adapting failed: export failed")
        assert "Last worker output:" in str(error) and any("fake adapt mode error" in line for line in error.log_tail)
        assert job.state == "failed" and not os.path.exists(job.output_dir) and not os.path.exists(job.temp_dir)

    @pytest.mark.parametrize("mode, match", [("badsha", "sha256"), ("crash", "exited with code 3: RuntimeError: boom")])
    def test_bad_export_or_crash_is_a_worker_error(self, volume, folders, mode, match):
        with pytest.raises(WorkerError, match=match):
            DenoiseLogic(FakeLauncher(mode)).adapt(volume, **adapt_kwargs(folders))
        assert os.listdir(folders[0]) == [] and os.listdir(folders[1]) == []

    def test_a_failing_progress_callback_cancels_and_cleans_up(self, volume, folders):
        job = DenoiseLogic(FakeLauncher("hang")).adapt(volume, wait=False, **adapt_kwargs(folders))

        def explode(event):
            if isinstance(event, Progress):
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            job.wait(explode)
        assert job.state == "cancelled" and not os.path.exists(job.temp_dir) and not os.path.exists(job.output_dir)


class TestValidation:
    def test_invalid_choices_are_clear(self, volume, scene, folders, tmp_path):
        logic = DenoiseLogic(FakeLauncher())
        with pytest.raises(ValueError, match="select an input"):
            logic.adapt(None, **adapt_kwargs(folders))
        with pytest.raises(ValueError, match="steps"):
            logic.adapt(volume, **adapt_kwargs(folders, steps=0))
        with pytest.raises(ValueError, match="steps"):
            logic.adapt(volume, **adapt_kwargs(folders, steps=2.5))
        with pytest.raises(ValueError, match="modality"):
            logic.adapt(volume, **adapt_kwargs(folders, modality="pet"))
        with pytest.raises(ValueError, match="already exists"):
            logic.adapt(volume, **adapt_kwargs(folders, outputDir=str(tmp_path)))
        blocker = tmp_path / "file"
        blocker.write_text("x", encoding="utf-8")
        with pytest.raises(ValueError, match="cannot create the models folder"):
            logic.adapt(volume, **adapt_kwargs(folders, modelsDir=str(blocker / "Models")))
        assert os.listdir(folders[1]) == [] and [n.GetName() for n in volume_nodes(scene)] == ["Brain"]
        with pytest.raises(ValueError, match="voxels"):
            AdaptJob(scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty"), AdaptSettings("m"),
                     output_dir=tmp_path / "x")

    def test_model_folder_names(self, tmp_path):
        first = adapted_model_directory(tmp_path, "MR Head (1)", now=0)
        assert first.parent == tmp_path and first.name.startswith("MR_Head_1_adapted_")
        first.mkdir()
        assert adapted_model_directory(tmp_path, "MR Head (1)", now=0).name == first.name + "-2"
        assert safe_name("../..") == "volume" and safe_name("a/b") == "a_b"


def test_real_engine_adapts_then_denoises_with_the_adapted_model(app, volume, tiny_models, folders, monkeypatch):
    """`meddenoise adapt` for real (CPU, tiny model, 3 steps), then a denoise with the model it exported."""
    pytest.importorskip("torch")
    monkeypatch.setenv("MEDDENOISE_MODELS", str(tiny_models))  # default MR model = mr_tiny, in the child too
    source = slicer.util.arrayFromVolume(volume).copy()
    logic = DenoiseLogic(WorkerLauncher(python=sys.executable))
    events = []
    job = logic.adapt(volume, wait=False, **adapt_kwargs(folders, model=None, steps=3))
    model_dir = job.wait(events.append)

    info = verify_model(model_dir)
    card = json.loads((info.path / "card.json").read_text(encoding="utf-8"))
    assert card["adapted_from"]["model"] == "mr_tiny" and card["training"]["steps"] == 3
    assert card["modality"] == "mr" and info.path.parent == folders[0]
    steps = [e for e in events if isinstance(e, Progress)]
    assert [p.step for p in steps] == [1, 2, 3] and all(p.loss is not None and p.loss > 0 for p in steps)
    assert job.done.model == model_dir and os.listdir(folders[1]) == []

    denoised, labels, report = logic.denoise(volume, modality="mr", tta=1, device="cpu", model=model_dir,
                                             showResult=False)
    assert report["device"] == "cpu" and "adapted" in str(report["model"])
    assert selftest.output_problems(volume, source, denoised, labels) == []
    assert np.isfinite(slicer.util.arrayFromVolume(denoised)).all()
    assert logic.modelChoices("mr", model_dir)[-1] == (model_dir, "adapted", os.path.basename(model_dir))
