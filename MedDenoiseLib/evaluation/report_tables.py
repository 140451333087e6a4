"""Numbers and tables read from an evaluation ``report.json`` (shared by the generated Markdown pages)."""

from __future__ import annotations

import math

__all__ = ["fmt", "mean_of", "paper_table"]


def mean_of(report: dict, metric: str, level: float, method: str) -> float:
    """The summary mean of ``metric`` for ``method`` at ``level`` (NaN when the report has none)."""
    for row in report["summary"]:
        if row["metric"] == metric and row["level"] == level and row["method"] == method:
            return math.nan if row["mean"] is None else float(row["mean"])
    return math.nan


def fmt(value: float, digits: int = 2, *, signed: bool = False) -> str:
    """``value`` with ``digits`` decimals (a leading + or - when ``signed``); a dash for missing or non-finite values."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def paper_table(report: dict) -> list[str]:
    """Seed papers' layout: methods as rows, noise levels as columns, PSNR / SSIM per cell."""
    levels = report["config"]["levels"]
    head = "| method | " + " | ".join(f"{lv:g}: PSNR / SSIM" for lv in levels) + " |"
    lines = [head, "|" + "---|" * (len(levels) + 1)]
    for method in [m["name"] for m in report["methods"]]:
        cells = [f"{fmt(mean_of(report, 'psnr', lv, method))} / {fmt(mean_of(report, 'ssim', lv, method), 3)}"
                 for lv in levels]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines
