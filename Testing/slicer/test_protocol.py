"""Worker protocol: command line, child environment, progress-line parsing and formatting."""

import json
import os

import pytest

from MedDenoiseSlicer.protocol import (AdaptRequest, Done, LogLine, Progress, ProtocolError, WorkerRequest,
                                       adapt_arguments, denoise_arguments, error_summary, format_duration,
                                       format_progress, format_report, parse_line, worker_arguments,
                                       worker_environment)


class TestParseLine:
    def test_progress_event(self):
        line = json.dumps({"event": "progress", "stage": "denoise", "patch": 3, "patches": 12, "tta": 5,
                           "tta_total": 8, "elapsed_s": 4.2, "eta_s": 42.0, "fraction": 0.2})
        event = parse_line(line + "\n")
        assert event == Progress("denoise", 3, 12, 5, 8, 4.2, 42.0, 0.2)

    def test_done_event(self):
        event = parse_line(json.dumps({"event": "done", "outputs": ["/a.nrrd"], "report": {"device": "cpu"}}))
        assert event == Done(("/a.nrrd",), {"device": "cpu"})

    def test_adapt_progress_and_done_events(self):
        # exactly what `meddenoise adapt --progress json` prints (MedDenoiseLib/cli/adapt.py)
        event = parse_line('{"event": "progress", "stage": "adapt", "step": 3, "steps": 12, "loss": 0.084165}')
        assert (event.stage, event.step, event.steps, event.loss) == ("adapt", 3, 12, 0.084165)
        assert event.fraction == pytest.approx(0.25) and event.eta_s is None and event.patches == 0
        done = parse_line('{"event": "done", "model": "/m/Brain_adapted", "denoised": null}')
        assert done == Done(("/m/Brain_adapted",), {}, "/m/Brain_adapted")
        assert parse_line('{"event": "progress", "stage": "adapt", "step": 1, "steps": 0, "loss": "x"}').fraction == 0

    @pytest.mark.parametrize("line", ["UserWarning: something", "{not json", "[1, 2]", '{"event": "other"}', "", "  "])
    def test_non_protocol_lines_are_log_lines(self, line):
        event = parse_line(line)
        assert isinstance(event, LogLine) and event.text == line and event.level == ""

    def test_log_levels_and_message(self):
        event = parse_line("ERROR meddenoise: input has NaN voxels; must be finite.")
        assert event.level == "ERROR" and event.message == "input has NaN voxels; must be finite."
        assert parse_line("WARNING meddenoise: out of memory, batch 4 -> 2").level == "WARNING"
        assert parse_line("CRITICAL x: y").level == "ERROR"
        assert parse_line("ERRORS are fun").level == ""

    def test_malformed_progress_fields_do_not_raise(self):
        event = parse_line('{"event": "progress", "patch": "x", "eta_s": null, "fraction": 7}')
        assert event.patch == 0 and event.eta_s is None and event.fraction == 1.0


class TestFormatting:
    def test_progress_text(self):
        text = format_progress(Progress(patch=3, patches=12, tta=5, tta_total=8, eta_s=42.4))
        assert text == "patch 3/12 · TTA 5/8 · ETA 0:42"

    def test_adapt_progress_text(self):
        assert format_progress(Progress(stage="adapt", step=30, steps=200, loss=0.08123, eta_s=70)) == \
            "step 30/200 · loss 0.0812 · ETA 1:10"
        assert format_progress(Progress(stage="adapt", step=1, steps=200)) == "step 1/200 · ETA ?"

    @pytest.mark.parametrize("seconds, text", [(None, "?"), (-1, "?"), (0, "0:00"), (59.6, "1:00"), (3723, "1:02:03")])
    def test_duration(self, seconds, text):
        assert format_duration(seconds) == text

    def test_report_mentions_device_time_and_backoff(self):
        text = format_report({"device": "cuda", "seconds": 12.34, "model": "mr_demo", "tta": 8,
                              "backoff": ["out of memory: batch 4 -> 2"]})
        assert text.startswith("Done on cuda in 12.3 s") and "mr_demo" in text and "batch 4 -> 2" in text
        assert "calibrated" not in text

    def test_report_mentions_std_calibration(self):
        assert "std calibrated x 2.99" in format_report({"device": "cpu", "seconds": 1.0, "std_scale": 2.9873})
        assert "calibrated" not in format_report({"device": "cpu", "seconds": 1.0, "std_scale": 1.0})
        floored = format_report({"device": "cpu", "seconds": 1.0, "std_scale": 1.2948, "std_floor": 4.779})
        assert "std calibrated x 1.29 with floor 4.78" in floored and "edge" not in floored
        edged = format_report({"device": "cpu", "seconds": 1.0, "std_scale": 1.2948, "std_floor": 4.779,
                               "std_edge": 0.4123})
        assert "with floor 4.78 and edge term 0.412 voxel x gradient" in edged and "spread over" not in edged
        spread = format_report({"device": "cpu", "seconds": 1.0, "std_scale": 1.2948, "std_floor": 4.779,
                                "std_edge": 0.4123, "std_edge_width": 1.5})
        assert "edge term 0.412 voxel x gradient spread over 1.5 voxel" in spread

    def test_error_summary_prefers_last_error_line(self):
        lines = ["INFO meddenoise: reading", "ERROR meddenoise: first", "ERROR meddenoise: the real one", "bye"]
        assert error_summary(lines, 2) == "the real one"
        assert error_summary(["Traceback", "RuntimeError: boom"], 3) == "worker exited with code 3: RuntimeError: boom"
        assert "printed nothing" in error_summary([], -9)


class TestCommand:
    def test_arguments(self):
        request = WorkerRequest("in.nrrd", "out.nrrd", std_path="std.nrrd", labels_path="lab.nrrd", modality="ct",
                                tta=4, device="cpu", model="/models/x", mc_dropout=8)
        args = denoise_arguments(request)
        assert args[:3] == ["denoise", "in.nrrd", "out.nrrd"]
        pairs = dict(zip(args[3::2], args[4::2]))
        assert pairs == {"--tta": "4", "--device": "cpu", "--progress": "json", "--modality": "ct",
                         "--model": "/models/x", "--mc-dropout": "8", "--uncertainty": "std.nrrd",
                         "--uncertainty-labels": "lab.nrrd"}

    def test_minimal_arguments_leave_modality_to_the_engine(self):
        args = denoise_arguments(WorkerRequest("in.nrrd", "out.nrrd"))
        assert "--modality" not in args and "--model" not in args and "--mc-dropout" not in args
        assert "--uncertainty-source" not in args  # the engine's default, TTA spread

    @pytest.mark.parametrize("source", ["mc_dropout", "model"])
    def test_uncertainty_source_is_passed_on(self, source):
        args = denoise_arguments(WorkerRequest("in.nrrd", "out.nrrd", uncertainty_source=source))
        assert args[args.index("--uncertainty-source") + 1] == source

    @pytest.mark.parametrize("kwargs, match", [({"modality": "pet"}, "modality"), ({"tta": 3}, "tta"),
                                               ({"device": "tpu"}, "device"), ({"mc_dropout": -1}, "mc_dropout"),
                                               ({"uncertainty_source": "mcdropout"}, "uncertainty_source")])
    def test_invalid_requests(self, kwargs, match):
        with pytest.raises(ProtocolError, match=match):
            WorkerRequest("in.nrrd", "out.nrrd", **kwargs)


    def test_adapt_arguments(self):
        request = AdaptRequest("in.nrrd", "/models/Brain_adapted", "mr_default", steps=50, modality="mr",
                               device="cpu", run_dir="/tmp/run")
        args = worker_arguments(request)
        assert args == adapt_arguments(request) and args[:2] == ["adapt", "in.nrrd"]
        assert dict(zip(args[2::2], args[3::2])) == {"--model": "mr_default", "--steps": "50",
                                                     "--out": "/models/Brain_adapted", "--device": "cpu",
                                                     "--progress": "json", "--modality": "mr", "--run-dir": "/tmp/run"}
        assert worker_arguments(WorkerRequest("in.nrrd", "out.nrrd"))[0] == "denoise"

    @pytest.mark.parametrize("kwargs, match", [({"model": ""}, "model"), ({"steps": 0}, "steps"),
                                               ({"modality": "pet"}, "modality"), ({"device": "tpu"}, "device")])
    def test_invalid_adapt_requests(self, kwargs, match):
        values = {"model": "m", **kwargs}
        with pytest.raises(ProtocolError, match=match):
            AdaptRequest("in.nrrd", "/out", **values)


class TestEnvironment:
    def test_cpu_hides_gpus_in_the_child_only(self, monkeypatch):
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        env = worker_environment("cpu", pythonpath=["/engine"])
        assert env["CUDA_VISIBLE_DEVICES"] == "-1" and "CUDA_VISIBLE_DEVICES" not in os.environ
        assert env["PYTHONPATH"].split(os.pathsep)[0] == "/engine" and env["PYTHONUNBUFFERED"] == "1"

    def test_auto_keeps_gpus_and_existing_pythonpath(self):
        env = worker_environment("auto", base={"PYTHONPATH": "/a", "CUDA_VISIBLE_DEVICES": "1"}, pythonpath=["/e"])
        assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["PYTHONPATH"] == os.pathsep.join(["/e", "/a"])
