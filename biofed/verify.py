"""`biofed verify`: check a signed document offline.

Any Data Integrity (eddsa-jcs-2022) signed JSON document verifies with
`--key`; a BioFed record is then also checked against the data standard.
With `--registry`, the key is looked up in a signed registry document instead.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from biofed.errors import BiofedError
from biofed.trust import jsonprofile, proofs
from biofed.trust.keys import PublicKey

BIOFED_TYPES = {"Actor", "Project", "Offer"}


def read_documents(path: Path) -> list[dict]:
    """A JSON file holds one document; a .jsonl file one per line."""
    data = path.read_bytes()
    if path.suffix == ".jsonl":
        lines = [line for line in data.splitlines() if line.strip()]
        return [jsonprofile.loads(line, max_bytes=None) for line in lines]
    return [jsonprofile.loads(data, max_bytes=None)]


def _at_proof_time(resolver, document):
    """A registry lookup bound to the time the proof says it was made."""
    created = (document.get("proof") or {}).get("created") if isinstance(document, dict) else None
    try:
        at = datetime.fromisoformat(created.replace("Z", "+00:00")) if isinstance(created, str) else None
    except ValueError:
        at = None
    return lambda method: resolver(method, at=at)


def read_keys(key_text: str):
    """--key: one key (PublicKey.parse), or the keys of a JWKS or node descriptor file.

    A node descriptor (`biofed node show`, /.well-known/biofed-node.json) or a
    JWKS with several keys gives a (verificationMethod, at=None) lookup by kid
    that honours each key's validFrom/validUntil and a revoked key's
    compromisedSince at the proof's time, as a registry lookup does.
    """
    path = Path(key_text)
    entries = None
    if path.is_file() and b"-----BEGIN" not in (data := path.read_bytes()):
        try:
            obj = json.loads(data)
        except ValueError:
            obj = None
        entries = obj.get("keys") if isinstance(obj, dict) else None
        if isinstance(entries, dict):  # a node descriptor: {"keys": {"keys": [...]}}
            entries = entries.get("keys")
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            entries = None
        elif len(entries) == 1 and "status" not in entries[0]:
            entries = None  # a plain one-key JWKS: PublicKey.parse reads it
    if entries is None:
        return PublicKey.parse(key_text)
    from biofed.registry.document import key_valid_at, public_jwk

    by_kid = {}
    for entry in entries:
        key = PublicKey.from_jwk(public_jwk(entry))
        by_kid[key.kid] = (entry, key)

    def resolve(method: str, at: datetime | None = None) -> PublicKey | None:
        entry, key = by_kid.get(proofs.key_fragment(method), (None, None))
        if entry is None:
            return None
        if at is None:
            return None if entry.get("status") == "revoked" else key
        return key if key_valid_at(entry, at.astimezone(timezone.utc)) else None

    return resolve


def verify_document(document: dict, keys) -> list[str]:
    """Return the problems with one document (empty when it verifies)."""
    try:
        proofs.verify(document, keys)
    except proofs.ProofError as exc:
        return [f"proof: {exc} ({exc.reason})"]
    if isinstance(document, dict) and isinstance(document.get("type"), str) and document["type"] in BIOFED_TYPES:
        from biofed.schema import validate_record

        return [f"schema: {issue.pointer or '/'}: {issue.message} ({issue.rule})" for issue in validate_record(document)]
    return []


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_text", help="Public key: multibase (z6Mk...), or a JWK, JWKS, PEM or node descriptor file.")
@click.option("--registry", "registry_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A signed registry document: verify with the key it pins for the record's node.")
@click.option("--registry-key", help="With --registry: the registry's public key, to check the registry itself.")
def verify(file, key_text, registry_path, registry_key):
    """Verify the proof of a signed JSON (or JSONL) document, offline."""
    if bool(key_text) == bool(registry_path):
        raise BiofedError("give exactly one of --key or --registry")
    if key_text:
        keys = read_keys(key_text)
    else:
        from biofed.registry.document import key_resolver

        keys = key_resolver(json.loads(registry_path.read_bytes()), registry_key)
    documents = read_documents(file)
    failures = 0
    for index, document in enumerate(documents, 1):
        label = document.get("id", f"document {index}") if isinstance(document, dict) else f"document {index}"
        problems = verify_document(document, _at_proof_time(keys, document) if not isinstance(keys, PublicKey) else keys)
        if problems:
            failures += 1
            for problem in problems:
                click.echo(f"{file}: {label}: {problem}", err=True)
        else:
            click.echo(f"{file}: {label}: verified")
    if failures:
        raise SystemExit(1)
