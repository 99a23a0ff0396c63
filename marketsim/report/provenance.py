"""Provenance of a results directory for the report: what ran, from which files and seeds,
with which versions and plugins."""

from __future__ import annotations

import json
from typing import Any

from marketsim.analysis import LoadedResults


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _seed_summary(seeds: list[Any]) -> str:
    """``entropy 2025, spawn keys [0] … [19] (20 replications)`` or the list itself."""
    if not seeds:
        return "-"
    if all(isinstance(s, dict) for s in seeds):
        entropies = {str(s.get("entropy")) for s in seeds}
        if len(entropies) == 1:
            first = _text(seeds[0].get("spawn_key"))
            last = _text(seeds[-1].get("spawn_key"))
            span = first if len(seeds) == 1 else f"{first} … {last}"
            return f"entropy {entropies.pop()}, spawn keys {span} ({len(seeds)} replications)"
    return _text(seeds)


def provenance(item: LoadedResults) -> dict[str, Any]:
    """Sections of ``(key, value)`` rows describing ``item`` for the report."""
    manifest = item.manifest
    sections = []
    if item.kind == "study":
        study = manifest.get("study") or {}
        design = manifest.get("design") or {}
        sections.append(
            {
                "title": "study",
                "rows": [
                    ("directory", str(item.directory)),
                    *((key, _text(value)) for key, value in study.items()),
                    (
                        "design",
                        f"{design.get('method', 'none')}, n = {design.get('n', '-')}, "
                        f"{len(design.get('points') or [])} points",
                    ),
                    ("tasks", _text(manifest.get("tasks", "-"))),
                    ("replication seeds", _seed_summary(manifest.get("seeds") or [])),
                ],
            }
        )
        factors = manifest.get("factors") or []
        if factors:
            sections.append(
                {
                    "title": "factors",
                    "rows": [
                        (str(f.get("key")), _text({k: v for k, v in f.items() if k != "key"}))
                        for f in factors
                    ],
                }
            )
        sections.append(
            {
                "title": "scenarios (source, sha256)",
                "rows": [
                    (name, f"{spec.get('source', '-')}  sha256 {spec.get('sha256', '-')}")
                    for name, spec in (manifest.get("scenarios") or {}).items()
                ],
            }
        )
    else:
        sections.append(
            {
                "title": "run",
                "rows": [
                    ("directory", str(item.directory)),
                    ("experiment", item.label),
                    ("source", _text(manifest.get("source", "-"))),
                    ("experiment sha256", _text(manifest.get("experiment_sha256", "-"))),
                    ("seed", _text(manifest.get("seed", "-"))),
                    ("steps", _text(manifest.get("steps", "-"))),
                    ("replications", _text(manifest.get("replications", "-"))),
                    ("replication seeds", _seed_summary(manifest.get("replication_seeds") or [])),
                    ("started", _text(manifest.get("started", "-"))),
                    ("finished", _text(manifest.get("finished", "-"))),
                ],
            }
        )
    sections.append(
        {
            "title": "versions",
            "rows": [(k, _text(v)) for k, v in (manifest.get("versions") or {}).items()],
        }
    )
    sections.append(
        {
            "title": "plugins (version, source, sha256)",
            "rows": [
                (
                    str(p.get("name", "-")),
                    f"{p.get('version', '-')}  {p.get('source', '-')}  "
                    f"sha256 {p.get('sha256', '-')}",
                )
                for p in manifest.get("plugins") or []
                if isinstance(p, dict)
            ],
        }
    )
    return {"label": f"{item.label} ({item.kind})", "sections": sections}
