"""What the agent desktop may make us send to Asterisk: checked before anything is sent (pure).

Every value that ends up in an AMI header comes from the user (a queue they picked, a pause
reason) or from our own records (an interface). A CR or LF in one of them would let it write a
header — or a whole action — of its own, so each is matched against a strict pattern here, and
the codec refuses CR/LF once more when encoding (``callcenter.ami.codec``).
"""

from __future__ import annotations

import re

from callcenter.errors import ValidationFailed

# Asterisk queue names as queues.conf sections are written in practice: letters, digits, _ -.
QUEUE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A member interface: a channel technology and a resource, optionally one more /part
# (Local/8001@agents/n, PJSIP/8001, IAX2/agent8001/agent8001, SIP/8001).
INTERFACE_RE = re.compile(r"(?:PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9_.@+-]{1,64}(?:/[A-Za-z0-9_.@+-]{1,64})?")
# A member name (we set it to the agent's extension).
MEMBER_RE = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")
# Characters never allowed in a header value (framing) nor in a pause reason (display, CSV).
_FORBIDDEN = frozenset("\r\n\x00")
REASON_MAX = 32
# The pause reason the automatic wrap-up uses (also offered by hand if configured).
WRAPUP_REASON = "话后处理"
DEFAULT_REASONS = ("小休", "午餐", "培训", WRAPUP_REASON)


def check_queue(name: object, field: str = "queue") -> str:
    if not isinstance(name, str) or not QUEUE_RE.fullmatch(name):
        raise ValidationFailed(field, "队列名只能包含字母、数字、_ 和 - (1–64 个字符)")
    return name


def check_interface(interface: object, field: str = "interface") -> str:
    if not isinstance(interface, str) or not INTERFACE_RE.fullmatch(interface):
        raise ValidationFailed(field, "not a queue member interface (TECH/RESOURCE)")
    return interface


def check_member_name(name: object, field: str = "member") -> str:
    if not isinstance(name, str) or not MEMBER_RE.fullmatch(name):
        raise ValidationFailed(field, "not a member name")
    return name


def valid_reason_text(reason: str) -> bool:
    """A pause reason that can be configured: 1–32 characters, no control characters, no comma
    (the setting is a comma-separated list)."""
    return (0 < len(reason) <= REASON_MAX and "," not in reason
            and not any(c in _FORBIDDEN or ord(c) < 32 or ord(c) == 127 for c in reason))


def check_reason(reason: object, allowed: tuple[str, ...], field: str = "reason") -> str:
    """A pause reason: one of the configured ones, exactly."""
    if not isinstance(reason, str) or reason not in allowed or not valid_reason_text(reason):
        raise ValidationFailed(field, "请选择列表中的暂停原因 (one of the configured reasons)")
    return reason


def interface_for(extension: str, template: str) -> str:
    """The interface an agent logs in from when no binding names one: the template with the
    extension (``PJSIP/{extension}`` → ``PJSIP/8001``). Raises ValidationFailed."""
    check_member_name(extension, "extension")
    return check_interface(template.replace("{extension}", extension), "interface")


def parse_reasons(raw: str) -> tuple[str, ...]:
    """``小休,午餐,培训`` → a tuple; ValueError naming the bad entry."""
    reasons = tuple(r.strip() for r in raw.split(",") if r.strip())
    if not reasons:
        raise ValueError("needs at least one reason")
    for r in reasons:
        if not valid_reason_text(r):
            raise ValueError(f"bad reason {r!r}: 1–{REASON_MAX} characters, no control characters")
    if len(set(reasons)) != len(reasons):
        raise ValueError("a reason is listed twice")
    return reasons
