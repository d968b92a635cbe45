"""`biofed verify`: check a signed document offline.

Any Data Integrity (eddsa-jcs-2022) signed JSON document verifies with
`--key`; a BioFed record is then also checked against the data standard.
With `--registry`, the key is looked up in a signed registry document instead;
with a registry or a node descriptor the key must be valid when the proof was
made (docs/protocol.md §7), as the aggregator requires.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from biofed.errors import BiofedError
from biofed.protocol.registry import RegistryKeys, key_resolver
from biofed.protocol.times import time_or_none
from biofed.protocol.types import CONTENT_TYPES
from biofed.protocol.validity import KeyLookup
from biofed.trust import jsonprofile, proofs
from biofed.trust.keys import PublicKey


def read_documents(path: Path) -> list[dict]:
    """A JSON file holds one document; a .jsonl file one per line."""
    data = path.read_bytes()
    if path.suffix == ".jsonl":
        lines = [line for line in data.splitlines() if line.strip()]
        return [jsonprofile.loads(line, max_bytes=None) for line in lines]
    return [jsonprofile.loads(data, max_bytes=None)]


def read_keys(key_text: str) -> PublicKey | KeyLookup:
    """--key: one key (PublicKey.parse), or the keys of a JWKS or node descriptor file.

    A node descriptor (`biofed node show`, /.well-known/biofed-node.json) or a
    JWKS with several keys gives a lookup by kid that applies each key's
    validity at the proof's time (biofed.protocol.validity), as a registry
    lookup does.
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
    return KeyLookup(entries)


def verify_document(document: dict, keys: PublicKey | KeyLookup | RegistryKeys) -> list[str]:
    """Return the problems with one document (empty when it verifies).

    With a lookup (node descriptor, registry) the key must be valid when the
    proof was `created` -- the rule the aggregator applies.
    """
    if isinstance(keys, PublicKey):
        select = keys
    else:
        proof = document.get("proof") if isinstance(document, dict) else None
        created = time_or_none(proof.get("created")) if isinstance(proof, dict) else None
        if isinstance(proof, dict) and created is None:
            return [f"proof: proof.created {proof.get('created')!r} is not an RFC 3339 time, so the key's "
                    "validity cannot be checked (bad-signature)"]
        select = lambda method: keys(method, at=created)  # noqa: E731
    try:
        proofs.verify(document, select)
    except proofs.ProofError as exc:
        if exc.reason == "unknown-key" and not isinstance(keys, PublicKey):
            method = document["proof"]["verificationMethod"]
            return [f"proof: {keys.explain(method, created) or exc} (unknown-key)"]
        return [f"proof: {exc} ({exc.reason})"]
    if isinstance(document, dict) and isinstance(document.get("type"), str) and document["type"] in CONTENT_TYPES:
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
        keys = key_resolver(json.loads(registry_path.read_bytes()), registry_key)
    documents = read_documents(file)
    failures = 0
    for index, document in enumerate(documents, 1):
        label = document.get("id", f"document {index}") if isinstance(document, dict) else f"document {index}"
        problems = verify_document(document, keys)
        if problems:
            failures += 1
            for problem in problems:
                click.echo(f"{file}: {label}: {problem}", err=True)
        else:
            click.echo(f"{file}: {label}: verified")
    if failures:
        raise SystemExit(1)
