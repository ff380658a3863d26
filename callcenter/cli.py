"""``callcenter`` command line: parses arguments and runs; the work is elsewhere."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import webbrowser
from pathlib import Path

from aiohttp import web

from callcenter.settings import ROLES, Settings, SettingsError

log = logging.getLogger("callcenter")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as e:
        print(f"callcenter: bad setting {e}", file=sys.stderr)
        raise SystemExit(2) from None


async def _serve(settings: Settings, *, ready=None) -> None:  # type: ignore[no-untyped-def]
    from callcenter.app import init_app

    runner = web.AppRunner(init_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    log.info("serving on http://%s:%s (AMI %s:%s)", settings.http_host, settings.http_port,
             settings.ami_host, settings.ami_port)
    if ready is not None:
        ready()
    # SIGTERM (docker stop, systemd) shuts down like Ctrl-C: websockets closed with GOING_AWAY,
    # pending call records flushed, AMI logged off.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()


async def _with_db(settings: Settings):  # type: ignore[no-untyped-def]
    from callcenter.auth.services import AuthService
    from callcenter.db.engine import make_engine, make_sessionmaker, migrate

    engine = make_engine(settings.database_url)
    await migrate(engine)
    sm = make_sessionmaker(engine)
    return engine, sm, AuthService(sm, ttl_s=settings.session_ttl)


async def _users_add(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.errors import DomainError

    engine, _, auth = await _with_db(settings)
    try:
        user = await auth.add_user(args.name, role=args.role, password=args.password,
                                   extension=args.extension, display_name=args.display_name or "")
    except DomainError as e:
        print(f"callcenter: {e.message}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(f"added user {user.username} (id {user.id}, role {user.role}"
          + (f", extension {user.extension}" if user.extension else "") + ")")
    return 0


async def _import_customers(settings: Settings, path: Path) -> int:
    from callcenter.customers.importer import import_customers

    engine, sm, _ = await _with_db(settings)
    try:
        report = await import_customers(sm, path, settings)
    finally:
        await engine.dispose()
    print(report.summary())
    for row, reason in report.rejected[:200]:
        print(f"  row {row}: {reason}")
    if len(report.rejected) > 200:
        print(f"  … and {len(report.rejected) - 200} more rejected rows")
    return 0 if report.loaded or report.merged or not report.rejected else 1


async def _demo(settings: Settings, args: argparse.Namespace) -> None:
    from callcenter.demo import AGENTS, DEMO_PASSWORD, OTHERS, demo_numbers, seed
    from callcenter.simulator.demo import start_demo_simulator

    engine, sm, auth = await _with_db(settings)
    try:
        seeded = await seed(sm, auth, customers=args.customers)
    finally:
        await engine.dispose()
    sim, port = await start_demo_simulator(
        username=settings.ami_username, secret=settings.ami_secret,
        members=[ext for _, _, ext in AGENTS], callers=demo_numbers(args.customers), rate=args.rate)
    settings = settings.with_(ami_host="127.0.0.1", ami_port=port)
    url = f"http://{'127.0.0.1' if settings.http_host in ('0.0.0.0', '') else settings.http_host}:{settings.http_port}/"

    def ready() -> None:
        print("\n  客服中心演示 callcenter demo\n"
              f"  open {url}\n"
              f"  database {settings.database_url}{' (seeded)' if seeded else ''}\n"
              f"  simulated Asterisk on 127.0.0.1:{port}, about {args.rate:g} calls/s\n"
              "  logins (password " + DEMO_PASSWORD + "):\n"
              + "".join(f"    {u:<11} {n} 分机 {e}\n" for u, n, e in AGENTS)
              + "".join(f"    {u:<11} {n}\n" for u, n, _ in OTHERS), flush=True)
        if not args.no_browser:
            with contextlib.suppress(Exception):
                webbrowser.open(url)

    try:
        await _serve(settings, ready=ready)
    finally:
        await sim.stop()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="callcenter", description="After-sales 400 hotline backend")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the server (settings from CALLCENTER_* variables)")
    d = sub.add_parser("demo", help="run with SQLite, the in-process bus and the built-in Asterisk simulator")
    d.add_argument("--rate", type=float, default=0.2, help="simulated inbound calls per second")
    d.add_argument("--customers", type=int, default=200, help="demo customers to seed")
    d.add_argument("--no-browser", action="store_true", help="do not open a browser")
    s = sub.add_parser("simulate", help="run the built-in Asterisk (AMI) simulator")
    from callcenter.simulator.cli import add_arguments

    add_arguments(s)
    u = sub.add_parser("users", help="manage users").add_subparsers(dest="users_command", required=True)
    ua = u.add_parser("add", help="add a user")
    ua.add_argument("name")
    ua.add_argument("--role", required=True, choices=ROLES)
    ua.add_argument("--password", required=True)
    ua.add_argument("--extension", help="the agent's phone extension (queue MemberName)")
    ua.add_argument("--display-name", help="the name shown on screens")
    i = sub.add_parser("import", help="bulk imports").add_subparsers(dest="import_command", required=True)
    ic = i.add_parser("customers", help="import customers from CSV or XLSX")
    ic.add_argument("file", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings()
    from callcenter.logs import setup

    setup(settings.log_level)
    try:
        if args.command == "serve":
            asyncio.run(_serve(settings))
        elif args.command == "demo":
            asyncio.run(_demo(settings, args))
        elif args.command == "simulate":
            from callcenter.simulator.cli import run

            asyncio.run(run(args))
        elif args.command == "users":
            return asyncio.run(_users_add(settings, args))
        elif args.command == "import":
            if not args.file.is_file():
                print(f"callcenter: no such file {args.file}", file=sys.stderr)
                return 2
            return asyncio.run(_import_customers(settings, args.file))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
