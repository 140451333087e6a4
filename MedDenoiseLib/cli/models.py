"""``meddenoise models``: list architectures and shipped models."""

from __future__ import annotations

import json

from ..models import build_model, count_parameters, get_spec, list_models
from ..models.resolve import models_root, shipped_models


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list architectures and shipped models (JSON)")
    p.set_defaults(run=run)


def run(args) -> int:
    architectures = {name: {"description": get_spec(name).description, "citation": get_spec(name).citation,
                            "parameters": count_parameters(build_model(name))} for name in list_models()}
    shipped = {}
    for name, path in shipped_models().items():
        card = json.loads((path / "card.json").read_text(encoding="utf-8"))
        shipped[name] = {k: card.get(k) for k in ("modality", "architecture", "parameters", "sha256")}
    print(json.dumps({"architectures": architectures, "shipped": shipped, "models_root": str(models_root())}, indent=1))
    return 0
