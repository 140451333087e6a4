"""Data provenance for model cards: which files trained a model, where they came from, under which licence.

Training files listed in a data ``manifest.json`` (as in ``../shared/data/``) carry their source
package, version, registry, licence and body part into the card; the file's sha256 is checked
against the manifest's. Files not listed are recorded by path and sha256 only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..io.regions import split_region
from ..model_files import sha256_of

logger = logging.getLogger(__name__)

__all__ = ["MANIFEST_FIELDS", "data_provenance", "find_manifest"]

MANIFEST_NAME = "manifest.json"
#: Manifest entry fields copied into the card.
MANIFEST_FIELDS = ("modality", "body_part", "source_package", "source_version", "registry", "path_in_package",
                   "licence")


def find_manifest(paths: list[str], explicit: str | None = None) -> Path | None:
    """``explicit`` if given, else the first ``manifest.json`` in a parent folder of any of ``paths``."""
    if explicit:
        return Path(explicit)
    for path in paths:
        for parent in Path(split_region(path)[0]).expanduser().resolve().parents:
            if (parent / MANIFEST_NAME).is_file():
                return parent / MANIFEST_NAME
    return None


def data_provenance(paths: list[str], *, manifest: str | Path | None = None) -> list[dict]:
    """One JSON-ready record per file: path, sha256 and, when the manifest lists it, its source and licence."""
    entries: dict[Path, dict] = {}
    root = None
    if manifest is not None and Path(manifest).is_file():
        root = Path(manifest).resolve().parent
        for entry in json.loads(Path(manifest).read_text(encoding="utf-8")).get("files", []):
            entries[(root / entry["path"]).resolve()] = entry
    records = []
    for path in paths:
        file_path, region = split_region(path)
        resolved = Path(file_path).expanduser().resolve()
        record: dict = {"path": str(path), "sha256": sha256_of(resolved) if resolved.is_file() else None}
        if region is not None:
            record["region_zyx"] = region.text()
        entry = entries.get(resolved)
        record["in_manifest"] = entry is not None
        if entry is not None:
            record.update({k: entry[k] for k in MANIFEST_FIELDS if k in entry})
            record["manifest_path"] = entry["path"]
            record["sha256_matches_manifest"] = record["sha256"] == entry.get("sha256")
            if not record["sha256_matches_manifest"]:
                logger.warning("%s differs from the manifest's sha256", path)
        records.append(record)
    return records
