"""Who is asking: set on ``request[USER]`` by the auth middleware for every request."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: int
    username: str
    role: str
    display_name: str = ""
    extension: str | None = None


USER = web.RequestKey("user", CurrentUser)
