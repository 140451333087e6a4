"""In-Slicer test of the worker path: PythonSlicer + worker script + engine, no model needed.

A file the engine cannot read must come back as a clear error (the engine's ERROR line),
not a crash; without torch the worker's own message names the PyTorch extension.
"""

import os
import shutil
import tempfile
import unittest

import slicer


class MedDenoiseWorkerTest(unittest.TestCase):
    """Runs inside Slicer (``ctest -R MedDenoiseWorkerTest``)."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()
        self.folder = tempfile.mkdtemp(prefix="MedDenoiseWorkerTest-")

    def tearDown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def test_unreadable_file_is_a_clear_error(self) -> None:
        bad = os.path.join(self.folder, "scan.xyz")
        with open(bad, "wb") as handle:
            handle.write(b"not an image")
        logic = slicer.util.getModuleLogic("MedDenoise")
        results = logic.denoiseFiles([bad], os.path.join(self.folder, "out"), modality="mr", device="cpu")
        self.assertEqual(len(results), 1)
        self.assertFalse(results[0].ok)
        self.assertTrue("extension" in results[0].error or "PyTorch" in results[0].error, results[0].error)
        self.assertEqual(os.listdir(os.path.join(self.folder, "out")), [])

    def test_cpu_run_hides_gpus(self) -> None:
        before = os.environ.get("CUDA_VISIBLE_DEVICES")
        logic = slicer.util.getModuleLogic("MedDenoise")
        env = logic.workerLauncher().device_environment("cpu")
        self.assertEqual(env["CUDA_VISIBLE_DEVICES"], "-1")
        self.assertEqual(os.environ.get("CUDA_VISIBLE_DEVICES"), before)  # Slicer's own process is untouched
