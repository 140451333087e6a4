"""MedDenoise worker: runs ``meddenoise`` in a separate process (``PythonSlicer meddenoise_worker.py denoise ...``).

Started by the MedDenoise module with the arguments of ``meddenoise denoise`` (or of
``meddenoise adapt`` for 'Adapt to this scan'); it never imports ``slicer`` or Qt, only the
headless engine (``MedDenoiseLib``, shipped beside ``MedDenoise.py``) and torch. Output
contract (see ``MedDenoiseSlicer/protocol.py``):

- stdout: one flushed JSON object per line (``progress`` events, then ``done``);
- stderr: log lines ``LEVEL meddenoise: message``;
- exit code 0 on success, 2 with an ``ERROR`` line on a known failure, 130 when
  cancelled by SIGINT/SIGTERM. Outputs are written only when everything succeeded.
"""

from __future__ import annotations

import os
import sys


def _engine_on_path() -> None:
    """Make ``MedDenoiseLib`` importable: it ships in the module directory, one level up."""
    module_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for candidate in (module_dir, os.path.dirname(module_dir)):
        if os.path.isfile(os.path.join(candidate, "MedDenoiseLib", "__init__.py")):
            if candidate not in sys.path:
                sys.path.insert(0, candidate)
            return


def main(argv: list[str] | None = None) -> int:
    """Run ``meddenoise`` with ``argv`` (default ``sys.argv[1:]``) and return its exit code."""
    _engine_on_path()
    try:
        from MedDenoiseLib.cli.main import main as cli_main
    except ImportError as exc:  # torch or another dependency missing in this Python
        sys.stderr.write(f"ERROR meddenoise: the worker cannot import {exc.name or exc}: install the PyTorch "
                         "extension and press Apply again to install the remaining packages "
                         f"(Python: {sys.executable}).\n")
        sys.stderr.flush()
        return 2
    return cli_main(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
