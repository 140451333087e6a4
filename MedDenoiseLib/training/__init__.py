"""Training of the registered models (supervised on simulated physics noise)."""
