"""One synchronous GET, bounded in every way a server could be hostile.

For the few single documents read outside a harvest: a node's descriptor and
rotation statement (registry, proof of control), a registry document
(aggregator, `biofed registry verify`). Bounded by a time limit for the whole
answer, a size cap, at most a few redirects and only on the origin asked,
and (fetch_json) strict-profile JSON. The harvest's own concurrent fetching is
`biofed.aggregator.fetch`.
"""

from __future__ import annotations

import time
from urllib.parse import urljoin, urlsplit

import httpx

from biofed.errors import BiofedError
from biofed.trust import jsonprofile

DESCRIPTOR_PATH = "/.well-known/biofed-node.json"
MAX_BYTES = 1024 * 1024
MAX_REDIRECTS = 3
DEFAULT_TIMEOUT = 10.0


class FetchError(BiofedError):
    """The server did not answer, or not with what was asked. `reason` is a stable code:
    unreachable, timeout, http-status, off-origin, redirects, too-large, malformed."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def fetch_bytes(url: str, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = MAX_BYTES,
                accept: str = "application/json") -> bytes:
    """The body of a 200 answer to GET `url`; redirects only within the same origin.

    `timeout` bounds the whole exchange (a trickle is cut too), `max_bytes` the body.
    """
    start = origin(url)
    deadline = time.monotonic() + timeout
    current = url
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with client.stream("GET", current, headers={"Accept": accept}) as response:
                    if response.is_redirect:
                        target = urljoin(current, response.headers.get("location", ""))
                        if origin(target) != start:
                            raise FetchError("off-origin", f"{current} redirects to {target}, off the origin "
                                                           f"of {url}; refused")
                        current = target
                        continue
                    if response.status_code != 200:
                        raise FetchError("http-status", f"{current} answered HTTP {response.status_code}")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise FetchError("too-large", f"{current} sent more than {max_bytes} bytes; refused")
                        if time.monotonic() > deadline:
                            raise httpx.ReadTimeout("deadline")
                    return bytes(body)
            except httpx.TimeoutException:
                raise FetchError("timeout", f"{current} did not answer within {timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise FetchError("unreachable", f"cannot reach {current}: {exc or type(exc).__name__}") from None
    raise FetchError("redirects", f"{url}: more than {MAX_REDIRECTS} redirects")


def fetch_json(url: str, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = MAX_BYTES) -> dict:
    """GET `url` as fetch_bytes does and parse it as a strict-profile JSON object."""
    body = fetch_bytes(url, timeout=timeout, max_bytes=max_bytes)
    try:
        document = jsonprofile.loads(body, max_bytes=max_bytes)
    except jsonprofile.ProfileError as exc:
        raise FetchError("malformed", f"{url} did not send strict-profile JSON: {exc}") from None
    if not isinstance(document, dict):
        raise FetchError("malformed", f"{url} did not send a JSON object")
    return document


def fetch_descriptor(base_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """The node descriptor (protocol.md §6) served at `base_url`."""
    return fetch_json(base_url.rstrip("/") + DESCRIPTOR_PATH, timeout=timeout)


def fetch_record(base_url: str, record_id: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict:
    """One signed record (or log statement) from the node, e.g. a KeyRotation."""
    return fetch_json(f"{base_url.rstrip('/')}/records/{record_id}", timeout=timeout)
