"""Security headers on every answer (``on_response_prepare``: pages, JSON, static files, errors).

- ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: no other page may frame ours (a
  framed login or order page could be click-jacked).
- ``Content-Security-Policy`` fit for our pages: scripts only from this origin (no inline
  script, no eval — ``web/static`` are modules loaded by ``src``), styles from this origin plus
  inline ``style`` attributes (templates and the report's SVG charts use them), images from
  here or ``data:`` (signatures are PNG data URLs), connections to this origin only (``'self'``
  covers the same-origin websocket), forms posting back here only.
- ``X-Content-Type-Options: nosniff``: a JSON or CSV answer is never sniffed into a script.
- ``Referrer-Policy: same-origin``: order numbers in our URLs do not leak to other sites.
"""

from __future__ import annotations

from aiohttp import web

CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)
