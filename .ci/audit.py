"""pip-audit of requirements.lock: known vulnerabilities in the pinned dependencies (`make audit`).

It needs the vulnerability service (PyPI's JSON API), so it runs on its own, after
the tests, not inside them. It says what it could not check, never passing silently:

- exit 0: every pin was looked up and none has a known vulnerability;
- exit 1: a known vulnerability, some pins could not be looked up, or pip-audit failed;
- exit 3: the service could not be reached, or could look up none of the pins:
  NOT CHECKED. With --unreachable-ok (CI without the network) this is reported
  as loudly and the exit status is 0.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"
NOT_CHECKED = 3
UNREACHABLE = ("ConnectionError", "Max retries exceeded", "Name or service not known", "Temporary failure",
               "Failed to establish", "timed out", "ProxyError", "SSLError")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_pins() -> dict[str, bool]:
    """The distributions requirements.lock pins: name -> whether the pin has an environment marker."""
    return {canonical(line.split("==")[0]): ";" in line for line in LOCK.read_text().splitlines()
            if line and not line.startswith(("#", " "))}


def audit(timeout: float) -> tuple[int, str]:
    """(exit status, what to say)."""
    pip_audit = Path(sys.executable).with_name("pip-audit")
    if not pip_audit.exists():
        return 1, f"pip-audit is not installed next to {sys.executable} (pip install -e '.[audit]', or make audit)"
    with tempfile.TemporaryDirectory() as cache:
        command = [str(pip_audit), "--requirement", str(LOCK), "--no-deps", "--disable-pip",
                   "--progress-spinner", "off", "--format", "json", "--cache-dir", cache]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return NOT_CHECKED, f"NOT CHECKED: pip-audit got no answer from the vulnerability service in {timeout:.0f} s"
    stderr = result.stderr.strip().splitlines()
    if not result.stdout.strip().startswith("{"):
        last = stderr[-1] if stderr else f"exit status {result.returncode}, no output"
        if any(word in result.stderr for word in UNREACHABLE):
            return NOT_CHECKED, f"NOT CHECKED: the vulnerability service is unreachable from here: {last}"
        return 1, f"pip-audit failed: {last}"
    dependencies = json.loads(result.stdout)["dependencies"]
    pins = locked_pins()
    reported = {canonical(d["name"]) for d in dependencies}
    # pip-audit evaluates the pins' environment markers: a pin for another platform is not looked up here
    other_platforms = sorted(name for name, marked in pins.items() if marked and name not in reported)
    missing = sorted(name for name, marked in pins.items() if not marked and name not in reported)
    not_audited = [d for d in dependencies if d.get("skip_reason")]
    found = [f"{d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v.get('fix_versions') or []) or 'no release yet'})"
             for d in dependencies for v in d.get("vulns", [])]
    if found:
        return 1, "known vulnerabilities in requirements.lock:\n  " + "\n  ".join(found)
    if missing:
        return 1, f"pip-audit did not report on these pins of requirements.lock: {', '.join(missing)}"
    if dependencies and len(not_audited) == len(dependencies):
        return NOT_CHECKED, (f"NOT CHECKED: the vulnerability service could look up none of the {len(dependencies)} "
                             f"pins, e.g. {not_audited[0]['skip_reason']}")
    if not_audited:
        return 1, "these pins could not be audited:\n  " + "\n  ".join(d["skip_reason"] for d in not_audited)
    others = f" (not looked up: {', '.join(other_platforms)}, pinned for other platforms only)" if other_platforms else ""
    return 0, f"all {len(dependencies)} pins of requirements.lock for this platform audited: no known vulnerabilities{others}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unreachable-ok", action="store_true",
                        help="exit 0 (after saying so) when the vulnerability service cannot be used from here")
    parser.add_argument("--timeout", type=float, default=300, help="seconds pip-audit may take (default 300)")
    args = parser.parse_args(argv)
    status, message = audit(args.timeout)
    print(f"pip-audit: {message}", file=sys.stderr if status else sys.stdout)
    if status == NOT_CHECKED and args.unreachable_ok:
        print("pip-audit: the dependencies were NOT checked for known vulnerabilities in this run "
              "(--unreachable-ok); run `make audit` where the service is reachable", file=sys.stderr)
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
