"""Starting ``tritonserver`` for the model repository: securely, on free ports, ready before it is used.

The binary is the system one when there is one (NVIDIA's NGC container), else the one inside the
``nvidia-pytriton`` wheel, with a backend folder assembled for the running Python (the wheel's Python backend and
the stub built for this Python version) and the wheel's bundled libraries on ``LD_LIBRARY_PATH``.

Secure defaults: every endpoint binds 127.0.0.1 unless told otherwise, model control is ``none`` (the repository
cannot be changed through the API), the admin APIs (model repository, shared memory, logging, tracing) need a
header with a key (generated per start, or read from a file such as a mounted Secret; never printed or logged),
readiness is strict and the server exits on any model load error.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dfguard.errors import DfguardError
from dfguard.paths import cache_dir

from .processes import descendants

RESTRICTED_APIS = "model-repository,shared-memory,logging,trace"
ADMIN_KEY = "dfguard-admin-key"  # HTTP header name; over gRPC Triton expects it prefixed "triton-grpc-protocol-"
SYSTEM_BINARY = Path("/opt/tritonserver/bin/tritonserver")


class ServerError(DfguardError):
    """tritonserver could not be found, started, or made ready."""


MIN_ADMIN_KEY_LENGTH = 16


def read_admin_key(path: Path) -> str:
    """The admin key in ``path`` (a mounted Secret, say): its content without surrounding whitespace, which must be
    one printable word of at least ``MIN_ADMIN_KEY_LENGTH`` characters. The error never quotes the content."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ServerError(f"cannot read the admin key file {path}: {error}") from None
    if len(key) < MIN_ADMIN_KEY_LENGTH or not key.isprintable() or any(c.isspace() for c in key):
        raise ServerError(f"the admin key in {path} must be one printable word of at least {MIN_ADMIN_KEY_LENGTH} "
                          f"characters (got {len(key)} characters): e.g. openssl rand -base64 32 > {path}")
    return key


def new_admin_key() -> str:
    """A random admin key (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def write_admin_key(path: Path) -> str:
    """A new random admin key, written to ``path`` readable by its owner only (replacing what was there)."""
    key = new_admin_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    os.replace(partial, path)
    return key


def pytriton_root() -> Path:
    """The ``tritonserver`` folder inside the installed nvidia-pytriton wheel."""
    try:
        import pytriton
    except ImportError as error:
        raise ServerError("no tritonserver: install the serve extra (pip install 'deepfake-guard[serve]') or run "
                          "in NVIDIA's Triton container") from error
    return Path(pytriton.__file__).parent / "tritonserver"


def is_wheel_binary(binary: Path) -> bool:
    """Whether ``binary`` is the nvidia-pytriton wheel's server (which needs our backend folder and libraries);
    False for a system one, e.g. in NVIDIA's container where the wheel is not installed."""
    try:
        return binary.is_relative_to(pytriton_root())
    except ServerError:
        return False


def find_tritonserver() -> Path:
    """The system ``tritonserver`` when there is one, else the wheel's."""
    system = shutil.which("tritonserver") or (str(SYSTEM_BINARY) if SYSTEM_BINARY.exists() else None)
    return Path(system) if system else pytriton_root() / "bin" / "tritonserver"


def backend_directory(cache: Path) -> Path:
    """A backend folder whose ``python/`` holds the wheel's Python backend and the stub for this Python."""
    root = pytriton_root()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise ServerError(f"the nvidia-pytriton wheel has no Python-backend stub for Python {version}")
    target = cache / f"triton-backends-py{version}" / "python"
    target.mkdir(parents=True, exist_ok=True)
    for source in (root / "backends" / "python" / "libtriton_python.so",
                   root / "backends" / "python" / "triton_python_backend_utils.py", stub):
        link = target / source.name
        if not link.exists():
            link.symlink_to(source)
    return target.parent


# glibc malloc for tritonserver and its stubs (an operator's own values win): blocks from 1 MiB up (frames,
# batches of windows, activations) are mapped for each use and given back when freed, instead of glibc raising
# that threshold to the largest block freed so far and keeping them in its heaps, and two arenas per process
# rather than eight per core; without this a server that once scored an 8K upload kept ~2 GB more resident.
ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20), "MALLOC_TRIM_THRESHOLD_": str(4 << 20), "MALLOC_ARENA_MAX": "2"}


def server_environment(binary: Path) -> dict[str, str]:
    """The environment for the server: the wheel's libraries, and this interpreter's packages for the stub."""
    env = dict(os.environ)
    for name, value in ALLOCATOR.items():
        env.setdefault(name, value)
    if not is_wheel_binary(binary):
        return env
    libs = pytriton_root().parent.parent / "nvidia_pytriton.libs"
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(libs), env.get("LD_LIBRARY_PATH")]))
    # The stub embeds the system Python in isolated mode (PYTHONPATH is ignored): the repository's
    # _dfguard_env.py adds these directories, .pth files included, in front of the system's packages.
    env["DFGUARD_SITE_PACKAGES"] = os.pathsep.join(site.getsitepackages())
    return env


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` TCP ports that are free right now (another process may take one before it is used: a server on
    ports chosen here retries with new ones when a port turns out taken, see ``TritonServer.start``)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class TritonServer:
    """A ``tritonserver`` process: ``with TritonServer(repo) as server: server.grpc_url`` ..."""

    repository: Path | str  # a folder, or an object-store URL Triton reads itself (s3://, gs://, as://)
    host: str = "127.0.0.1"
    model_config_name: str | None = "cpu"
    ports: tuple[int, int, int] | None = None  # http, grpc, metrics
    cache: Path = field(default_factory=cache_dir)
    log: Path | None = None
    admin_key: str = field(default_factory=new_admin_key)
    tls_cert: Path | None = None  # PEM certificate and key: gRPC over TLS; HTTP and metrics then on 127.0.0.1
    tls_key: Path | None = None
    http_host: str | None = None  # where HTTP listens when not the default (see local_host)
    metrics_host: str | None = None  # where metrics listen when not the default, e.g. the pod's address under TLS
    extra_args: tuple[str, ...] = ()  # further tritonserver flags, appended last
    process: subprocess.Popen | None = None
    chosen_ports: bool = field(init=False, default=False)  # True when free_ports picked them (they may be re-picked)
    stubs: frozenset[int] = field(init=False, default=frozenset())  # the Python-backend stubs at readiness
    stopping: bool = field(init=False, default=False)  # stop() was called: stubs dying now are not a failure

    def __post_init__(self) -> None:
        self.chosen_ports = self.ports is None
        self.ports = self.ports or tuple(free_ports(3, self.host))

    @property
    def local_host(self) -> str:
        """Where HTTP and metrics listen: ``host``, except with TLS, where only gRPC is encrypted, so the
        plaintext endpoints stay on the loopback (readiness checks and scraping from the same machine)."""
        return "127.0.0.1" if self.tls_cert is not None else self.host

    @property
    def http_address(self) -> str:
        """Where HTTP listens: ``http_host`` if given, else ``local_host``."""
        return self.http_host or self.local_host

    @property
    def metrics_address(self) -> str:
        """Where metrics listen: ``metrics_host`` if given, else ``local_host``."""
        return self.metrics_host or self.local_host

    @property
    def http_url(self) -> str:
        return f"{self.http_address}:{self.ports[0]}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.ports[1]}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics_address}:{self.ports[2]}/metrics"

    def admin_headers(self, protocol: str = "grpc") -> dict[str, str]:
        """The header that unlocks the restricted admin APIs, for ``protocol`` "grpc" or "http"."""
        name = f"triton-grpc-protocol-{ADMIN_KEY}" if protocol == "grpc" else ADMIN_KEY
        return {name: self.admin_key}

    def command(self) -> list[str]:
        """The command line, with the secure defaults."""
        binary = find_tritonserver()
        http, grpc, metrics = self.ports
        command = [str(binary), f"--model-repository={self.repository}", "--model-control-mode=none",
                   "--strict-readiness=true", "--exit-on-error=true", "--disable-auto-complete-config",
                   f"--http-address={self.http_address}", f"--http-port={http}", f"--grpc-address={self.host}",
                   f"--grpc-port={grpc}", f"--metrics-address={self.metrics_address}", f"--metrics-port={metrics}",
                   "--metrics-config=summary_latencies=true",  # p50/p90/p95/p99 per model, for dashboards
                   f"--http-restricted-api={RESTRICTED_APIS}:{ADMIN_KEY}={self.admin_key}",
                   f"--grpc-restricted-protocol={RESTRICTED_APIS}:{ADMIN_KEY}={self.admin_key}"]
        if is_wheel_binary(binary):
            command.append(f"--backend-directory={backend_directory(self.cache)}")
        if self.model_config_name:
            command.append(f"--model-config-name={self.model_config_name}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ServerError("TLS needs both a certificate and its key")
        if self.tls_cert is not None:
            command += ["--grpc-use-ssl=true", f"--grpc-server-cert={self.tls_cert}",
                        f"--grpc-server-key={self.tls_key}"]
        return command + list(self.extra_args)

    def start(self, timeout: float = 180.0, attempts: int = 3) -> TritonServer:
        """Start the server and wait until it and all its models are ready (or raise with its log). Ports that
        ``free_ports`` chose and another process took meanwhile are chosen anew, up to ``attempts`` times."""
        named_log, attempt = self.log is not None, 1
        self.stopping = False
        while True:
            self.log = self.log if named_log else Path(self.cache) / f"tritonserver-{self.ports[1]}.log"
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with self.log.open("wb") as log:
                self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                                env=server_environment(find_tritonserver()), start_new_session=True)
            try:
                self.wait_ready(timeout)
                self.stubs = frozenset(descendants(self.process.pid)) - {self.process.pid}
                return self
            except ServerError as error:
                if not (self.chosen_ports and attempt < attempts and self.port_was_taken(str(error))):
                    raise
            self.ports, attempt = tuple(free_ports(3, self.host)), attempt + 1

    def dead_stubs(self) -> list[int]:
        """The Python-backend stubs of this start that have died. Triton 2.51 neither restarts a dead stub nor
        reports its model unready: every request to that model then fails ("Stub process … is not healthy")."""
        dead = []
        for pid in sorted(self.stubs):
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                state = "gone"
            if state in ("Z", "X", "gone"):
                dead.append(pid)
        return dead

    def supervise(self, interval: float = 2.0, timeout: float = 180.0, grace: float = 5.0) -> int:
        """Watch the server until it exits (returns its exit code): when a stub dies, restart tritonserver on the
        same ports (requests meanwhile get UNAVAILABLE, which clients retry), printing why.

        A server whose stub died does not exit on SIGTERM before Triton's exit timeout (30 s: the dead model never
        unloads), while every request to that model fails: after ``grace`` seconds it is killed instead."""
        while True:
            try:
                return self.process.wait(interval)
            except subprocess.TimeoutExpired:
                pass
            if self.stopping:
                return self.process.wait()
            if dead := self.dead_stubs():
                print(f"a Python-backend stub died (pids {dead}): restarting tritonserver on the same ports",
                      flush=True)
                self.stop(grace)
                self.start(timeout)

    def port_was_taken(self, message: str = "") -> bool:
        """Whether the server's log (or the error ``message``) says one of its ports was in use (Triton:
        "Socket '…' already in use"; gRPC: "Address already in use")."""
        text = self.log.read_text(errors="replace") if self.log and self.log.exists() else ""
        return "already in use" in (text + message).lower()

    def answers_with_our_key(self) -> bool:
        """Whether the server on our HTTP port is this one: its restricted logging API takes our admin key (another
        tritonserver on a port we were told was free refuses it)."""
        import urllib.error
        import urllib.request

        request = urllib.request.Request(f"http://{self.http_url}/v2/logging", headers=self.admin_headers("http"))
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def wait_ready(self, timeout: float) -> None:
        """Poll readiness over HTTP until the deadline; a dead process fails at once with its log's tail.

        Plain urllib on purpose: tritonclient.http brings gevent, whose hub keeps Python's signal handlers
        (``dfguard serve``'s SIGTERM) from running."""
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"tritonserver exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as response:
                    ready = response.status == 200
                if ready and self.process.poll() is None and self.answers_with_our_key():
                    if self.port_was_taken():  # Triton serves on without an endpoint it could not bind (metrics)
                        self.stop()
                        raise ServerError(f"a port of {self.ports} was already in use:\n{self.log_tail()}")
                    return
                if ready:  # ready, but not us: another server holds the HTTP port, ours cannot bind it
                    self.stop()
                    raise ServerError(f"HTTP port {self.ports[0]} already in use by another server")
            except (urllib.error.URLError, ConnectionError, TimeoutError):  # not listening or not ready yet
                pass
            time.sleep(0.5)
        self.stop()
        raise ServerError(f"tritonserver was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log else ""

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (Triton unloads models and exits), SIGKILL if it does not within ``timeout``."""
        self.stopping = True
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> TritonServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
