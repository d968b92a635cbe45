"""CORDIS import rates (Horizon Europe and the shipped Horizon 2020 extract) and the demo's coverage.

    python -m bench.bench_cordis [--projects 5000] [--repeat 20]

* the Horizon Europe importer on its fixture (tests/data/cordis-he: 4 projects,
  11 participations), read and mapped, repeated;
* the same importer on a generated export of `--projects` projects in the same
  layout (the fixture's rows with new project ids and PICs), read and mapped,
  then imported into a node (validated, signed, stored, one transaction);
* the shipped Horizon 2020 extract (biofed/data/cordis), read and mapped, with
  and without the life-science scope and the derived sectors and stages;
* the demo's coverage, from the shipped data as the six nodes import it:
  actors with sectors / stages, partners resolved to an actor record.
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
from pathlib import Path

from biofed.data import data_path, demo_nodes, demo_rows
from biofed.node.importers import read_rows
from biofed.node.importing import import_rows
from biofed.node.store import init_node

FIXTURE = Path(__file__).parent.parent / "tests" / "data" / "cordis-he"


def _table(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline=""), delimiter=";"))
    return rows[0], rows[1:]


def generated_export(folder: Path, projects: int) -> Path:
    """`projects` projects in the export layout: the fixture's rows, renumbered."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in FIXTURE.glob("*.csv"):
        header, rows = _table(source)
        key = "id" if source.name == "project.csv" else "projectID"
        pic = header.index("organisationID") if "organisationID" in header else None
        column = header.index(key)
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\n")
        writer.writerow(header)
        copies = -(-projects // 4)  # the fixture has 4 projects
        for copy in range(copies):
            for row in rows:
                row = list(row)
                row[column] = str(int(row[column]) + copy * 10)  # 101990001 -> 101990011, ...
                if pic is not None:
                    row[pic] = str(int(row[pic]) - copy * 10)
                writer.writerow(row)
        (folder / source.name).write_text(out.getvalue(), encoding="utf-8")
    return folder


def rate(label: str, path: Path, repeat: int, **options) -> int:
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        rows = list(read_rows(path, format="cordis", node_id="bench-node", **options))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert not [r for r in rows if r.errors], [r.errors for r in rows if r.errors][:3]
    print(f"| {label} | {len(rows)} | {len(rows) * repeat / wall:,.0f} rows/s | {len(rows) * repeat / cpu:,.0f} rows/s |")
    return len(rows)


def coverage() -> None:
    regions = {n["region"]: n["id"] for n in demo_nodes()}
    actors = sectors = stages = partners = resolved = in_regions = resolved_in_regions = 0
    for node in demo_nodes():
        for row in demo_rows(node["id"]):
            content = row.content
            if content["type"] == "Actor":
                actors += 1
                sectors += "sectors" in content
                stages += "valueChainStages" in content
            for partner in content.get("partners", []):
                partners += 1
                resolved += "actor" in partner
                if any(partner.get("region", "").startswith(region) for region in regions):
                    in_regions += 1
                    resolved_in_regions += "actor" in partner
    print(f"| actors with sectors | {sectors} of {actors} ({sectors / actors:.0%}) |")
    print(f"| actors with value-chain stages | {stages} of {actors} ({stages / actors:.0%}) |")
    print(f"| partners resolved to an actor record | {resolved} of {partners} ({resolved / partners:.0%}) |")
    print(f"| partners located in a demo region resolved | {resolved_in_regions} of {in_regions} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    print("| input | rows (actors + projects) | read and mapped, wall | CPU |\n|---|---|---|---|")
    rate("Horizon Europe fixture", FIXTURE, args.repeat * 10)
    with tempfile.TemporaryDirectory() as tmp:
        export = generated_export(Path(tmp) / "export", args.projects)
        count = rate(f"Horizon Europe, generated export of {args.projects} projects", export, 1)
        rate(f"the same, --scope life-science", export, 1, scope="life-science")
        rate("shipped Horizon 2020 extract (54 projects), no derivation", data_path("cordis"), args.repeat,
             derive=False)
        rate("the same, with derived sectors and stages", data_path("cordis"), args.repeat)
        rate("the same, --scope life-science", data_path("cordis"), args.repeat, scope="life-science")
        node, _ = init_node(Path(tmp) / "node", node_id="bench-node", name="Bench", country="DE", region="DE1")
        started, cpu = time.perf_counter(), time.process_time()
        outcome = import_rows(node, read_rows(export, format="cordis", node_id=node.id))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        node.close()
        assert outcome.result.created == count and not outcome.rejected
        print(f"| Horizon Europe export imported into a node (validated, signed, stored) | {count} | "
              f"{count / wall:,.0f} records/s | {count / cpu:,.0f} records/s |")
    print("\n| demo coverage (shipped data as the six nodes import it) | |\n|---|---|")
    coverage()


if __name__ == "__main__":
    main()
