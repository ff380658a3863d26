"""``callcenter`` command line: parses arguments and runs; the work is elsewhere."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import webbrowser
from pathlib import Path

from aiohttp import web

from callcenter.logs import mask_url_credentials
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

    if settings.instance_role == "worker" and settings.worker_nice:
        # The background work yields the cores to the web instances' requests (settings).
        os.nice(settings.worker_nice)
        log.info("worker: niceness raised by %d", settings.worker_nice)

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
    await migrate(engine, vault=settings.phone_vault())
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


async def _import(settings: Settings, kind: str, path: Path, *, dry_run: bool) -> int:
    """``callcenter import KIND FILE [--dry-run]``: prints the report (callcenter.imports)."""
    from callcenter.imports import importer

    engine, sm, _ = await _with_db(settings)
    try:
        report = await importer(kind)(sm, path, settings, dry_run=dry_run, via="cli")
    finally:
        await engine.dispose()
    print("\n".join(report.lines()))
    return 0 if report.ok() else 1


async def _keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    """Re-encrypt and re-index every sealed value under the current keys (docs/privacy.md)."""
    from callcenter.keys import rotate

    engine, _, _ = await _with_db(settings)
    try:
        report = await rotate(engine, settings.phone_vault(), batch=args.batch, check=args.check,
                              progress=print)
    finally:
        await engine.dispose()
    print(report.summary())
    for column, row_id in report.unreadable[:50]:
        print(f"  unreadable: {column} row {row_id}")
    if report.unreadable:
        return 1
    return 1 if args.check and report.rows else 0


async def _demo(settings: Settings, args: argparse.Namespace) -> None:
    from callcenter.demo import AGENTS, DEMO_PASSWORD, OTHERS, demo_numbers, seed
    from callcenter.simulator.demo import start_demo_simulator

    engine, sm, auth = await _with_db(settings)
    try:
        seeded = await seed(sm, auth, vault=settings.phone_vault(), customers=args.customers, settings=settings)
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
              f"  database {mask_url_credentials(settings.database_url)}{' (seeded)' if seeded else ''}\n"
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
    for kind, what in (("customers", "customers (one appliance per row)"),
                       ("appliances", "appliances of customers on file"),
                       ("orders", "past work orders (callcenter/orders/importer.py)")):
        ik = i.add_parser(kind, help=f"import {what} from CSV or XLSX")
        ik.add_argument("file", type=Path)
        ik.add_argument("--dry-run", action="store_true", help="report what would happen, save nothing")
    k = sub.add_parser("keys", help="phone-number keys (docs/privacy.md)").add_subparsers(
        dest="keys_command", required=True)
    kn = k.add_parser("new", help="print a fresh key as id:base64")
    kn.add_argument("--id", default="k1", help="the key id (letters, digits, - or _; ≤16)")
    kr = k.add_parser("rotate", help="re-encrypt and re-index every sealed value under the current keys")
    kr.add_argument("--batch", type=int, default=500, help="rows per transaction")
    kr.add_argument("--check", action="store_true",
                    help="only count what is still under old keys (exit 1 if anything is)")
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
        elif args.command == "keys":
            if args.keys_command == "new":
                from callcenter.crypto import KeySpecError, new_key_spec, parse_keys

                spec = new_key_spec(args.id)
                try:
                    parse_keys(spec, "--id")
                except KeySpecError as e:
                    print(f"callcenter: {e}", file=sys.stderr)
                    return 2
                print(spec)
                return 0
            return asyncio.run(_keys_rotate(settings, args))
        elif args.command == "import":
            if not args.file.is_file():
                print(f"callcenter: no such file {args.file}", file=sys.stderr)
                return 2
            return asyncio.run(_import(settings, args.import_command, args.file, dry_run=args.dry_run))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
