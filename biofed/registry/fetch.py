"""Ask a node over HTTP what it says about itself, for proof of control.

Bounded in every way a node could be hostile: a timeout, a size cap, at most
a few redirects and only on the node's own origin, strict-profile JSON.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import httpx

from biofed.errors import BiofedError
from biofed.trust import jsonprofile

DESCRIPTOR_PATH = "/.well-known/biofed-node.json"
MAX_BYTES = 1024 * 1024
MAX_REDIRECTS = 3
DEFAULT_TIMEOUT = 10.0


class NodeUnreachable(BiofedError):
    """The node did not answer, or answered with something other than JSON."""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def fetch_json(url: str, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = MAX_BYTES) -> dict:
    """GET `url` and parse it as strict JSON; redirects only within the same origin."""
    origin = _origin(url)
    current = url
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with client.stream("GET", current, headers={"Accept": "application/json"}) as response:
                    if response.is_redirect:
                        target = urljoin(current, response.headers.get("location", ""))
                        if _origin(target) != origin:
                            raise NodeUnreachable(f"{current} redirects to {target}, off the node's origin; refused")
                        current = target
                        continue
                    if response.status_code != 200:
                        raise NodeUnreachable(f"{current} answered HTTP {response.status_code}")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise NodeUnreachable(f"{current} sent more than {max_bytes} bytes; refused")
            except httpx.TimeoutException:
                raise NodeUnreachable(f"{current} did not answer within {timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise NodeUnreachable(f"cannot reach {current}: {exc or type(exc).__name__}") from None
            try:
                document = jsonprofile.loads(bytes(body), max_bytes=max_bytes)
            except jsonprofile.ProfileError as exc:
                raise NodeUnreachable(f"{current} did not send strict-profile JSON: {exc}") from None
            if not isinstance(document, dict):
                raise NodeUnreachable(f"{current} did not send a JSON object")
            return document
    raise NodeUnreachable(f"{url}: more than {MAX_REDIRECTS} redirects")


def fetch_descriptor(base_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """The node descriptor (protocol.md §6) served at `base_url`."""
    return fetch_json(base_url.rstrip("/") + DESCRIPTOR_PATH, timeout=timeout)


def fetch_record(base_url: str, record_id: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """One signed record (or log statement) from the node, e.g. a KeyRotation."""
    return fetch_json(f"{base_url.rstrip('/')}/records/{record_id}", timeout=timeout)
