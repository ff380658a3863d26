"""Typed application keys, all in one place."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.ami.connector import AmiConnector
from callcenter.auth.services import AuthService
from callcenter.calls.agents import AgentDirectory
from callcenter.calls.recorder import CallRecorder
from callcenter.calls.services import CallService
from callcenter.crypto import PhoneVault
from callcenter.customers.services import CustomerService
from callcenter.realtime.hub import WebsocketHub
from callcenter.screenpop.services import ScreenPopService
from callcenter.settings import Settings
from callcenter.sla.scheduler import SlaScheduler

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
VAULT = web.AppKey("vault", PhoneVault)  # the phone keys: seal, index, open (callcenter.crypto)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
AUTH = web.AppKey("auth", AuthService)
LOGIN_THROTTLE = web.AppKey("login_throttle", Any)  # auth.throttle.LoginThrottle
REDIS = web.AppKey("redis", Any)  # redis.asyncio.Redis, or None without Redis
MAILBOX = web.AppKey("mailbox", Any)  # realtime.mailbox.Mailbox
LEADERSHIP = web.AppKey("leadership", Any)  # realtime.leadership.Leadership
HUB = web.AppKey("hub", WebsocketHub)
AGENTS = web.AppKey("agents", AgentDirectory)
RECORDER = web.AppKey("recorder", CallRecorder)
POPS = web.AppKey("pops", ScreenPopService)
CALLS = web.AppKey("calls", CallService)
CONNECTOR = web.AppKey("connector", AmiConnector)
CUSTOMER_SERVICE = web.AppKey("customer_service", CustomerService)
ORDERS = web.AppKey("orders", Any)  # orders.services.OrderService (its schemas import the web layer)
# The OpenAPI document, built on first request ({"spec": dict, "json": bytes}; callcenter.web.openapi_http).
OPENAPI = web.AppKey("openapi", dict)
SLA = web.AppKey("sla", SlaScheduler)  # raises and clears SLA alerts (callcenter.sla)
NOTIFY = web.AppKey("notify", Any)  # callcenter.notify.sender.OutboxSender: sends the outbox
DISPATCH = web.AppKey("dispatch", Any)  # callcenter.dispatch.engine.DispatchEngine
# Address → coordinates (callcenter.geo.Geocoder); unset: the bundled district centres.
GEOCODER = web.AppKey("geocoder", Any)
# Agent states and the wallboard (callcenter.agentstate, callcenter.wallboard).
AGENT_STATE = web.AppKey("agent_state", Any)  # agentstate.services.AgentStateService
LIVE_STORE = web.AppKey("live_store", Any)  # agentstate.store.LiveStore: the shared snapshot
AGENT_RELAY = web.AppKey("agent_relay", Any)  # agentstate.store.CommandRelay: actions to the leader
WORK_BOARD = web.AppKey("work_board", Any)  # wallboard.services.WorkBoard
# Pushes new complaint follow-ups to supervisors (callcenter.survey.alerts.ComplaintAlerter).
SURVEY_ALERTS = web.AppKey("survey_alerts", Any)
OUTBOUND = web.AppKey("outbound", Any)  # outbound.dialler.OutboundDialler (callbacks, surveys)
