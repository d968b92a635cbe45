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


@pytest.fixture(scope="session")
def go_interop(tmp_path_factory) -> GoInterop:
    go = shutil.which("go")
    if go is None:
        pytest.skip("the Go toolchain `go` is not on PATH (Debian package golang-go)")
    gopath = os.environ.get("BIOFED_GOPATH", DEBIAN_GOPATH)
    missing = [p for p in PACKAGES if not (Path(gopath) / "src" / p).is_dir()]
    if missing:
        pytest.skip(f"Go sources of {', '.join(missing)} not found under {gopath}/src "
                    "(Debian package golang-golang-x-mod-dev, or set BIOFED_GOPATH)")
    work = tmp_path_factory.mktemp("go")
    binary = work / "biofedinterop"
    env = {**os.environ, "GO111MODULE": "off", "GOPROXY": "off", "GOFLAGS": "", "GOPATH": f"{gopath}{os.pathsep}{work / 'gopath'}",
           "GOCACHE": str(work / "cache"), "CGO_ENABLED": "0"}
    built = subprocess.run([go, "build", "-o", str(binary), str(PROGRAM)], capture_output=True, text=True, env=env,
                           timeout=600)
    assert built.returncode == 0, f"go build of {PROGRAM.name} failed:\n{built.stderr}"
    return GoInterop(binary)
