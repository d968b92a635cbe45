"""The Go program in docs/developers.md builds and verifies a record of a real node served over HTTP."""

from __future__ import annotations

import re
from pathlib import Path

from support.hostile import serve
from support.node import NODE_ID, actors, make_node

from biofed.node.app import create_app

DOC = Path(__file__).parents[2] / "docs" / "developers.md"


def test_developers_go_snippet_verifies_a_record(go_toolchain, tmp_path):
    (source,) = re.findall(r"```go\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    path = tmp_path / "check" / "check.go"
    path.parent.mkdir()
    path.write_text(source, encoding="utf-8")
    program = go_toolchain.build(path, "check")
    node, _ = make_node(tmp_path)
    node.put_many(actors(5))
    node.delete("actor/org-2")
    node.close()
    served = serve(create_app(tmp_path / "node", checkpoint_interval=3600))
    try:
        for record_id, seq in ((f"{NODE_ID}/actor/org-1", 2), (f"{NODE_ID}/actor/org-2", 6)):
            result = program.run(served.url, record_id)
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == f"verified: {record_id} is entry {seq} of biofed/node/{NODE_ID} at size 6"
        # it can fail: a record the node does not hold has no entry to prove
        assert program.run(served.url, f"{NODE_ID}/actor/nothing").returncode != 0
    finally:
        served.stop()
