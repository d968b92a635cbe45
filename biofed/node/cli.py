"""`biofed node ...` commands: each mirrors a method of biofed.node.store.Node."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from biofed.errors import BiofedError
from biofed.node.join import join_request
from biofed.protocol.types import KINDS

FORMATS = ["csv", "xlsx", "json", "jsonl", "ror", "cordis"]
SHOWN_REJECTS = 20  # the rest go to --rejects


@click.group()
def node():
    """Run a cluster's publishing node (see docs/node.md)."""


node.add_command(join_request)

directory_argument = click.argument("directory", type=click.Path(file_okay=False, path_type=Path))


def _open(directory):
    from biofed.node.store import Node

    return Node.open(directory)


@node.command()
@directory_argument
@click.option("--id", "node_id", required=True, help="Node id, e.g. bioregio-stern (lower case, digits, '-').")
@click.option("--name", required=True, help="Human name of the cluster.")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 country code, e.g. DE.")
@click.option("--region", help="NUTS 2021 code of the cluster's region, e.g. DE1.")
@click.option("--base-url", help="Public URL the node will be served at, e.g. https://biofed.bioregio-stern.de.")
@click.option("--licence", default="CC-BY-4.0", show_default=True, help="SPDX licence of the published data.")
def init(directory, node_id, name, country, region, base_url, licence):
    """Create a node in DIRECTORY: config, signing key, database, admin token."""
    from biofed.node.store import init_node

    node_, token = init_node(directory, node_id=node_id, name=name, country=country, region=region,
                             base_url=base_url, licence=licence)
    kid = node_.signing_key.kid
    node_.close()
    click.echo(f"Created node {node_id} in {directory} (signing key {kid}).", err=True)
    click.echo("Admin token (shown only this once; store it in a password manager):", err=True)
    click.echo(token)


def _read_rows(path: Path, fmt, kind, node_, within=None, scope=None, evidence=None):
    try:
        from biofed.node.importers import read_rows
    except ImportError:  # importers not installed: plain JSON / JSON Lines records only
        read_rows = None
    if read_rows is not None:
        options = {name: value for name, value in (("within", within), ("scope", scope), ("evidence", evidence))
                   if value}
        return list(read_rows(path, format=fmt, kind=kind, node_id=node_.id, node_region=node_.config.region,
                              **options))
    return list(_read_json_rows(path, fmt))


def _read_json_rows(path: Path, fmt):
    from types import SimpleNamespace

    from biofed.trust import jsonprofile

    fmt = fmt or ("jsonl" if path.suffix == ".jsonl" else "json")
    if fmt not in ("json", "jsonl"):
        raise BiofedError(f"format {fmt!r} needs biofed.node.importers")
    data = path.read_bytes()
    lines = data.splitlines() if fmt == "jsonl" else [data]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        source = f"line {number}" if fmt == "jsonl" else ""
        try:
            yield SimpleNamespace(source=source, content=jsonprofile.loads(line), errors=[])
        except jsonprofile.ProfileError as exc:
            yield SimpleNamespace(source=source, content=None,
                                  errors=[SimpleNamespace(field=exc.pointer or "/", message=exc.message)])


def _printable(text: str) -> str:
    """Control characters from an imported file (terminal escapes, NUL) shown escaped, never raw."""
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


def _print_rejects(rejected) -> None:
    for item in rejected[:SHOWN_REJECTS]:
        for error in item.errors:
            where = error.get("pointer") or error.get("field") or "/"
            ident = f" ({item.id})" if item.id else ""
            click.echo(_printable(f"{item.source}{ident}: {where}: {error['message']}"), err=True)
    if len(rejected) > SHOWN_REJECTS:
        click.echo(f"... and {len(rejected) - SHOWN_REJECTS} more rejected rows (see --rejects FILE)", err=True)


def _print_warnings(warnings) -> None:
    for source, warning in warnings[:SHOWN_REJECTS]:
        click.echo(_printable(f"{source}: {warning.field or '/'}: warning: {warning.message}"), err=True)
    if len(warnings) > SHOWN_REJECTS:
        click.echo(f"... and {len(warnings) - SHOWN_REJECTS} more warnings", err=True)


def _print_plan(result) -> None:
    """The dry run's plan on standard output: one line per record, `action<TAB>id<TAB>source`."""
    for action, record_id, source in result.changes:
        click.echo(f"{action}\t{record_id}\t{_printable(source) or 'not in the file'}")


@node.command("import")
@directory_argument
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--type", "kind", type=click.Choice(KINDS), help="What the rows are (default: from the file).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Input format (default: from the file name).")
@click.option("--sync", is_flag=True, help="FILE is the complete list of its record types: delete the published "
                                           "records of those types that it does not mention.")
@click.option("--allow-mass-delete", is_flag=True,
              help="With --sync: allow deleting more than 20 % of a record type's published records.")
@click.option("--within", metavar="REGION", help="ROR and CORDIS: only organisations in this NUTS region, e.g. DE1.")
@click.option("--scope", type=click.Choice(["life-science"]),
              help="ROR and CORDIS: only what the scope's documented rules keep (docs/importing.md).")
@click.option("--evidence", type=click.Path(exists=True, path_type=Path), metavar="CORDIS_DIR",
              help="ROR: a CORDIS folder; its participants count as evidence for --scope and give derived "
                   "sectors and stages.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows; report and skip the rest.")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Write rejected rows with their errors here as JSON Lines.")
@click.option("--dry-run", is_flag=True, help="Validate and report, write nothing; list on standard output what "
                                              "would be created, updated, restored, left unchanged and deleted.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def import_(directory, file, kind, fmt, sync, allow_mass_delete, within, scope, evidence, skip_invalid, rejects, dry_run,
            quiet):
    """Validate, sign and publish the records in FILE, all in one transaction.

    FILE is a spreadsheet, JSON records, a ROR dump or the CORDIS folder. By
    default nothing is imported if any row is invalid. Re-importing the same
    file creates no new versions. Without --sync nothing is deleted.
    """
    from biofed.node.importers import guess_format
    from biofed.node.importing import MASS_DELETE_SHARE, import_rows
    from biofed.progress import progress

    file_format = fmt or guess_format(file)
    if within and file_format not in ("ror", "cordis"):
        raise BiofedError("--within applies to ROR and CORDIS imports only")
    if scope and file_format not in ("ror", "cordis"):
        raise BiofedError("--scope applies to ROR and CORDIS imports only")
    if evidence and file_format != "ror":
        raise BiofedError("--evidence applies to ROR imports only")
    if allow_mass_delete and not sync:
        raise BiofedError("--allow-mass-delete only makes sense with --sync")
    with _open(directory) as node_:
        rows = _read_rows(file, fmt, kind, node_, within=within, scope=scope, evidence=evidence)
        with progress(f"import {file.name}", total=len(rows), quiet=quiet) as advance:
            outcome = import_rows(node_, rows, skip_invalid=skip_invalid, dry_run=dry_run, on_progress=advance,
                                  label=file.name, sync=sync, allow_mass_delete=allow_mass_delete)
        result, rejected = outcome.result, outcome.rejected
        if rejects is not None:
            with rejects.open("w", encoding="utf-8") as out:
                for item in rejected:
                    out.write(json.dumps(item.as_dict(), ensure_ascii=False) + "\n")
        _print_rejects(rejected)
        _print_warnings(outcome.warnings)
        for source, message in outcome.merged[:SHOWN_REJECTS]:
            click.echo(_printable(f"{source}: merged: {message}"), err=True)
        if len(outcome.merged) > SHOWN_REJECTS:
            click.echo(f"... and {len(outcome.merged) - SHOWN_REJECTS} more merged", err=True)
        invalid = len(rejected) - (1 if outcome.file_errors else 0)
        if outcome.file_errors:
            raise BiofedError(f"{file.name}: the file or its header has {outcome.file_errors} error(s) (above) and "
                              f"{invalid} of {outcome.rows} rows are invalid; nothing imported (a column the node "
                              "does not know would be lost, so --skip-invalid does not skip it)")
        if rejected and outcome.all_or_nothing:
            raise BiofedError(f"{len(rejected)} of {outcome.rows} rows in {file.name} are invalid; nothing imported "
                              "(fix them, or use --skip-invalid to import the valid rows)")
        if dry_run:
            _print_plan(result)
        if outcome.mass_delete:
            raise BiofedError(f"--sync would delete {'; '.join(map(str, outcome.mass_delete))}, more than "
                              f"{MASS_DELETE_SHARE:.0%}; nothing imported. Check that {file.name} is complete "
                              "(--dry-run lists the deletions), then add --allow-mass-delete")
        if rejected and not result.written and not result.unchanged:
            raise BiofedError(f"none of the {outcome.rows} rows in {file.name} could be imported")
        for action, record_id, source in result.changes:
            if action == "restored":
                click.echo(_printable(f"{source}: {record_id} was deleted; published again"), err=True)
        verb = "Would import" if dry_run else "Imported"
        click.echo(f"{verb} {file.name}: {result.created} created, {result.updated} updated, "
                   f"{result.unchanged} unchanged, {result.restored} restored, {result.deleted} deleted, "
                   f"{len(rejected)} rejected; log size {result.tree_size}", err=True)
        if outcome.sync_skipped:
            click.echo(f"Nothing deleted: {outcome.sync_skipped}.", err=True)
        for record_type, count in outcome.not_in_file.items():
            click.echo(f"{count} published {record_type} record(s) are not in {file.name}: kept "
                       "(--sync deletes them; --dry-run --sync lists them)", err=True)


@node.command()
@directory_argument
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--checkpoint-interval", type=click.IntRange(min=1),
              help="Seconds between checkpoint re-signs (default: node.json's checkpointInterval).")
def serve(directory, host, port, checkpoint_interval):
    """Serve the node's HTTP API (feeds, checkpoint, write API)."""
    from biofed.node.app import create_app
    from biofed.serving import run_server

    app = create_app(directory, checkpoint_interval=checkpoint_interval)
    run_server(app, host=host, port=port, log_level="info", proxy_headers=True)


@node.group()
@directory_argument
@click.pass_context
def token(ctx, directory):
    """Manage write-API tokens: create, list, revoke."""
    ctx.obj = directory


@token.command("create")
@click.option("--name", required=True, help="Who or what uses the token, e.g. crm-sync.")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(["write", "delete", "admin"]))
@click.pass_obj
def token_create(directory, name, scopes):
    """Create a token; it is printed once and stored only as a hash."""
    with _open(directory) as node_:
        click.echo(node_.create_token(name, list(scopes)))


@token.command("list")
@click.pass_obj
def token_list(directory):
    """List tokens (names and scopes; the tokens themselves are not stored)."""
    with _open(directory) as node_:
        for item in node_.list_tokens():
            click.echo(json.dumps(item, ensure_ascii=False))


@token.command("revoke")
@click.argument("name")
@click.pass_obj
def token_revoke(directory, name):
    """Revoke the token called NAME."""
    with _open(directory) as node_:
        node_.revoke_token(name)
    click.echo(f"Revoked token {name}.", err=True)


@node.command("rotate-key")
@directory_argument
def rotate_key(directory):
    """New signing key; the old one signs the rotation statement and is retired."""
    with _open(directory) as node_:
        old = node_.signing_key.kid
        new = node_.rotate_key()
    click.echo(f"Rotated key {old} -> {new}. Tell the registry: the descriptor now lists both.", err=True)
    click.echo(new)


# A kid is base64url: one in 64 starts with '-', which must not be read as an option.
@node.command("revoke-key", context_settings={"ignore_unknown_options": True})
@directory_argument
@click.argument("kid")
@click.option("--compromised-since", required=True, help="RFC 3339 time from which the key is not to be trusted.")
def revoke_key(directory, kid, compromised_since):
    """Revoke key KID (rotating first if it is the current key)."""
    with _open(directory) as node_:
        node_.revoke_key(kid, compromised_since)
        current = node_.signing_key.kid
    click.echo(f"Revoked key {kid}; current key is {current}. Tell the registry.", err=True)


@node.command()
@directory_argument
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line instead of text.")
def duplicates(directory, as_json):
    """List published Actor records that look like one organisation, with the evidence.

    Evidence, strongest first: a shared identifier (ROR, PIC, VAT, LEI,
    Wikidata, GRID, ISNI), the same website domain, the same normalised name
    in the same city (docs/importing.md). A pair that shares one identifier
    but differs in another is listed with the conflict. Nothing is changed.
    """
    from biofed.node.importers.matching import likely_duplicates
    from biofed.node.published import PublishedRecords

    with _open(directory) as node_:
        found = likely_duplicates(PublishedRecords(node_).records("Actor"))
    for pair in found:
        evidence = pair.evidence
        if as_json:
            click.echo(json.dumps({"first": pair.first, "second": pair.second, "level": evidence.level,
                                   "evidence": evidence.reason, "conflict": evidence.conflict or None},
                                  ensure_ascii=False))
        else:
            click.echo(_printable(f"{pair.first}\t{pair.second}\t{evidence.level}\t{evidence}"))
    click.echo(f"{len(found)} likely duplicate pair(s)", err=True)


@node.command()
@directory_argument
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout).")
def export(directory, output):
    """Write every current record as JSON Lines, exactly as signed."""
    with _open(directory) as node_:
        _, records = node_.current_records()
    out = output.open("wb") if output else sys.stdout.buffer
    try:
        for record in records:
            out.write(record + b"\n")
    finally:
        if output:
            out.close()
        else:
            out.flush()


@node.command()
@directory_argument
def show(directory):
    """Print the node descriptor (what /.well-known/biofed-node.json serves)."""
    with _open(directory) as node_:
        click.echo(json.dumps(node_.descriptor(), indent=2, ensure_ascii=False))


@node.group()
def user():
    """Manage the accounts of the web console (/admin): add, list, reset, disable."""


def _setup_link(node_, token: str) -> str:
    base = node_.config.baseUrl or "http://127.0.0.1:8000"
    return f"{base}/admin/setup?token={token}"


@user.command("add")
@directory_argument
@click.argument("name")
@click.option("--role", type=click.Choice(["editor", "admin"]), default="editor", show_default=True,
              help="editor: create, edit and delete records; admin: also accounts, tokens, keys, audit trail.")
def user_add(directory, name, role):
    """Add the console account NAME; prints its one-time setup link (valid 7 days) on standard output."""
    from biofed.node.console.accounts import Accounts

    with _open(directory) as node_:
        token = Accounts(node_).add_user(name, role)
        click.echo(f"Added {role} {name}. Send them this link (it works once, for 7 days) to choose a password:",
                   err=True)
        click.echo(_setup_link(node_, token))


@user.command("list")
@directory_argument
def user_list(directory):
    """List the console's accounts (name, role, state) as JSON lines."""
    from biofed.node.console.accounts import Accounts

    with _open(directory) as node_:
        for item in Accounts(node_).users():
            click.echo(json.dumps(item, ensure_ascii=False))


@user.command("reset")
@directory_argument
@click.argument("name")
def user_reset(directory, name):
    """A new setup link for NAME (forgotten password): the old password and sessions stop working."""
    from biofed.node.console.accounts import Accounts

    with _open(directory) as node_:
        token = Accounts(node_).reset(name)
        click.echo(_setup_link(node_, token))


@user.command("disable")
@directory_argument
@click.argument("name")
def user_disable(directory, name):
    """Disable the account NAME and end its sessions."""
    from biofed.node.console.accounts import Accounts

    with _open(directory) as node_:
        Accounts(node_).disable(name)
    click.echo(f"Disabled {name}.", err=True)
