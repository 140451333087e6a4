"""MedDenoiseSlicer: the MRML side of the MedDenoise module (no Qt, no torch).

Runs inside Slicer and on the PyPI ``slicer-core`` wheel alike:

- :mod:`.protocol`: worker command line, child environment, JSON progress lines;
- :mod:`.runner`: the worker process (start, poll lines, cancel the process tree);
- :mod:`.nodes`: export the input, import outputs, colour table, subject hierarchy;
- :mod:`.views`: before/after compare layers and side-by-side;
- :mod:`.job`: one run of one volume node; :mod:`.batch`: files on disk;
- :mod:`.adapt`: 'Adapt to this scan' (self-supervised fine-tuning, exported as a model directory);
- :mod:`.models`, :mod:`.modality`, :mod:`.dependencies`: model cards, modality guess, packages.

Submodules are imported on demand; importing the package itself does nothing.
"""
