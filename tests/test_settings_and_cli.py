"""Settings from the environment, and the command line as a newcomer runs it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import aiohttp
import pytest

from callcenter.settings import Settings, SettingsError
from tests.waiting import wait_for


@pytest.mark.parametrize("env,variable", [
    ({"CALLCENTER_AMI_PORT": "x"}, "CALLCENTER_AMI_PORT"),
    ({"CALLCENTER_AMI_PORT": "70000"}, "CALLCENTER_AMI_PORT"),
    ({"CALLCENTER_HTTP_PORT": "-1"}, "CALLCENTER_HTTP_PORT"),
    ({"CALLCENTER_DATABASE_URL": "mysql://x/y"}, "CALLCENTER_DATABASE_URL"),
    ({"CALLCENTER_REDIS_URL": "http://x"}, "CALLCENTER_REDIS_URL"),
    ({"CALLCENTER_AMI_SECRET": "a\r\nAction: Hangup"}, "CALLCENTER_AMI_SECRET"),
    ({"CALLCENTER_ALLOWED_ORIGINS": "evil"}, "CALLCENTER_ALLOWED_ORIGINS"),
    ({"CALLCENTER_TIMEZONE": "Mars/Olympus"}, "CALLCENTER_TIMEZONE"),
    ({"CALLCENTER_LOCAL_AREA_CODE": "10"}, "CALLCENTER_LOCAL_AREA_CODE"),
    ({"CALLCENTER_LOG_LEVEL": "LOUD"}, "CALLCENTER_LOG_LEVEL"),
    ({"CALLCENTER_SECURE_COOKIES": "maybe"}, "CALLCENTER_SECURE_COOKIES"),
    ({"CALLCENTER_AMI_RECONNECT_MIN": "5", "CALLCENTER_AMI_RECONNECT_MAX": "1"}, "CALLCENTER_AMI_RECONNECT_MIN"),
    ({"CALLCENTER_POP_REPLAY_LIMIT": "300", "CALLCENTER_WS_QUEUE_SIZE": "256"}, "CALLCENTER_POP_REPLAY_LIMIT"),
])
def test_a_bad_value_names_its_variable(env, variable):
    with pytest.raises(SettingsError) as e:
        Settings.from_env(env)
    assert e.value.variable == variable and variable in str(e.value)


def test_defaults_and_values():
    s = Settings.from_env({})
    assert s.database_url.startswith("sqlite+aiosqlite:///") and s.redis_url is None
    assert "http://127.0.0.1:8080" in s.origins
    s = Settings.from_env({"CALLCENTER_AMI_PORT": "15038", "CALLCENTER_REDIS_URL": "redis://r:6379/1",
                           "CALLCENTER_ALLOWED_ORIGINS": "https://desk.example.com/, http://x:1"})
    assert s.ami_port == 15038 and s.redis_url == "redis://r:6379/1"
    assert s.origins[:2] == ("https://desk.example.com", "http://x:1")
    assert "http://127.0.0.1:8080" in s.origins  # the server's own origin stays allowed


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callcenter", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


def test_bad_setting_stops_the_cli_with_the_variable_name(tmp_path):
    r = run_cli("serve", env={"CALLCENTER_AMI_PORT": "not-a-port"})
    assert r.returncode == 2 and "CALLCENTER_AMI_PORT" in r.stderr


def test_users_add_and_import_customers(tmp_path):
    env = {"CALLCENTER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3",
           "CALLCENTER_KEY_FILE": str(tmp_path / "callcenter.keys")}
    r = run_cli("users", "add", "wangfang", "--role", "agent", "--password", "pass-word-1",
                "--extension", "8001", env=env)
    assert r.returncode == 0, r.stderr
    assert "added user wangfang" in r.stdout and "extension 8001" in r.stdout
    r = run_cli("users", "add", "wangfang", "--role", "agent", "--password", "pass-word-1", env=env)
    assert r.returncode == 1 and "already taken" in r.stderr
    r = run_cli("users", "add", "x", "--role", "agent", "--password", "short", env=env)
    assert r.returncode == 1 and "username" in r.stderr
    csv = tmp_path / "customers.csv"
    csv.write_text("姓名,电话,型号\n张三,13800138000,KFR-35GW\n李四,not-a-phone,BCD-470\n", encoding="utf-8")
    r = run_cli("import", "customers", str(csv), env=env)
    assert "loaded 1" in r.stdout and "rejected 1" in r.stdout, r.stdout + r.stderr
    assert "row 3" in r.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_serve_and_simulate_as_processes(tmp_path):
    """`callcenter simulate` and `callcenter serve` as separate processes, as in production."""
    ami, http = free_port(), free_port()
    env = {**os.environ, "CALLCENTER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/serve.sqlite3",
           "CALLCENTER_AMI_PORT": str(ami), "CALLCENTER_HTTP_PORT": str(http)}
    sim = await asyncio.create_subprocess_exec(sys.executable, "-m", "callcenter", "simulate", "--port", str(ami),
                                               "--rate", "0", env=env, stderr=asyncio.subprocess.DEVNULL)
    srv = await asyncio.create_subprocess_exec(sys.executable, "-m", "callcenter", "serve", env=env,
                                               stderr=asyncio.subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as s:
            async def healthy():
                try:
                    async with s.get(f"http://127.0.0.1:{http}/health") as r:
                        body = await r.json()
                        return body if body["ami"]["state"] == "connected" else None
                except aiohttp.ClientConnectionError:
                    return None

            body = await wait_for(healthy, 30, interval=0.2, message="serve connected to simulate")
            assert body["status"] == "ok" and body["database"] == "ok"
            async with s.get(f"http://127.0.0.1:{http}/") as r:
                assert r.url.path == "/login" and "登录" in await r.text()
    finally:
        for p in (srv, sim):
            p.terminate()
        for p in (srv, sim):
            await asyncio.wait_for(p.wait(), 20)


def test_log_lines_and_tracebacks_never_carry_a_mobile_number():
    import io
    import logging

    from callcenter.logs import MaskingFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter("%(message)s"))
    log = logging.getLogger("test.masking")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("caller %s", "13800138000")
        try:
            raise ValueError("bad row ('+8613900001111', 'x')")
        except ValueError:
            log.exception("write failed")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert "138****8000" in out and "139****1111" in out
    assert "13800138000" not in out and "13900001111" not in out
