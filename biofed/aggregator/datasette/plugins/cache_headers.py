"""Every successful page says how long a cache may keep it.

Datasette sends `Cache-Control: max-age=<default_cache_ttl>` on its table, row,
query and database pages, and the feed plugin marks full change-feed pages
immutable; the front page, static assets, the bulk export and the change
feed's last page went out with no Cache-Control at all, so a CDN in front of
the replicas applied its own guess (often: never cache the front page, the
most requested one). This gives every 200 GET/HEAD answer that has none the
same short lifetime as the table pages. Answers that set their own (immutable
feed pages, Datasette's pages) and errors are left as they are, and so is the
change feed: its last page goes out without one on purpose, so that no cache
keeps it and a follower sees new changes as soon as a snapshot has them.
"""

from __future__ import annotations

from datasette import hookimpl

FEED = "/-/biofed/changes"  # the feed decides: immutable full pages, an uncached last page


@hookimpl
def asgi_wrapper(datasette):
    def wrap(app):
        async def with_cache_control(scope, receive, send):
            if (scope.get("type") != "http" or scope.get("method") not in ("GET", "HEAD")
                    or scope.get("path", "").startswith(FEED)):
                return await app(scope, receive, send)
            ttl = datasette.setting("default_cache_ttl")

            async def send_with_default(message):
                if message["type"] == "http.response.start" and message.get("status") == 200 and ttl:
                    headers = list(message.get("headers", []))
                    if not any(name.lower() == b"cache-control" for name, _ in headers):
                        headers.append((b"cache-control", f"max-age={ttl}".encode()))
                        message = {**message, "headers": headers}
                await send(message)

            await app(scope, receive, send_with_default)

        return with_cache_control

    return wrap
