"""Request lines with raw UTF-8 are accepted, as curl sends them.

curl sends a URL's non-ASCII characters as raw UTF-8 (``curl ".../v1/memory?tag=新能源"``), where
RFC 3986 wants them percent-encoded. aiohttp's C request parser (llhttp, strict mode) refuses such a
request line with a plain-text 400 before any handler runs; its pure-Python parser accepts it and
yarl percent-encodes the URL. Clients written from the platform's API document send exactly such
lines, so the worker's server parses requests in Python: about 18 us more per request, measured
side by side (C 17 us, Python 36 us to make a parser and feed it a typical POST), against a
/chat overhead of milliseconds. aiohttp has no per-server switch (``AIOHTTP_NO_EXTENSIONS`` acts
at import time and would also drop the C parser of every client in the process), hence this one
assignment, made when the app is created.
"""

from __future__ import annotations

from aiohttp import http_parser, web_protocol

__all__ = ["accept_raw_utf8_request_lines"]


def accept_raw_utf8_request_lines() -> None:
    """Make every aiohttp server in this process parse requests with the pure-Python parser."""
    if not hasattr(web_protocol, "HttpRequestParser"):  # aiohttp moved it: fail loudly, not silently
        raise RuntimeError("aiohttp.web_protocol.HttpRequestParser is gone; see api/web/request_line.py")
    web_protocol.HttpRequestParser = http_parser.HttpRequestParserPy  # type: ignore[misc]
