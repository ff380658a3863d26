"""Typed application keys of the customers feature; the app factory sets them at start-up:

    app[CUSTOMER_SERVICE] = CustomerService(app[SESSIONMAKER], app[SETTINGS])
"""

from __future__ import annotations

from aiohttp import web

from callcenter.customers.services import CustomerService

CUSTOMER_SERVICE = web.AppKey("customer_service", CustomerService)
