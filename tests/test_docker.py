"""The compose file describes a network that can really run: no container engine
runs here, so check that every service's command is a real `biofed` command line
and that ports, volumes and URLs line up."""

import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import click
import pytest
import yaml

from biofed.cli import cli

DOCKER = Path(__file__).resolve().parent.parent / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]


def biofed_command_lines(service: dict) -> list[list[str]]:
    """Every `biofed ...` invocation a service runs, as argument lists."""
    entrypoint = service.get("entrypoint")
    command = service["command"]
    if entrypoint == ["sh", "-c"]:
        script = command[0]
        for separator in ("&&", "||", ";", "(", ")", ">/dev/null", "2>&1"):
            script = script.replace(separator, "\n")
        lines = []
        for part in script.split("\n"):
            words = shlex.split(part)
            if words and words[0] == "biofed":
                lines.append(words[1:])
            elif words:
                assert words[0] == "test", f"unexpected shell command {part!r}"
        return lines
    assert entrypoint is None, "the image's entrypoint is biofed"
    return [command]


def resolve(args: list[str]) -> tuple[click.Command, list[str]]:
    command, rest = cli, list(args)
    while isinstance(command, click.Group):
        name, rest = rest[0], rest[1:]
        assert name in command.commands, f"no such command: {name}"
        command = command.commands[name]
    return command, rest


ALL = [(name, line) for name, service in SERVICES.items() for line in biofed_command_lines(service)]


@pytest.mark.parametrize("name, line", ALL, ids=[f"{n}:{' '.join(l[:2])}" for n, l in ALL])
def test_command_is_a_real_biofed_command_line(name, line):
    command, rest = resolve(line)
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"{name}: {' '.join(line)}: unknown option {word}"
    # click parses the arguments for real (types, required options), without running anything;
    # files that exist only inside the containers are the one thing it cannot check here
    try:
        with command.make_context(" ".join(line), list(rest), resilient_parsing=False) as ctx:
            assert ctx.params
    except click.BadParameter as exc:
        assert re.search(r"'(/data/|/tmp/)[^']*' does not exist", exc.format_message()), exc.format_message()


def test_help_of_every_command_exits_zero():
    from click.testing import CliRunner

    runner = CliRunner()
    for _, line in ALL:
        command, _ = resolve(line)
        path = line[: len(line) - len(resolve(line)[1])]
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, result.output


def option(line, name):
    return line[line.index(name) + 1]


def test_ports_volumes_and_urls_line_up():
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in declared, f"{name}: undeclared volume {volume}"
        for line in biofed_command_lines(service):
            if line[-1:] and "serve" in line:
                port = option(line, "--port")
                assert option(line, "--host") == "0.0.0.0", f"{name} must listen beyond the container"
                published = [p.split(":")[1] for p in service.get("ports", [])]
                assert not published or published == [port], f"{name}: publishes {published}, serves {port}"
    # node base URLs point at the node services' ports; the aggregator at the registry service
    for name, service in SERVICES.items():
        for line in biofed_command_lines(service):
            if line[:2] == ["node", "init"]:
                url = urlparse(option(line, "--base-url"))
                server = SERVICES[url.hostname]
                assert option(server["command"], "--port") == str(url.port)
                assert set(service["volumes"]) == set(server["volumes"])
            if line[:2] == ["aggregator", "run"]:
                url = urlparse(option(line, "--registry"))
                assert option(SERVICES[url.hostname]["command"], "--port") == str(url.port)
                published = option(line, "--publish")
                assert published != option(line, "--db"), "serve a snapshot, not the file the harvest writes"
    assert option(SERVICES["catalogue"]["command"], "--db") == published
    assert {v.split(":")[0] for v in SERVICES["catalogue"]["volumes"]} == {v.split(":")[0] for v in SERVICES["aggregator"]["volumes"]}


def test_dockerfile_installs_the_package_and_runs_biofed():
    text = (DOCKER / "Dockerfile").read_text()
    assert "pip install -c requirements.lock ." in text and 'ENTRYPOINT ["biofed"]' in text
    # every file the build copies is in the repository (the build context is its root)
    copied = [name for line in text.splitlines() if line.startswith("COPY ") for name in line.split()[1:-1]]
    assert "requirements.lock" in copied and all((DOCKER.parent / name).exists() for name in copied), copied
    assert "USER biofed" in text  # never root
