"""Bulk imports from the old after-sales system: customers, appliances and past work orders.

``tabular`` reads the files (CSV in UTF-8/BOM/GBK, XLSX), maps the headers, converts cells and
runs the batches; ``report`` is what every import answers. The importers themselves live with
their feature (``callcenter.customers.importer``, ``callcenter.imports.appliances``,
``callcenter.orders.importer``); :func:`importer` finds one by the kind the CLI and
``POST /api/imports/{kind}`` name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

KINDS = ("customers", "appliances", "orders")


def importer(kind: str) -> Callable[..., Awaitable[Any]]:
    """The import function of ``kind`` (one of :data:`KINDS`); all share one signature:
    ``(sessionmaker, path, settings, *, vault=, now=, dry_run=, actor_id=, via=) -> Report``."""
    if kind == "customers":
        from callcenter.customers.importer import import_customers

        return import_customers
    if kind == "appliances":
        from callcenter.imports.appliances import import_appliances

        return import_appliances
    if kind == "orders":
        from callcenter.orders.importer import import_orders

        return import_orders
    raise ValueError(f"unknown import kind {kind!r}")
