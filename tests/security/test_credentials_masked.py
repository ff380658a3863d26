"""Finding 13 (credentials in printed URLs): ``callcenter demo`` prints the database it uses
without the URL's password, and nothing it writes to the terminal or the log carries it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from callcenter.logs import mask_url_credentials
from tests.services import free_port

SECRET = "pw-s3cret-demo"


def test_the_demo_banner_and_log_never_show_the_database_password(postgres_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    name = postgres_server.create_database()
    try:
        url = postgres_server.url(name).replace("://" + postgres_server.user + "@",
                                                f"://{postgres_server.user}:{SECRET}@")
        env = {**os.environ, "CALLCENTER_DATABASE_URL": url, "CALLCENTER_HTTP_PORT": str(free_port()),
               "CALLCENTER_KEY_FILE": str(tmp_path / "keys"), "CALLCENTER_LOG_LEVEL": "DEBUG"}
        proc = subprocess.Popen([sys.executable, "-m", "callcenter", "demo", "--no-browser", "--customers", "3",
                                 "--rate", "0.01"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        out: list[str] = []
        try:
            deadline = time.monotonic() + 90
            assert proc.stdout is not None
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                out.append(line)
                if "logins" in line:
                    break
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                rest, _ = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                rest, _ = proc.communicate()
            out.append(rest or "")
        text = "".join(out)
        assert "logins" in text, text[-2000:]
        assert SECRET not in text
        assert f"database {mask_url_credentials(url)}" in text and ":***@" in text
    finally:
        postgres_server.drop_database(name)
