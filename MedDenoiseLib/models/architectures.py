"""Imports every architecture module so their @register_model decorators run."""

from . import cae3d, cdae3d, dncnn3d, dualnet, resunet3d, slab25d, slab_unet  # noqa: F401
