"""Denoising architectures by name (see ``registry``) and weights + model cards (see ``card``)."""

from .registry import build_model, count_parameters, get_spec, list_models, register_model

__all__ = ["build_model", "count_parameters", "get_spec", "list_models", "register_model"]
