"""Bounded HTTP GETs from one node: size limit, minimum rate, deadline, retries, budget.

A node is untrusted. Every response is streamed and cut off when it grows
past `max_bytes` (counted after gzip decoding, so a compressed bomb fails
too), when it arrives slower than `min_rate` bytes/s after a grace period,
or when the whole request takes longer than `deadline` -- every attempt,
redirect and back-off included. Only connection errors and 5xx answers are
retried, never a timeout. Redirects are never followed automatically: one to
the node's own registered origin is followed (at most a few times), any
other is an error. A `NodeBudget` bounds what all of a client's requests
cost together: the time spent waiting for the node and the bytes received.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
import zlib
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx
# Imported for httpcore, which runs `import sniffio` several times per request: without it installed,
# each failing import searches sys.path again (36 us; 7-10 % of an unchanged harvest's CPU).
import sniffio  # noqa: F401

from biofed.errors import NodeRefused


class FetchError(NodeRefused):
    """A node could not be read. `reason` is a stable code, str() a sentence."""


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int
    deadline: float  # seconds for the whole request: body, redirects, retries and back-off included
    min_rate: int = 10_000  # bytes/s, enforced after `rate_grace` seconds
    rate_grace: float = 2.0


@dataclass(frozen=True)
class NodeBudget:
    """What one node may cost in one run, over all its requests."""

    seconds: float  # time with at least one request to the node in flight (our own work does not count)
    bytes: int  # bytes received from the node, after gzip decoding


class BudgetExceeded(FetchError):
    """The node used its budget for this run (reason 'budget')."""


# Failure reasons worth another attempt: the node could not be reached. A timeout is not retried:
# a node that is slow now is slow again, and the deadline covers the whole request anyway.
RETRIED = ("connect",)


@dataclass
class Response:
    status: int
    body: bytes
    headers: httpx.Headers
    url: str


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default certificate verification, built once per process: a scheduled
    `aggregator run` harvests many times, and loading the CA bundle takes ~20 ms."""
    return httpx.create_ssl_context()


def shared_client(connect_timeout: float = 5.0, *, connections: int = 100,
                  user_agent: str = "biofed-aggregator") -> httpx.AsyncClient:
    """An HTTP client for harvesting: no redirects followed, no proxy/env settings, gzip accepted.

    Every client shares one TLS context (building it is the expensive part, ~20 ms).
    A harvest gives each node its own small client (NodeClient): creating one
    costs ~0.4 ms, while one pool shared by every node costs more per request as
    it grows -- httpcore scans all of a pool's connections (quadratically) on
    every request and response, ~18 ms per node with 64 connections open.
    """
    return httpx.AsyncClient(
        verify=_tls_context(),
        follow_redirects=False,
        timeout=httpx.Timeout(connect_timeout, read=connect_timeout * 2),
        headers={"User-Agent": user_agent, "Accept-Encoding": "gzip"},
        trust_env=False,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class NodeClient:
    """GETs against one node's base URL; use as `async with NodeClient(...)`."""

    MAX_REDIRECTS = 3

    def __init__(self, base_url: str, *, connect_timeout: float = 5.0, retries: int = 2, backoff: float = 0.25,
                 user_agent: str = "biofed-aggregator", client: httpx.AsyncClient | None = None,
                 budget: NodeBudget | None = None):
        self.base_url = base_url.rstrip("/")
        self.origin = _origin(self.base_url)
        self.retries = retries
        self.backoff = backoff
        # A client given is used as given and closed by its owner; otherwise this
        # NodeClient owns one (its own small connection pool), made on first use.
        self.owned = client is None
        self._client = client
        self._client_args = (connect_timeout, user_agent)
        self.budget = budget
        self.requests = 0
        self.bytes = 0  # received from the node (decoded), counted per network chunk
        self._byte_limit = budget.bytes if budget is not None else float("inf")
        self._in_flight = 0  # get() calls running; the node's time runs while there is one
        self._busy = 0.0  # node time in the spans already closed
        self._busy_since = 0.0

    async def __aenter__(self) -> "NodeClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.drop_connections()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            connect_timeout, user_agent = self._client_args
            self._client = shared_client(connect_timeout, connections=4, user_agent=user_agent)
        return self._client

    async def drop_connections(self) -> None:
        """Close an owned client's connections (the next request opens new ones): a node
        waiting for its turn then holds no socket, so open files follow the nodes in flight."""
        if self.owned and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def busy_seconds(self) -> float:
        """The node's time so far: wall-clock seconds during which at least one of its requests was in flight."""
        return self._busy + (time.monotonic() - self._busy_since if self._in_flight else 0.0)

    def _spent(self) -> BudgetExceeded:
        b = self.budget
        return BudgetExceeded("budget", f"{self.base_url} used its budget for this run: {self.busy_seconds():.1f} s of"
                                        f" {b.seconds:g} s waiting for its answers, {self.bytes:,} of {b.bytes:,} bytes"
                                        f" received, in {self.requests} requests")

    async def get(self, path: str, limits: FetchLimits, *, headers: dict | None = None) -> Response:
        """GET with retries on connection errors and 5xx, all within `limits.deadline` and the node's budget.

        Raises BudgetExceeded when the budget is spent before the request or runs out
        during it, FetchError('timeout') when the deadline passes.
        """
        deadline, by_budget = limits.deadline, False
        if self.budget is not None:
            left = self.budget.seconds - self.busy_seconds()
            if left <= 0 or self.bytes >= self._byte_limit:
                raise self._spent()
            if left < deadline:  # the node's time runs while this request does: it ends with the budget
                deadline, by_budget = left, True
        if not self._in_flight:
            self._busy_since = time.monotonic()
        self._in_flight += 1
        try:
            async with asyncio.timeout(deadline):
                return await self._get_retrying(path, limits, headers or {})
        except TimeoutError:
            if by_budget:
                raise self._spent() from None
            raise FetchError("timeout", f"{self.base_url + path} did not answer completely within {limits.deadline:g} s") from None
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._busy += time.monotonic() - self._busy_since

    async def _get_retrying(self, path: str, limits: FetchLimits, headers: dict) -> Response:
        attempt = 0
        while True:
            try:
                response = await self._get_following(path, limits, headers)
            except FetchError as exc:
                if exc.reason not in RETRIED or attempt >= self.retries:
                    raise
            else:
                if response.status < 500 or attempt >= self.retries:
                    return response
            attempt += 1
            await asyncio.sleep(self.backoff * (2 ** (attempt - 1)))

    async def _get_following(self, path: str, limits: FetchLimits, headers: dict) -> Response:
        url = self.base_url + path
        for _ in range(self.MAX_REDIRECTS + 1):
            response = await self._get_once(url, limits, headers)
            if response.status not in (301, 302, 303, 307, 308):
                return response
            location = response.headers.get("location")
            if not location:
                raise FetchError("bad-redirect", f"{url} answered {response.status} without a Location")
            target = urljoin(url, location)
            if _origin(target) != self.origin:
                raise FetchError("redirect-off-origin", f"{url} redirects to {target}, outside the registered origin {self.base_url}")
            url = target
        raise FetchError("bad-redirect", f"more than {self.MAX_REDIRECTS} redirects from {self.base_url + path}")

    async def _get_once(self, url: str, limits: FetchLimits, headers: dict) -> Response:
        self.requests += 1
        try:
            async with self.client.stream("GET", url, headers=headers) as response:
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limits.max_bytes and "content-encoding" not in response.headers:
                    raise FetchError("too-large", f"{url} declares {declared} bytes, more than the limit of {limits.max_bytes}")
                encoding = response.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in ("identity", "gzip"):
                    raise FetchError("protocol", f"{url}: unsupported Content-Encoding {encoding!r}")
                # Inflated here, never more than the limit + 1 bytes at a time: httpx would inflate a
                # whole network chunk at once (a 64 KiB gzip bomb chunk is 64 MiB).
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
                chunks = []
                size = 0
                started = time.monotonic()
                received = False
                # A body that stops arriving is cut as soon as its rate falls below min_rate (after the
                # grace), not only at the read timeout: a tarpit that sends a few bytes and stalls costs
                # the grace period, not 2 x connect_timeout. The timer moves on with every chunk.
                try:
                    async with asyncio.timeout_at(started + limits.rate_grace) as stall:
                        async for data in response.aiter_raw():
                            received = received or bool(data)
                            while data:
                                if inflater is None:
                                    chunk, data = data, b""
                                else:
                                    try:
                                        chunk = inflater.decompress(data, limits.max_bytes - size + 1)
                                    except zlib.error as exc:
                                        raise FetchError("protocol", f"{url}: broken gzip body ({exc})") from None
                                    data = inflater.unconsumed_tail
                                size += len(chunk)
                                self.bytes += len(chunk)
                                if size > limits.max_bytes:
                                    raise FetchError("too-large", f"{url} sent more than the limit of {limits.max_bytes} bytes")
                                if self.bytes > self._byte_limit:
                                    raise self._spent()
                                chunks.append(chunk)
                            elapsed = time.monotonic() - started
                            if elapsed > limits.rate_grace and size / elapsed < limits.min_rate:
                                raise FetchError("too-slow", f"{url} sent {size} bytes in {elapsed:.1f} s, slower than {limits.min_rate} bytes/s")
                            stall.reschedule(started + max(limits.rate_grace, (size + 1) / limits.min_rate))
                except TimeoutError:
                    elapsed = time.monotonic() - started
                    raise FetchError("too-slow", f"{url} sent {size} bytes in {elapsed:.1f} s, slower than {limits.min_rate} bytes/s") from None
                if inflater is not None and received and not inflater.eof:
                    raise FetchError("protocol", f"{url}: the gzip body is truncated")
                return Response(response.status_code, b"".join(chunks), response.headers, url)
        except httpx.TimeoutException as exc:  # connect (connect_timeout), read or write (twice that)
            raise FetchError("timeout", f"{url} timed out ({type(exc).__name__})") from None
        except httpx.ConnectError as exc:
            raise FetchError("connect", f"cannot connect to {url}: {exc or 'connection refused'}") from None
        except (httpx.DecodingError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise FetchError("protocol", f"{url}: broken response ({exc})") from None
        except httpx.HTTPError as exc:
            raise FetchError("http", f"{url}: {exc}") from None
