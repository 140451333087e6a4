"""Evaluation harness: noisy simulations of clean cases, every method side by side, statistics, reports.

``evaluate(EvaluationConfig(...))`` runs the comparison; ``write_report`` writes JSON,
Markdown and figures; :mod:`~MedDenoiseLib.evaluation.reproductions` re-runs the seed
papers' protocols. Importing this package loads no model and reads no file.
"""

from .config import EvaluationConfig, load_evaluation_config
from .report import write_report
from .runner import EvaluationResult, evaluate

__all__ = ["EvaluationConfig", "EvaluationResult", "evaluate", "load_evaluation_config", "write_report"]
