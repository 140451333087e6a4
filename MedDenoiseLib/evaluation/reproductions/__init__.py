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


PROTOCOL_NAMES = ("gondara2016", "nit_raipur", "dualnet")


def run_reproductions(protocol: str, *, data_root: Path, out_dir: Path, epochs: int | None = None,
                      images_per_volume: int | None = None, doc: Path | None = None, seed: int | None = None,
                      crop: tuple[int, int, int] | None = None) -> dict[str, dict]:
    """Run ``protocol`` (``gondara2016``, ``nit_raipur``, ``dualnet`` or ``all``); return results by protocol.

    Each protocol's results go to ``out_dir/<protocol>.json`` together with the command that
    made them. ``doc`` is rendered from *every* protocol JSON present in ``out_dir``, so the
    protocols can be run one at a time (e.g. on different days) into one document.
    """
    from .document import render_document
    from .dualnet import CROP_ZYX, run_dualnet
    from .protocols import PAPER_EPOCHS, run_gondara, run_nit_raipur

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = PROTOCOL_NAMES if protocol == "all" else (protocol,)
    common = {"epochs": epochs or PAPER_EPOCHS, "per_volume": images_per_volume or 20}
    extra = {} if seed is None else {"seed": seed}
    results: dict[str, dict] = {}
    for name in wanted:
        if name == "gondara2016":
            results[name] = run_gondara(data_root, **common, **extra)
        elif name == "nit_raipur":
            results[name] = run_nit_raipur(data_root, **common, **extra)
        else:
            results[name] = run_dualnet(data_root, out_dir, crop=crop or CROP_ZYX, **extra)
        results[name]["command"] = _command(name, data_root, out_dir, epochs, images_per_volume, seed, crop)
        (out_dir / f"{name}.json").write_text(json.dumps(json_ready(results[name]), indent=1), encoding="utf-8")
        logger.info("%s done: %s", name, out_dir / f"{name}.json")
    if doc is not None:
        found = {n: json.loads((out_dir / f"{n}.json").read_text(encoding="utf-8")) for n in PROTOCOL_NAMES
                 if (out_dir / f"{n}.json").is_file()}
        render_document(found, doc, commands=[r.get("command", "?") for r in found.values()])
        logger.info("wrote %s from %s", doc, sorted(found))
    return results


def _command(name, data_root, out_dir, epochs, images_per_volume, seed, crop) -> str:
    parts = [f"meddenoise evaluate --protocol {name} --data-root {data_root} --out {out_dir}"]
    if epochs is not None and name != "dualnet":
        parts.append(f"--epochs {epochs}")
    if images_per_volume is not None and name != "dualnet":
        parts.append(f"--images-per-volume {images_per_volume}")
    if crop is not None and name == "dualnet":
        parts.append("--crop {}x{}x{}".format(*reversed(crop)))
    if seed is not None:
        parts.append(f"--seed {seed}")
    return " ".join(parts)
