"""``callcenter serve`` with two diagnostics around it, for ``screen_pop.py --trace-server``.

Nothing in the product changes: this runs the same ``callcenter.cli.main(["serve"])`` after
installing

- a ``gc.callbacks`` hook that times every garbage collection (generation, ms, objects
  collected; CPython stops the world while it runs, the event loop included);
- an event-loop lag probe: a callback due every 10 ms that records how late it ran when it is
  more than 5 ms late (anything that holds the loop: a collection, a long synchronous step).

On SIGUSR1 it also writes ``{"heap": {...}}``: the number of objects the collector tracks, by
type (the 25 commonest), which is what a full collection has to walk.

On SIGUSR2 it runs ``gc.collect(); gc.freeze()`` (an experiment: what the product would gain by
freezing its start-up heap once it serves) and writes ``{"freeze": {"frozen": n}}``.

- the server's own time of every request (from the first middleware being entered to the
  handler's answer, before it is written): ``{"req": [t_ns, method path-pattern, ms]}``, so a
  client's latency can be split into the server's part and the rest (client, network, queueing
  in the kernel before the loop reads the request).

All are appended as JSON lines to the file named by ``CALLCENTER_BENCH_TRACE`` once per second:
``{"gc": [t_ns, generation, ms, collected]}`` and ``{"lag": [t_ns, ms]}`` (monotonic ns).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time

OUT = os.environ.pop("CALLCENTER_BENCH_TRACE")
_pending: list[str] = []
_lock = threading.Lock()
_gc_start = 0


def _on_gc(phase: str, info: dict) -> None:
    global _gc_start
    if phase == "start":
        _gc_start = time.perf_counter_ns()
        return
    ms = (time.perf_counter_ns() - _gc_start) / 1e6
    line = json.dumps({"gc": [time.monotonic_ns(), info["generation"], round(ms, 3), info["collected"]]})
    with _lock:
        _pending.append(line)


def _flusher() -> None:
    while True:
        time.sleep(1.0)
        with _lock:
            lines, _pending[:] = list(_pending), []
        if lines:
            with open(OUT, "a") as f:
                f.write("\n".join(lines) + "\n")


class _Policy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        period = 0.010
        due = [0.0]

        def tick() -> None:
            now = loop.time()
            late = now - due[0]
            if due[0] and late > 0.005:
                line = json.dumps({"lag": [time.monotonic_ns(), round(late * 1000, 2)]})
                with _lock:
                    _pending.append(line)
            due[0] = now + period
            loop.call_at(due[0], tick)

        loop.call_soon(tick)
        return loop


def _heap(signum: int, frame: object) -> None:
    from collections import Counter

    objs = gc.get_objects()
    by_type = Counter(type(o).__qualname__ for o in objs)
    line = json.dumps({"heap": {"t": time.monotonic_ns(), "tracked": len(objs),
                                "by_type": by_type.most_common(25)}})
    with _lock:
        _pending.append(line)


def _freeze(signum: int, frame: object) -> None:
    gc.collect()
    gc.freeze()
    line = json.dumps({"freeze": {"t": time.monotonic_ns(), "frozen": gc.get_freeze_count()}})
    with _lock:
        _pending.append(line)


def main() -> int:
    import signal

    signal.signal(signal.SIGUSR1, _heap)
    signal.signal(signal.SIGUSR2, _freeze)
    gc.callbacks.append(_on_gc)
    threading.Thread(target=_flusher, daemon=True, name="bench-trace").start()
    asyncio.set_event_loop_policy(_Policy())
    import callcenter.app as app_module
    from aiohttp import web

    @web.middleware
    async def timed(request, handler):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter_ns()
        try:
            return await handler(request)
        finally:
            route = request.match_info.route.resource
            name = f"{request.method} {route.canonical if route is not None else request.path}"
            line = json.dumps({"req": [time.monotonic_ns(), name, round((time.perf_counter_ns() - t0) / 1e6, 3)]})
            with _lock:
                _pending.append(line)

    build = app_module.init_app

    def init_app(settings):  # type: ignore[no-untyped-def]
        app = build(settings)
        app.middlewares.insert(0, timed)
        return app

    app_module.init_app = init_app
    from callcenter.cli import main as cli_main

    return cli_main(["serve"])


if __name__ == "__main__":
    raise SystemExit(main())
