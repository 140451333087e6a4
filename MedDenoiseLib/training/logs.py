"""Run logs: ``train_log.csv`` (rebuilt from the checkpointed history, so resumes never duplicate rows),
TensorBoard events when the ``tensorboard`` package is installed, and ``curves.png``.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from .config_sections import LogConfig

logger = logging.getLogger(__name__)

__all__ = ["RunLog", "merge_rows", "plot_curves"]

CSV_NAME, PNG_NAME = "train_log.csv", "curves.png"


def merge_rows(history: list[dict], validation: list[dict]) -> list[dict]:
    """One row per step: training entries joined with ``val_*`` validation entries of the same step."""
    rows: dict[int, dict] = {}
    for entry in history:
        rows.setdefault(int(entry["step"]), {}).update(entry)
    for entry in validation:
        row = rows.setdefault(int(entry["step"]), {"step": int(entry["step"])})
        row.update({f"val_{k}": v for k, v in entry.items() if k != "step"})
    return [rows[s] for s in sorted(rows)]


def plot_curves(rows: list[dict], path: Path, title: str = "") -> Path:
    """Training loss (log scale) and validation PSNR/SSIM against step, written as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_val = fig.subplots(1, 2)
    train = [r for r in rows if "loss" in r]
    if train:
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], label="training loss")
        if all(r["loss"] > 0 for r in train):
            ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_title("training loss")
    val = [r for r in rows if "val_psnr" in r]
    if val:
        steps = [r["step"] for r in val]
        ax_val.plot(steps, [r["val_psnr"] for r in val], "o-", label="model PSNR")
        ax_val.plot(steps, [r["val_noisy_psnr"] for r in val], "--", color="grey", label="noisy input PSNR")
        ax_val.set_ylabel("PSNR (dB)")
        twin = ax_val.twinx()
        twin.plot(steps, [r["val_ssim"] for r in val], "s-", color="tab:green", label="model SSIM")
        twin.set_ylabel("SSIM")
        ax_val.legend(loc="lower right")
    ax_val.set_xlabel("step")
    ax_val.set_title("validation")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(str(path))
    return path


class RunLog:
    """CSV + optional TensorBoard + PNG of one run; inactive on non-zero ranks (``enabled=False``)."""

    def __init__(self, run_dir: Path, config: LogConfig, *, enabled: bool = True, title: str = "") -> None:
        self.run_dir, self.config, self.enabled, self.title = Path(run_dir), config, enabled, title
        self.writer = None
        if enabled and config.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: CSV and PNG only
                logger.debug("tensorboard not installed; writing %s only", CSV_NAME)
            else:
                self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    def scalars(self, step: int, values: dict[str, float], prefix: str) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def write(self, history: list[dict], validation: list[dict], *, plot: bool = True) -> None:
        """Rewrite the CSV (and, with ``plot``, the PNG) from the full history."""
        if not self.enabled:
            return
        rows = merge_rows(history, validation)
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        tmp = self.run_dir / (CSV_NAME + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(self.run_dir / CSV_NAME)
        if plot and self.config.plot and rows:
            plot_curves(rows, self.run_dir / PNG_NAME, self.title)
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
