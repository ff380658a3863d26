"""Property-based fuzzing of the whole HTTP API from its served OpenAPI document (schemathesis),
as an admin and as an agent, against the product as it runs: ``callcenter demo`` in its own
process (every background service on, the simulator placing calls, demo data seeded).

Fails on any 500 and on any answer whose body contradicts the schema the route declares (a
timestamp without its offset, a missing field …). Bounded: a fixed number of examples per
route (``CALLCENTER_FUZZ_EXAMPLES``, default 20), a fixed seed (reproducible in CI; set
``CALLCENTER_FUZZ_SEED`` to explore), a few minutes in all.

Left out of the generated calls: ``/api/session`` (the fuzzer would log itself out or lock its
own user out) and ``/api/imports`` (uploads have their own tests in tests/security/test_bad_input).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from tests.services import free_port

EXAMPLES = int(os.environ.get("CALLCENTER_FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("CALLCENTER_FUZZ_SEED", "20261207"))
ROLES = ("admin", "agent1")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    """The demo on a free port; (base URL, role → session cookie header)."""
    folder: Path = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update(CALLCENTER_HTTP_PORT=str(port), CALLCENTER_KEY_FILE=str(folder / "keys"),
               CALLCENTER_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'demo.sqlite3'}")
    log = (folder / "demo.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "callcenter", "demo", "--no-browser", "--rate", "0.2",
                             "--customers", "60"], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        cookies: dict[str, str] = {}
        while time.monotonic() < deadline and len(cookies) < len(ROLES):
            assert proc.poll() is None, (folder / "demo.log").read_text()[-3000:]
            for role in ROLES:
                if role in cookies:
                    continue
                try:
                    r = requests.post(f"{base}/api/session", json={"username": role, "password": "demo1234"},
                                      timeout=5)
                except requests.ConnectionError:
                    break
                if r.status_code == 200:
                    cookies[role] = f"cc_session={r.cookies['cc_session']}"
            time.sleep(0.5)
        assert len(cookies) == len(ROLES), "the demo did not come up: " + (folder / "demo.log").read_text()[-3000:]
        yield base, cookies
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_no_500_and_every_answer_matches_its_schema(demo):  # type: ignore[no-untyped-def]
    base, cookies = demo
    schema = (schemathesis.openapi.from_url(f"{base}/api/openapi.json", headers={"Cookie": cookies["admin"]})
              .exclude(path_regex=r"^/api/session").exclude(path_regex=r"^/api/imports"))
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        tested += 1

        @seed(SEED)
        @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def run(case):  # type: ignore[no-untyped-def]
            for role in ROLES:
                case.call_and_validate(base_url=base, headers={"Cookie": cookies[role]},
                                       checks=[not_a_server_error, status_code_conformance,
                                               response_schema_conformance])

        try:
            run()
        except Exception as e:  # noqa: BLE001 - collected, reported together below
            failures.append(f"{operation.label}: {str(e)[:1500]}")
    assert tested > 60, f"only {tested} operations in the document"
    assert not failures, f"{len(failures)} of {tested} operations failed:\n\n" + "\n\n".join(failures)
