"""SMS gateways: the interface the sender talks to, and the default that only records.

A gateway gets the number (digits, a mainland mobile: checked before it is called), the text and
the sender's reference for the message (``ntf-<id>``, the same on every attempt: a gateway that
accepts a client reference can drop a repeat after an unclear failure). It answers the gateway's
message id, or raises :class:`GatewayError` saying whether trying again may help.

Gateways never log the number or the text: only the masked number and the reference.
"""

from __future__ import annotations

import logging
import re
from typing import Protocol

from callcenter.privacy import mask_phone

log = logging.getLogger("callcenter.notify")

# Mainland mobile numbers, as ``customers.phones.normalise`` stores them: 11 digits, 1[3-9]….
_SMS_NUMBER = re.compile(r"1[3-9][0-9]{9}")
# The hotline printed in messages: 400/800 + 7 digits, or a 95xxx(x…) number.
_SERVICE_NUMBER = re.compile(r"(?:400|800)[0-9]{7}|95[0-9]{3,6}")


def is_sms_number(number: str) -> bool:
    """True for a normalised mainland mobile number (ASCII digits only, nothing else)."""
    return _SMS_NUMBER.fullmatch(number) is not None


def is_service_number(number: str) -> bool:
    return _SERVICE_NUMBER.fullmatch(number) is not None


def format_hotline(number: str) -> str:
    """``4008001234`` → ``400-800-1234`` (how the hotline is printed); others as they are."""
    if len(number) == 10 and number[:3] in ("400", "800"):
        return f"{number[:3]}-{number[3:6]}-{number[6:]}"
    return number


class GatewayError(Exception):
    """A message was not accepted. ``retryable``: the same message may go through later
    (timeout, throttling, the gateway down); not retryable: it never will (number refused,
    content rejected). ``code``: short, for ``last_error``; the message must hold no number."""

    def __init__(self, message: str, *, retryable: bool, code: str = "gateway") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


class SmsGateway(Protocol):
    async def send(self, number: str, text: str, ref: str) -> str:
        """Send ``text`` to ``number``; the gateway's message id. Raises :class:`GatewayError`.
        Cancellation: the message may or may not have been accepted (the sender treats the
        attempt as failed and retries under the same ``ref``)."""
        ...


class RecordingGateway:
    """The default: sends nothing. The outbox row (number sealed, text, times) is the record;
    one log line says that notification ``ref`` went to the masked number."""

    name = "record"

    async def send(self, number: str, text: str, ref: str) -> str:
        log.info("sms %s recorded for %s (%d characters)", ref, mask_phone(number), len(text))
        return f"rec-{ref}"


# CALLCENTER_SMS_GATEWAY name → factory. A real gateway is added here (and its settings).
GATEWAYS = {"record": RecordingGateway}


def make_gateway(name: str) -> SmsGateway:
    """The gateway named by ``CALLCENTER_SMS_GATEWAY`` (validated by the settings)."""
    return GATEWAYS[name]()
