"""WorkerProcess: non-blocking line polling, blocking run, exit codes, killing the whole process tree."""

import os
import sys
import time

import pytest

from MedDenoiseSlicer.runner import WorkerProcess, default_python, engine_directory

PRINTER = "import sys, time\nfor i in range(5):\n    print(f'line {i}', flush=True)\n    time.sleep(0.02)\n" \
          "sys.stderr.write('ERROR meddenoise: bad\\n')\nsys.exit(int(sys.argv[1]))\n"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0); read its state
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class TestWorkerProcess:
    def test_run_collects_stdout_and_stderr_lines(self):
        process = WorkerProcess([sys.executable, "-c", PRINTER, "0"])
        seen = []
        assert process.run(seen.append) == 0
        assert seen == [f"line {i}" for i in range(5)] + ["ERROR meddenoise: bad"] == process.lines

    def test_nonzero_exit_code(self):
        assert WorkerProcess([sys.executable, "-c", PRINTER, "3"]).run() == 3

    def test_poll_lines_never_blocks(self):
        process = WorkerProcess([sys.executable, "-c", "import time; print('a', flush=True); time.sleep(1)"]).start()
        started = time.monotonic()
        assert process.poll_lines() in ([], ["a"])
        assert time.monotonic() - started < 0.5
        deadline = time.monotonic() + 10
        while "a" not in process.lines and time.monotonic() < deadline:
            process.poll_lines(timeout=0.05)
        assert "a" in process.lines and not process.finished
        assert process.wait(timeout=10) == 0 and process.finished

    @pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")
    def test_cancel_kills_the_process_tree(self, tmp_path):
        pidfile = tmp_path / "child.pid"
        code = ("import subprocess, sys, time\n"
                "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
                "print('started', flush=True)\ntime.sleep(60)\n")
        process = WorkerProcess([sys.executable, "-c", code]).start()
        deadline = time.monotonic() + 10
        while "started" not in process.lines and time.monotonic() < deadline:
            process.poll_lines(timeout=0.05)
        grandchild = int(pidfile.read_text(encoding="utf-8"))
        process.cancel()
        assert process.cancelled and process.returncode < 0
        deadline = time.monotonic() + 5
        while pid_alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(grandchild)
        process.wait(timeout=5)
        assert process.finished

    def test_start_twice_is_refused(self):
        process = WorkerProcess([sys.executable, "-c", "pass"]).start()
        with pytest.raises(RuntimeError, match="already"):
            process.start()
        process.wait(timeout=10)

    def test_injected_popen_receives_a_new_session(self):
        calls = []

        def fake_popen(argv, **kwargs):
            calls.append(kwargs)
            import subprocess

            return subprocess.Popen([sys.executable, "-c", "print('fake')"], **kwargs)

        process = WorkerProcess(["ignored"], popen=fake_popen)
        assert process.run() == 0 and process.lines == ["fake"]
        assert calls[0]["start_new_session"] is (os.name == "posix") and calls[0]["bufsize"] == 1


def test_locations():
    assert (engine_directory() / "MedDenoiseLib" / "__init__.py").is_file()
    assert os.path.exists(default_python())
