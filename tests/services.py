"""Real service processes for the test suite: Redis, a throwaway PostgreSQL cluster, Chromium.

Every process is a child of pytest, in a session of its own (so a Ctrl-C at the terminal reaches
pytest first, which then stops the services in order), with its files in one temp folder per
pytest run. It is stopped at session end by the fixtures in ``conftest.py``. If pytest dies
without its teardown (SIGKILL, a CI time-out), the kernel signals each child
(``setpriv --pdeathsig``), and the next run removes the folders and processes left behind
(``sweep_stale_runs``). Ports are picked free, never fixed, and nothing is shared between runs.

Nothing here is skipped: a missing binary raises ``ServiceError`` with the command that installs
it, and the fixtures turn that into a test failure.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

#: Every pytest run keeps its service files under ``$TMPDIR/callcenter-tests-XXXX/``.
RUN_PREFIX = "callcenter-tests-"
#: Written in each run folder: "<pid> <process start time>" of the pytest that owns it.
OWNER_FILE = "owner"

#: Flags for Debian's chromium in a root container with no display and no internet.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)

#: Seconds a service gets to come up (a cold machine with 2 busy cores can be slow).
START_TIMEOUT = 30.0


class ServiceError(RuntimeError):
    """A service could not be found, started or used; the message says what to do."""


# --------------------------------------------------------------------------------------------
# Run folders


def _owner_tag(pid: int) -> str:
    return f"{pid} {psutil.Process(pid).create_time():.3f}"


def _owner_alive(tag: str) -> bool:
    try:
        pid_text, created = tag.split()
        return _owner_tag(int(pid_text)) == tag
    except (ValueError, psutil.Error):
        return False


def sweep_stale_runs(tmp: Path | None = None) -> list[Path]:
    """Remove run folders whose pytest is gone, and kill any process still using one.

    Folders of runs still in progress (another engineer's, on the same machine) are left alone.
    Returns the folders removed.
    """
    tmp = tmp or Path(tempfile.gettempdir())
    stale = []
    for folder in tmp.glob(RUN_PREFIX + "*"):
        try:
            tag = (folder / OWNER_FILE).read_text()
        except OSError:
            tag = ""
        if tag and _owner_alive(tag):
            continue
        if not tag and time.time() - folder.stat().st_mtime < 60:
            continue  # being created right now, owner file not written yet
        stale.append(folder)
    if not stale:
        return []
    needles = [str(f) for f in stale]
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if any(n in cmdline for n in needles):
            try:
                proc.kill()
            except psutil.Error:
                pass
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return stale


class RunDir:
    """The temp folder of one pytest run; readable by other users (the postgres server's)."""

    def __init__(self) -> None:
        sweep_stale_runs()
        self.path = Path(tempfile.mkdtemp(prefix=RUN_PREFIX))
        self.path.chmod(0o755)  # the postgres user must reach its folder inside
        (self.path / OWNER_FILE).write_text(_owner_tag(os.getpid()))

    def subdir(self, name: str, owner: str | None = None) -> Path:
        path = self.path / name
        path.mkdir(mode=0o755)
        if owner is not None:
            entry = pwd.getpwnam(owner)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return path

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class ManagedProcess:
    """One service process: started in its own session, output to a log file, stopped for sure.

    ``death_signal`` is what the kernel sends the process if pytest dies first; ``stop_signal``
    is the orderly shutdown we ask for at teardown, followed by SIGKILL of the whole process
    group (chromium's helpers, postgres' backends) after ``stop_timeout`` seconds.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        run_as: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        death_signal: str = "TERM",
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.run_as = run_as
        self.stop_signal = stop_signal
        self.death_signal = death_signal
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # setpriv (util-linux, always on Debian) sets the parent-death signal after it has
        # changed user, so the kernel keeps it; Popen(user=...) would clear it.
        wrapper = ["setpriv", f"--pdeathsig={self.death_signal}"]
        if self.run_as is not None:
            wrapper += ["--reuid", self.run_as, "--regid", self.run_as, "--clear-groups"]
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                [*wrapper, "--", *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.cwd,
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def log_tail(self) -> str:
        return _log_tail(self.log_path)

    def check_running(self) -> None:
        assert self.popen is not None, "not started"
        code = self.popen.poll()
        if code is not None:
            raise ServiceError(
                f"{self.name} exited with code {code}; last lines of {self.log_path}:\n{self.log_tail()}"
            )

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
        """Poll ``ready`` until it is true; fail early if the process exits, and at ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_running()
            if ready():
                return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.name}: {what} not reached within {timeout:.0f} s; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the process to stop, then kill whatever is left of its process group."""
        if self.popen is None:
            return
        try:
            family = psutil.Process(self.popen.pid).children(recursive=True)
        except psutil.Error:
            family = []
        if self.popen.poll() is None:
            self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # pgid == pid: started in a new session
        except (ProcessLookupError, PermissionError):
            pass
        for proc in family:
            try:
                proc.kill()
            except psutil.Error:
                pass


# --------------------------------------------------------------------------------------------
# Redis


def find_redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise ServiceError(
            "redis-server is not installed (tests need a real Redis and never skip). "
            "Run the tests with scripts/test, which installs it, or: apt-get install -y redis-server"
        )
    return path


class RedisServer:
    """A private redis-server on 127.0.0.1 and a free port, with no persistence."""

    def __init__(self, run_dir: RunDir) -> None:
        self.binary = find_redis_server()
        self.dir = run_dir.subdir("redis")
        self.host = "127.0.0.1"
        self.port = 0
        self.process: ManagedProcess | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def client(self, db: int = 0):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host=self.host, port=self.port, db=db, socket_timeout=5, socket_connect_timeout=1)

    def _answers_ping(self) -> bool:
        import redis

        try:
            with self.client() as r:
                return bool(r.ping())
        except redis.ConnectionError:
            return False

    def start(self) -> RedisServer:
        for attempt in range(5):  # a free port can be taken by someone else before we bind it
            self.port = free_port()
            self.process = ManagedProcess(
                "redis-server",
                [
                    self.binary,
                    "--bind", self.host,
                    "--port", str(self.port),
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.dir),
                    "--daemonize", "no",
                    "--logfile", "",
                ],
                log_path=self.dir / f"redis-{attempt}.log",
            )
            self.process.start()
            try:
                self.process.wait_until(self._answers_ping, "PING answered")
                return self
            except ServiceError:
                self.process.stop()
                if "Address already in use" not in self.process.log_tail():
                    raise
        raise ServiceError(f"redis-server found no free port; see the logs in {self.dir}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def resume(self) -> RedisServer:
        """Start it again on the same port, empty (no persistence): a Redis restart."""
        assert self.process is not None
        self.process = ManagedProcess("redis-server", self.process.argv, log_path=self.dir / "redis-resumed.log")
        self.process.start()
        self.process.wait_until(self._answers_ping, "PING answered")
        return self


# --------------------------------------------------------------------------------------------
# PostgreSQL


def find_postgres_bindir() -> Path:
    """Debian's newest ``/usr/lib/postgresql/N/bin``, else the folder of ``initdb`` on PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ServiceError(
        "PostgreSQL server binaries (initdb) are not installed (tests need a real PostgreSQL). "
        "Run the tests with scripts/test, which installs them, or: apt-get install -y postgresql"
    )


class PostgresServer:
    """A throwaway cluster: initdb into the run folder, postgres on a Unix socket only.

    Durability is off (fsync, synchronous_commit, full_page_writes): the cluster dies with the
    run. The superuser is ``root`` with trust auth, whatever OS user runs the tests. As root,
    the server runs as the ``postgres`` OS user (initdb and postgres refuse to run as root).
    """

    user = "root"
    port = 5432  # only names the socket file: no TCP listener, so no clash with anything

    def __init__(self, run_dir: RunDir) -> None:
        self.bindir = find_postgres_bindir()
        self.run_as = "postgres" if os.geteuid() == 0 else None
        if self.run_as:
            try:
                pwd.getpwnam(self.run_as)
            except KeyError:
                raise ServiceError(
                    "running as root, the test cluster needs the 'postgres' OS user: "
                    "apt-get install -y postgresql creates it"
                ) from None
        self.dir = run_dir.subdir("pg", owner=self.run_as)
        self.datadir = self.dir / "data"
        self.socket_dir = self.dir / "sock"
        self.process: ManagedProcess | None = None

    def url(self, database: str) -> str:
        """SQLAlchemy URL (asyncpg) of ``database`` on this cluster, over the Unix socket."""
        return f"postgresql+asyncpg://{self.user}@/{database}?host={self.socket_dir}"

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if self.run_as is None:
            return argv
        return ["setpriv", "--reuid", self.run_as, "--regid", self.run_as, "--clear-groups", "--", *argv]

    def start(self) -> PostgresServer:
        initdb = subprocess.run(
            self._as_server_user(
                [
                    str(self.bindir / "initdb"),
                    "-D", str(self.datadir),
                    "-U", self.user,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                    "--no-instructions",
                ]
            ),
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if initdb.returncode != 0:
            raise ServiceError(f"initdb failed ({initdb.returncode}):\n{initdb.stdout}{initdb.stderr}")
        self._as_owner_mkdir(self.socket_dir)
        settings = {
            "listen_addresses": "",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "log_min_messages": "warning",
        }
        argv = [str(self.bindir / "postgres"), "-D", str(self.datadir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self._argv = argv
        return self.resume()

    def resume(self) -> PostgresServer:
        """(Re)start the server on the cluster ``start`` made (fault tests stop it with
        ``stop`` and bring it back with this)."""
        self.process = ManagedProcess(
            "postgres",
            self._argv,
            log_path=self.dir / "postgres.log",
            run_as=self.run_as,
            stop_signal=signal.SIGINT,  # "fast" shutdown: disconnect clients, no checkpoint wait
            death_signal="QUIT",  # "immediate" shutdown if pytest is gone
            cwd=self.dir,
        )
        self.process.start()
        self.process.wait_until(self._ready, "accepting connections")
        return self

    def _as_owner_mkdir(self, path: Path) -> None:
        path.mkdir(mode=0o755)
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _ready(self) -> bool:
        probe = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", str(self.socket_dir), "-p", str(self.port),
             "-U", self.user, "-d", "postgres", "-t", "1"],
            stdin=subprocess.DEVNULL,
        )
        return probe.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL command as the superuser; return its unaligned output."""
        done = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.user, "-d", database,
             "-c", sql],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise ServiceError(f"psql {sql!r} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout.strip()

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a new ``t_<uuid>`` name unless given); return its name."""
        name = name or f"t_{uuid.uuid4().hex}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"unsafe database name {name!r}")
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, cutting off any connection a test left open."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=15)


# --------------------------------------------------------------------------------------------
# Chromium


def find_chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if path is None:
        raise ServiceError(
            "Debian's chromium is not installed (browser tests need it and never skip). "
            "Run the tests with scripts/test, which installs it, or: apt-get install -y chromium"
        )
    return path


class ChromiumServer:
    """One headless chromium for the whole run, reachable over CDP on 127.0.0.1.

    Tests connect to it with Playwright's ``connect_over_cdp`` in their own event loop and each
    get a fresh browser context, so no cookies or storage leak from one test to the next.
    """

    def __init__(self, run_dir: RunDir) -> None:
        self.executable = find_chromium()
        self.dir = run_dir.subdir("chromium")
        self.profile = self.dir / "profile"
        self.ws_endpoint = ""
        self.process: ManagedProcess | None = None

    def _read_endpoint(self) -> bool:
        # Chromium writes "<port>\n<ws path>" here once its DevTools server listens.
        try:
            port, path = (self.profile / "DevToolsActivePort").read_text().split()[:2]
        except (OSError, ValueError):
            return False
        self.ws_endpoint = f"ws://127.0.0.1:{port}{path}"
        return True

    def start(self) -> ChromiumServer:
        self.process = ManagedProcess(
            "chromium",
            [
                self.executable,
                "--headless",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                *CHROMIUM_ARGS,
                "about:blank",
            ],
            log_path=self.dir / "chromium.log",
        )
        self.process.start()
        self.process.wait_until(self._read_endpoint, "DevTools endpoint written")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=5)
