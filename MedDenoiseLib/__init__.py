"""MedDenoiseLib: headless deep-learning denoising of CT, MR, ultrasound and X-ray volumes.

Nothing happens at import: no CUDA queries, no logging set-up, no downloads.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
