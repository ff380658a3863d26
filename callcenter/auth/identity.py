"""Who is asking: set on ``request["user"]`` by the auth middleware for every request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: int
    username: str
    role: str
    display_name: str = ""
    extension: str | None = None
