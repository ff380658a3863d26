"""Wait for a condition with a deadline, instead of sleeping and hoping (style habit 10)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str = "",
) -> T:
    """Poll ``predicate`` (sync or async) until it returns something truthy, and return that.

    Args:
        predicate: called with no arguments every ``interval`` seconds; may return an awaitable.
        timeout: seconds before giving up; the predicate is always tried at least once, and
            once more at the deadline.
        interval: seconds between tries.
        message: the text of the AssertionError raised on timeout.

    Raises:
        AssertionError: the predicate stayed falsy for ``timeout`` seconds (the message names
            the last value it returned). Exceptions from the predicate itself propagate.

    Cancellation: cancelling the caller cancels the wait (and a predicate being awaited).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        last_try = loop.time() >= deadline
        result: Any = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[no-any-return]
        if last_try:
            raise AssertionError(
                f"{message or 'condition not met'} (waited {timeout} s; "
                f"{getattr(predicate, '__qualname__', predicate)!s} last returned {result!r})"
            )
        await asyncio.sleep(min(interval, max(0.0, deadline - loop.time())))
