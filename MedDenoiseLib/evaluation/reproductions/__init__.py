"""Seed-paper protocol reproductions (Gondara 2016, NIT Raipur CAE, DUAL-NET layout).

``run_reproductions("all", data_root=..., out_dir=..., doc=Path("docs/reproductions.md"))``
runs the protocols, saves their results as JSON in ``out_dir`` and renders the document.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..report import json_ready

logger = logging.getLogger(__name__)

__all__ = ["run_reproductions"]


def run_reproductions(protocol: str, *, data_root: Path, out_dir: Path, epochs: int | None = None,
                      images_per_volume: int | None = None, doc: Path | None = None,
                      seed: int | None = None) -> dict[str, dict]:
    """Run ``protocol`` (``gondara2016``, ``nit_raipur``, ``dualnet`` or ``all``); return results by protocol."""
    from .document import render_document
    from .dualnet import run_dualnet
    from .protocols import PAPER_EPOCHS, run_gondara, run_nit_raipur

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = ("gondara2016", "nit_raipur", "dualnet") if protocol == "all" else (protocol,)
    common = {"epochs": epochs or PAPER_EPOCHS, "per_volume": images_per_volume or 20}
    results: dict[str, dict] = {}
    for name in wanted:
        extra = {} if seed is None else {"seed": seed}
        if name == "gondara2016":
            results[name] = run_gondara(data_root, **common, **extra)
        elif name == "nit_raipur":
            results[name] = run_nit_raipur(data_root, **common, **extra)
        else:
            results[name] = run_dualnet(data_root, out_dir, **extra)
        (out_dir / f"{name}.json").write_text(json.dumps(json_ready(results[name]), indent=1))
        logger.info("%s done: %s", name, out_dir / f"{name}.json")
    if doc is not None:
        parts = [f"meddenoise evaluate --protocol {protocol} --data-root {data_root} --out {out_dir}",
                 f"--doc {doc}"]
        if epochs is not None:
            parts.append(f"--epochs {epochs}")
        if images_per_volume is not None:
            parts.append(f"--images-per-volume {images_per_volume}")
        if seed is not None:
            parts.append(f"--seed {seed}")
        render_document(results, doc, command=" ".join(parts))
        logger.info("wrote %s", doc)
    return results
