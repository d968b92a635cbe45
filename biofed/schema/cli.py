"""`biofed validate FILE...`: check records against the data standard."""

from __future__ import annotations

import json

import click

from biofed.schema.files import validate_file


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--unsigned", is_flag=True, help="Validate content before signing: version, dateModified, proof not required.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON report instead of lines.")
def validate(files, unsigned, as_json):
    """Validate BioFed records (a JSON record, a JSON array, or JSON Lines).

    Prints every issue as FILE:LINE-or-[INDEX]: ID: POINTER: MESSAGE [RULE],
    then a summary. Exits 0 only when every record is valid.
    """
    total = invalid = issues = 0
    report = []
    for path in files:
        for result in validate_file(path, signed=not unsigned):
            total += 1
            if result.valid:
                continue
            invalid += 1
            issues += len(result.issues)
            if as_json:
                report.append(result.as_dict())
            else:
                for line in result.lines():
                    click.echo(line)
    summary = {"records": total, "valid": total - invalid, "invalid": invalid, "issues": issues}
    if as_json:
        click.echo(json.dumps({**summary, "signed": not unsigned, "results": report}, ensure_ascii=False, indent=2))
    else:
        click.echo(f"{total} record{'s' if total != 1 else ''}: {total - invalid} valid, {invalid} invalid, "
                   f"{issues} issue{'s' if issues != 1 else ''}")
    if invalid:
        raise SystemExit(1)
