"""`biofed verify` on the W3C vector and on BioFed records, through the real command line."""

import json
import subprocess
import sys

from biofed.trust import proofs
from biofed.trust.keys import SigningKey

W3C_KEY = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"


def biofed(*args):
    return subprocess.run([sys.executable, "-m", "biofed", *args], capture_output=True, text=True, timeout=60)


def test_w3c_signed_credential_verifies(vectors):
    result = biofed("verify", str(vectors / "eddsa-jcs-2022" / "signedJCS.json"), "--key", W3C_KEY)
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stdout


def test_failures_say_why(vectors, tmp_path):
    signed = json.loads((vectors / "eddsa-jcs-2022" / "signedJCS.json").read_text())
    signed["issuer"] = "https://vc.example/issuers/9999"
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(signed))
    result = biofed("verify", str(path), "--key", W3C_KEY)
    assert result.returncode == 1
    assert "bad-signature" in result.stderr and "changed after signing" in result.stderr
    other = SigningKey.generate().public.multibase
    result = biofed("verify", str(vectors / "eddsa-jcs-2022" / "signedJCS.json"), "--key", other)
    assert result.returncode == 1 and "wrong-key" in result.stderr


def test_key_as_jwk_and_pem_files(tmp_path):
    key = SigningKey.generate()
    doc = proofs.sign({"id": "urn:example:1", "name": "Example"}, key, f"urn:biofed:n1#{key.kid}")
    (tmp_path / "doc.json").write_text(json.dumps(doc))
    (tmp_path / "key.jwk").write_text(json.dumps(key.public.jwk()))
    (tmp_path / "key.pem").write_bytes(key.public.pem())
    for key_file in ("key.jwk", "key.pem"):
        result = biofed("verify", str(tmp_path / "doc.json"), "--key", str(tmp_path / key_file))
        assert result.returncode == 0, result.stderr


def test_unreadable_input_is_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"a": 1, "a": 2}')
    result = biofed("verify", str(bad), "--key", W3C_KEY)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error:") and "duplicate key" in result.stderr
    assert "Traceback" not in result.stderr
    result = biofed("verify", str(bad), "--key", "not-a-key")
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_registry_mode_uses_the_proof_time_for_revoked_keys(tmp_path):
    from biofed.protocol.registry import key_entry, new_registry, sign_registry

    registry_key, node_key = SigningKey.generate(), SigningKey.generate()
    entry = key_entry(node_key.public, valid_from="2026-01-01T00:00:00Z")
    entry.update(status="revoked", compromisedSince="2026-06-01T00:00:00Z")
    draft = new_registry("r", registry_key)
    draft["nodes"].append({"id": "genopole", "name": "Genopole", "country": "FR", "region": "FR1",
                           "baseUrl": "https://node.genopole.example", "licence": "CC-BY-4.0", "status": "active",
                           "controlVerified": True, "keys": [entry]})
    (tmp_path / "registry.json").write_text(json.dumps(sign_registry(draft, registry_key)))
    method = f"urn:biofed:genopole#{node_key.kid}"
    for name, created, code in (("before", "2026-03-01T00:00:00Z", 0), ("after", "2026-07-01T00:00:00Z", 1)):
        doc = proofs.sign({"id": "urn:example:1", "name": "Example"}, node_key, method, created=created)
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
        result = biofed("verify", str(tmp_path / f"{name}.json"), "--registry", str(tmp_path / "registry.json"),
                        "--registry-key", registry_key.public.multibase)
        assert result.returncode == code, (name, result.stderr)


def test_key_as_node_descriptor_with_rotated_and_revoked_keys(tmp_path):
    """`--key` with a node descriptor (`biofed node show`): each record's own key, within its validity."""
    from biofed.protocol.registry import key_entry

    old, new = SigningKey.generate(), SigningKey.generate()
    before = proofs.sign({"id": "n1/actor/a", "name": "A"}, old, f"urn:biofed:n1#{old.kid}",
                         created="2026-01-01T00:00:00Z")
    after = proofs.sign({"id": "n1/actor/b", "name": "B"}, new, f"urn:biofed:n1#{new.kid}",
                        created="2026-06-01T00:00:00Z")
    (tmp_path / "records.jsonl").write_text(json.dumps(before) + "\n" + json.dumps(after) + "\n")
    descriptor = {"id": "n1", "keys": {"keys": [
        key_entry(old.public, status="retired", valid_from="2025-01-01T00:00:00Z", valid_until="2026-03-01T00:00:00Z"),
        key_entry(new.public, valid_from="2026-03-01T00:00:00Z")]}}
    (tmp_path / "node.json").write_text(json.dumps(descriptor))
    result = biofed("verify", str(tmp_path / "records.jsonl"), "--key", str(tmp_path / "node.json"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("verified") == 2
    descriptor["keys"]["keys"][0].update(status="revoked", compromisedSince="2025-06-01T00:00:00Z")
    (tmp_path / "node.json").write_text(json.dumps(descriptor))
    result = biofed("verify", str(tmp_path / "records.jsonl"), "--key", str(tmp_path / "node.json"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "n1/actor/a: proof" in result.stderr and "n1/actor/b: verified" in result.stdout
