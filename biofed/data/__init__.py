"""Real open data shipped with BioFed for the demo network and the tests.

    from biofed.data import demo_nodes, demo_rows
    for node in demo_nodes():                      # six regional clusters
        rows = list(demo_rows(node["id"]))         # ImportRows: ROR actors, CORDIS actors, CORDIS projects
        contents = [row.content for row in rows if row.content is not None]

`partition()` says what each node imports (file, format, importer options),
for callers that run `read_rows` themselves, e.g. `biofed node import`.
Record ids are deterministic, so a project on one node can name its partners
on the other nodes: ROR actors `<node>/actor/<ROR id suffix>`, CORDIS
organisations `<node>/actor/pic-<PIC>` (or `org-<hash prefix>`), projects
`<node>/project/h2020-<reference>`. Sources, licences and attribution:
README.md in this folder.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Iterator

from biofed.errors import BiofedError

HERE = Path(__file__).parent
SCOPE = "life-science"  # what the demo nodes import of ROR and CORDIS
ATTRIBUTION = {
    "ROR": "ROR, CC0 1.0",
    "CORDIS": "Source: CORDIS, © European Union",
    "NUTS": "© EuroGeographics for the administrative boundaries",
}


def data_path(name: str) -> Path:
    """Path of a shipped file, e.g. data_path("ror-regions.jsonl"), data_path("cordis")."""
    path = HERE / name
    if not path.exists():
        raise BiofedError(f"no shipped data file {name!r} in biofed/data")
    return path


@functools.cache
def _nodes() -> tuple[dict, ...]:
    return tuple(json.loads(data_path("nodes.json").read_text(encoding="utf-8")))


def demo_nodes() -> list[dict]:
    """The six demo clusters: id, name, country, region (NUTS), licence, description."""
    return [{k: v for k, v in node.items() if k != "samples"} for node in _nodes()]


def node_for_region(region: str | None) -> str | None:
    """The demo node whose region contains a NUTS code (`DE11` -> `biopro-bw`)."""
    if not region:
        return None
    for node in _nodes():
        if region.startswith(node["region"]):
            return node["id"]
    return None


def actor_id_for(org) -> str | None:
    """Record id of a CORDIS organisation's Actor on its demo node, or None outside the demo regions
    (the id of the record it was merged into when ROR describes the same organisation)."""
    node_id = node_for_region(org.region)
    if not node_id:
        return None
    record_id = f"{node_id}/actor/{org.local_id}"
    return _merged_ids(node_id).get(record_id, record_id)


@functools.cache
def _merged_ids(node_id: str) -> dict[str, str]:
    """id of an Actor row -> id of the record it is merged into on that node (see demo_rows)."""
    from biofed.node.importers import read_rows
    from biofed.node.importers.matching import merge_actors

    node = partition()[node_id]["node"]
    contents = [row.content for spec in partition()[node_id]["imports"] if spec["format"] in ("ror", "cordis")
                for row in read_rows(spec["path"], format=spec["format"], node_id=node_id, node_region=node["region"],
                                     **{**spec["options"], "kind": "actor"})
                if row.content is not None and not row.errors and row.content.get("type") == "Actor"]
    return merge_actors(contents).aliases


def partition() -> dict[str, dict]:
    """node id -> {"node": descriptor fields, "imports": [{"path", "format", "options"}...]}.

    Each import is one `read_rows(path, format=..., node_id=..., node_region=..., **options)` call.
    """
    result = {}
    for node in _nodes():
        result[node["id"]] = {
            "node": {k: v for k, v in node.items() if k != "samples"},
            "imports": [
                # the life-science scope: no archives, museums or mining companies (docs/importing.md);
                # ROR organisations that take part in the CORDIS projects get derived sectors and stages
                {"path": data_path("ror-regions.jsonl"), "format": "ror",
                 "options": {"within": node["region"], "scope": SCOPE, "evidence": data_path("cordis")}},
                {"path": data_path("cordis"), "format": "cordis",
                 "options": {"within": node["region"], "actor_id_for": actor_id_for, "scope": SCOPE}},
                # fictional member spreadsheets (samples/): sectors, stages, technologies and offers,
                # which ROR and CORDIS do not carry
                *({"path": data_path(name), "format": "csv", "options": {}} for name in node.get("samples", ())),
            ],
        }
    return result


def demo_rows(node_id: str) -> Iterator:
    """Every ImportRow of one demo node, ROR actors first, then CORDIS actors and projects; the ROR and CORDIS
    descriptions of one organisation merged into one Actor (biofed.node.importers.matching)."""
    from biofed.node.importers.matching import merge_import_rows

    yield from merge_import_rows(_rows(node_id))


def _rows(node_id: str) -> Iterator:
    from biofed.node.importers import read_rows

    parts = partition()
    if node_id not in parts:
        raise BiofedError(f"{node_id!r} is not a demo node; known: {', '.join(parts)}")
    node = parts[node_id]["node"]
    for spec in parts[node_id]["imports"]:
        yield from read_rows(spec["path"], format=spec["format"], node_id=node_id, node_region=node["region"],
                             **spec["options"])
