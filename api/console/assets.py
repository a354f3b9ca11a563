"""The console's own static files (CSS, JS), served from memory under content-hashed URLs.

Each file is read once at start-up; :func:`static_url` gives ``/console/static/<name>?v=<hash>``,
and a request carrying the current hash is answered with a year-long immutable ``Cache-Control``,
so a browser fetches each file once per release instead of revalidating it on every page. That
matters because these paths are public (the sign-in page needs them) and so count against the
per-address rate limit. There is no CDN and no build step: the files in ``static/`` are what
browsers run.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

__all__ = ["Assets", "load_assets", "serve_asset"]

STATIC_PREFIX = "/console/static/"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    version: str


class Assets:
    def __init__(self, files: dict[str, Asset]) -> None:
        self._files = files

    def url(self, name: str) -> str:
        """The URL of ``name`` with its content hash; KeyError for a file the package lacks."""
        return f"{STATIC_PREFIX}{name}?v={self._files[name].version}"

    def get(self, name: str) -> Asset | None:
        return self._files.get(name)


def load_assets() -> Assets:
    files: dict[str, Asset] = {}
    for entry in resources.files("api.console").joinpath("static").iterdir():
        if not entry.is_file() or entry.name.startswith("."):
            continue
        body = entry.read_bytes()
        suffix = "." + entry.name.rpartition(".")[2]
        content_type = _TYPES.get(suffix) or mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
        files[entry.name] = Asset(body, content_type, hashlib.sha256(body).hexdigest()[:16])
    return Assets(files)


def serve_asset(assets: Assets, request: web.Request) -> web.Response:
    asset = assets.get(request.match_info["name"])
    if asset is None:
        raise web.HTTPNotFound(text="no such console file")
    current = request.query.get("v") == asset.version
    cache = "public, max-age=31536000, immutable" if current else "no-cache"
    etag = f'"{asset.version}"'
    headers = {"Cache-Control": cache, "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if asset.content_type.startswith("text/") else None
    return web.Response(body=asset.body, content_type=asset.content_type, charset=charset, headers=headers)
