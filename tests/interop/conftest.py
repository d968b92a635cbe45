"""Interop with Go's reference signed-note and transparency-log packages.

The tests build tests/interop/go/biofedinterop with the Go toolchain in GOPATH
mode, offline (GO111MODULE=off, GOPROXY=off), against the sources of
golang.org/x/mod -- on Debian the packages golang-go and
golang-golang-x-mod-dev. They skip, naming what is missing, when either is
absent. BIOFED_GOPATH may point at another GOPATH holding golang.org/x/mod.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROGRAM = Path(__file__).parent / "go" / "biofedinterop" / "main.go"
DEBIAN_GOPATH = "/usr/share/gocode"  # where golang-golang-x-mod-dev installs its sources
PACKAGES = ("golang.org/x/mod/sumdb/note", "golang.org/x/mod/sumdb/tlog")


class GoInterop:
    def __init__(self, binary: Path):
        self.binary = binary

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.binary), *args], capture_output=True, text=True, timeout=60)


class GoToolchain:
    """`go build` in GOPATH mode, offline, with golang.org/x/mod from `gopath`."""

    def __init__(self, go: str, gopath: str, work: Path):
        self.go, self.work = go, work
        self.env = {**os.environ, "GO111MODULE": "off", "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0",
                    "GOPATH": f"{gopath}{os.pathsep}{work / 'gopath'}", "GOCACHE": str(work / "cache")}

    def build(self, source: Path, name: str) -> GoInterop:
        binary = self.work / name
        built = subprocess.run([self.go, "build", "-o", str(binary), str(source)], capture_output=True, text=True,
                               env=self.env, timeout=600)
        assert built.returncode == 0, f"go build of {source.name} failed:\n{built.stderr}"
        return GoInterop(binary)


@pytest.fixture(scope="session")
def go_toolchain(tmp_path_factory) -> GoToolchain:
    go = shutil.which("go")
    if go is None:
        pytest.skip("the Go toolchain `go` is not on PATH (Debian package golang-go)")
    gopath = os.environ.get("BIOFED_GOPATH", DEBIAN_GOPATH)
    missing = [p for p in PACKAGES if not (Path(gopath) / "src" / p).is_dir()]
    if missing:
        pytest.skip(f"Go sources of {', '.join(missing)} not found under {gopath}/src "
                    "(Debian package golang-golang-x-mod-dev, or set BIOFED_GOPATH)")
    return GoToolchain(go, gopath, tmp_path_factory.mktemp("go"))


@pytest.fixture(scope="session")
def go_interop(go_toolchain) -> GoInterop:
    return go_toolchain.build(PROGRAM, "biofedinterop")
