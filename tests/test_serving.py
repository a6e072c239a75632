"""Serving on a real tritonserver (the nvidia-pytriton wheel's, on free ports) with tritonclient over gRPC."""

from __future__ import annotations

import io
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpc
from helpers import tensor
from PIL import Image
from tritonclient.utils import InferenceServerException

from dfguard.serving.server import TritonServer
from dfguard.train.synthetic import VideoSpec, render_real, source_photos, write_video
from dfguard.video import read_frames

REPOSITORY = Path(__file__).resolve().parents[1] / "model_repository"
MAX_BYTES = 400_000


@pytest.fixture(scope="module")
def server(tmp_path_factory, tritonserver):
    """The ensemble's first two steps served alone, video_probe's byte limit lowered so a test can exceed it."""
    repository = tmp_path_factory.mktemp("repository")
    shutil.copy(REPOSITORY / "_dfguard_env.py", repository)
    for step in ("video_probe", "video_decode"):
        shutil.copytree(REPOSITORY / step, repository / step)
    config = repository / "video_probe" / "config.pbtxt"  # no configs/cpu.pbtxt: the server falls back to it
    config.write_text(config.read_text().replace('"536870912"', f'"{MAX_BYTES}"'))
    with tritonserver(repository) as running:
        yield running


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> bytes:
    frames, _ = render_real(source_photos()[0], VideoSpec(width=192, height=160, frames=24),
                            np.random.default_rng(0))
    return write_video(tmp_path_factory.mktemp("video") / "real.mp4", frames,
                       VideoSpec(width=192, height=160, frames=24)).read_bytes()


def probe(client: grpc.InferenceServerClient, data: bytes, num_frames: int | None = None) -> np.ndarray:
    """video_probe's FRAME_INDEX for a video's bytes."""
    inputs = [tensor("VIDEO", np.frombuffer(data, np.uint8), "UINT8")]
    if num_frames is not None:
        inputs.append(tensor("NUM_FRAMES", np.array([num_frames], np.int32), "INT32"))
    return client.infer("video_probe", inputs, client_timeout=60).as_numpy("FRAME_INDEX")


def decode(client: grpc.InferenceServerClient, data: bytes, num_frames: int | None = None) -> grpc.InferResult:
    """video_probe then video_decode, as the ensemble chains them."""
    indices = probe(client, data, num_frames)
    return client.infer("video_decode", [tensor("VIDEO", np.frombuffer(data, np.uint8), "UINT8"),
                                         tensor("FRAME_INDEX", indices, "INT32")], client_timeout=60)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_decoded_frames_equal_the_in_process_ones(server, video):
    client = grpc.InferenceServerClient(server.grpc_url)
    result = decode(client, video, num_frames=6)
    expected = read_frames(video, 6)
    np.testing.assert_array_equal(result.as_numpy("FRAMES"), expected.images)
    np.testing.assert_array_equal(probe(client, video, 6), expected.indices)
    assert decode(client, video).as_numpy("FRAMES").shape[0] == 24  # default 32, the video has 24


def test_decoding_frames_the_video_does_not_have_is_a_named_error(server, video):
    client = grpc.InferenceServerClient(server.grpc_url)
    with pytest.raises(InferenceServerException, match=r"truncated or corrupt video: only 2 of the 3") as error:
        client.infer("video_decode", [tensor("VIDEO", np.frombuffer(video, np.uint8), "UINT8"),
                                      tensor("FRAME_INDEX", np.array([0, 23, 24], np.int32), "INT32")])
    assert error.value.status() == "StatusCode.INVALID_ARGUMENT"


BAD_INPUTS = {
    "empty": (lambda v: b"", "empty input"),
    "random bytes": (lambda v: np.random.default_rng(1).integers(0, 256, 4000, np.uint8).tobytes(), "not a readable"),
    "a PNG": (lambda v: png_bytes(), "still image"),
    "truncated MP4": (lambda v: v[: len(v) // 3], "truncated|not a readable"),
    "oversize": (lambda v: v + bytes(MAX_BYTES), "too large"),
}


def test_bad_requests_fail_alone_with_a_named_error_and_the_server_stays_ready(server, video):
    client = grpc.InferenceServerClient(server.grpc_url)
    jobs = [("good", video, None)] * 3 + [(name, make(video), pattern) for name, (make, pattern) in BAD_INPUTS.items()]

    def send(job):
        name, data, pattern = job
        try:
            return name, pattern, decode(client, data, 4), None
        except InferenceServerException as error:
            return name, pattern, None, error

    with ThreadPoolExecutor(len(jobs)) as pool:
        outcomes = list(pool.map(send, jobs))
    for name, pattern, result, error in outcomes:
        if name == "good":
            assert error is None and result.as_numpy("FRAMES").shape[0] == 4
        else:
            assert error is not None, name
            assert error.status() == "StatusCode.INVALID_ARGUMENT", (name, error.status())
            assert re.search(pattern, error.message()), (name, error.message())
    assert client.is_server_ready() and client.is_model_ready("video_probe") and client.is_model_ready("video_decode")
    with pytest.raises(InferenceServerException, match=r"NUM_FRAMES must be in 1\.\.256"):
        decode(client, video, 0)


def test_secure_defaults(server):
    command = server.command()
    for flag in ("--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1",
                 "--model-control-mode=none", "--strict-readiness=true", "--exit-on-error=true"):
        assert flag in command
    client = grpc.InferenceServerClient(server.grpc_url)
    with pytest.raises(InferenceServerException, match="restricted"):
        client.get_model_repository_index()
    assert [m.name for m in client.get_model_repository_index(headers=server.admin_headers()).models] == [
        "video_decode", "video_probe"]
    with pytest.raises(InferenceServerException, match="not allowed"):
        client.unload_model("video_decode", headers=server.admin_headers())
    assert client.is_model_ready("video_decode")


def listening_addresses(ports: tuple[int, ...]) -> set[str]:
    """The local addresses of the TCP sockets listening on ``ports``, read from ``/proc/net/tcp`` and ``tcp6``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.rsplit(":", 1)
            if state == "0A" and int(port, 16) in ports:  # 0A: LISTEN
                found.add(address)
    return found


# 127.0.0.1 as /proc writes it (little-endian hex), the same as an IPv4-mapped IPv6 address, and ::1
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def test_only_the_loopback_listens(server):
    """The bound sockets themselves, not the command line: every port of the server listens on the loopback
    only (0.0.0.0 would read 00000000)."""
    found = listening_addresses(tuple(server.ports))
    assert "0100007F" in found and found <= LOOPBACK, found


def local_addresses() -> set[str]:
    """This machine's own IPv4 addresses other than the loopback (the kernel's LOCAL routes)."""
    lines = Path("/proc/net/fib_trie").read_text().splitlines()
    found = {lines[k - 1].split()[-1] for k, line in enumerate(lines) if "/32 host LOCAL" in line}
    return {address for address in found if not address.startswith("127.")}


def test_the_machines_other_addresses_are_refused(server):
    """Connecting to every port through each of the machine's other addresses is refused: nothing but the
    loopback is bound."""
    import socket

    addresses = local_addresses()
    if not addresses:
        pytest.skip("this machine has no address besides the loopback")
    for address in sorted(addresses):
        for port in server.ports:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, port), timeout=5).close()
    assert grpc.InferenceServerClient(server.grpc_url).is_server_ready()


def test_a_broken_repository_fails_fast_with_the_log(tmp_path, tritonserver):
    from dfguard.serving.server import ServerError

    (tmp_path / "broken" / "1").mkdir(parents=True)
    (tmp_path / "broken" / "config.pbtxt").write_text('name: "broken"\nbackend: "python"\n')
    (tmp_path / "broken" / "1" / "model.py").write_text("raise RuntimeError('deliberately broken')\n")
    with pytest.raises(ServerError, match=r"deliberately broken|failed to load"):
        tritonserver(tmp_path, model_config_name=None).start(timeout=120)


@pytest.mark.parametrize("which", [0, 1, 2], ids=["http", "grpc", "metrics"])
def test_a_port_taken_after_it_was_chosen_is_chosen_anew(server, which):
    import socket

    fresh = TritonServer(server.repository)
    taken = fresh.ports[which]
    with socket.socket() as squatter:  # another process takes a port between the choice and the start
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        with fresh:
            assert fresh.ports[which] != taken
            assert grpc.InferenceServerClient(fresh.grpc_url).is_model_ready("video_probe")


def test_a_ready_server_on_our_http_port_is_not_taken_for_ours(server):
    """Another tritonserver already answers on the HTTP port we were handed: ours must notice it is not itself
    (its admin key is refused there), and move to other ports."""
    fresh = TritonServer(server.repository)
    fresh.ports = (int(server.http_url.rsplit(":", 1)[1]), *fresh.ports[1:])
    with fresh:
        assert fresh.http_url != server.http_url and fresh.answers_with_our_key()


def test_dfguard_serve_takes_its_key_from_a_file_never_shows_it_and_stops_on_sigterm(server, tmp_path):
    """The operator's key (a mounted Secret, base64 like ``openssl rand -base64 32``) unlocks the admin APIs and
    appears neither in what ``dfguard serve`` prints nor in the server's log, both of which a cluster ships."""
    import base64
    import signal
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from dfguard.serving.server import ADMIN_KEY, free_ports

    key = base64.b64encode(bytes(range(200, 232))).decode()  # '+', '/' and '=' padding: all must survive
    key_file = tmp_path / "admin-key"
    key_file.write_text(key + "\n")
    http, grpc_port, metrics = free_ports(3)
    command = [str(Path(sys.executable).with_name("dfguard")), "serve", "--repository", str(server.repository),
               "--http-port", str(http), "--grpc-port", str(grpc_port), "--metrics-port", str(metrics),
               "--admin-key-file", str(key_file)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = process.stdout.readline()
        assert "tritonserver ready (cpu variant)" in first and f"127.0.0.1:{grpc_port}" in first, first
        assert grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}").is_model_ready("video_decode")
        second = process.stdout.readline()
        assert "admin APIs need the header" in second and str(key_file) in second, second
        logging_api = f"http://127.0.0.1:{http}/v2/logging"
        with urllib.request.urlopen(urllib.request.Request(logging_api, headers={ADMIN_KEY: key}), timeout=10) as ok:
            assert ok.status == 200
        with pytest.raises(urllib.error.HTTPError):  # the same API without the key is refused
            urllib.request.urlopen(logging_api, timeout=10)
        log = Path(second.rsplit("log: ", 1)[1].strip())
        process.send_signal(signal.SIGTERM)
        printed = first + second + process.stdout.read()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert key not in printed and key not in log.read_text(errors="replace")
    with pytest.raises(InferenceServerException):
        grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}").is_server_live()


def test_a_short_or_unreadable_admin_key_file_is_refused_without_quoting_it(tmp_path):
    """A key file with a mistake (empty, a short word, two words) stops ``serve`` before anything starts, and the
    message names the file, not its content."""
    from dfguard.serving.server import ServerError, read_admin_key, write_admin_key

    for content in ("", "short-secret", "two words of a passphrase"):
        (tmp_path / "key").write_text(content)
        with pytest.raises(ServerError, match="at least 16 characters") as refused:
            read_admin_key(tmp_path / "key")
        assert str(tmp_path / "key") in str(refused.value) and (not content or content not in str(refused.value))
    with pytest.raises(ServerError, match="cannot read"):
        read_admin_key(tmp_path / "missing")
    written = write_admin_key(tmp_path / "generated" / "admin-key")
    assert read_admin_key(tmp_path / "generated" / "admin-key") == written
    assert (tmp_path / "generated" / "admin-key").stat().st_mode & 0o777 == 0o600


def test_a_system_tritonserver_needs_no_pytriton(monkeypatch):
    """In NVIDIA's container the wheel is not installed: the system binary must not ask for it."""
    import sys

    from dfguard.serving.server import SYSTEM_BINARY, is_wheel_binary, pytriton_root

    assert is_wheel_binary(pytriton_root() / "bin" / "tritonserver")
    monkeypatch.setitem(sys.modules, "pytriton", None)  # import pytriton now raises ImportError
    assert not is_wheel_binary(SYSTEM_BINARY)


def test_with_tls_only_grpc_leaves_the_loopback(tmp_path):
    """gRPC is the encrypted endpoint; plaintext HTTP and metrics must not listen where gRPC is exposed."""
    server = TritonServer(tmp_path, host="0.0.0.0", ports=(1, 2, 3), tls_cert=tmp_path / "c.pem",
                          tls_key=tmp_path / "k.pem")
    command = server.command()
    assert "--grpc-address=0.0.0.0" in command and "--grpc-use-ssl=true" in command
    assert "--http-address=127.0.0.1" in command and "--metrics-address=127.0.0.1" in command
    assert server.http_url == "127.0.0.1:1"
    plain = TritonServer(tmp_path, host="0.0.0.0", ports=(1, 2, 3)).command()
    assert "--http-address=0.0.0.0" in plain and not any("ssl" in flag for flag in plain)
    # in a pod Prometheus scrapes the pod's address, so the operator may open metrics (only) next to TLS gRPC
    scraped = TritonServer(tmp_path, host="0.0.0.0", ports=(1, 2, 3), tls_cert=tmp_path / "c.pem",
                           tls_key=tmp_path / "k.pem", metrics_host="0.0.0.0").command()
    assert "--metrics-address=0.0.0.0" in scraped and "--http-address=127.0.0.1" in scraped
    bucket = TritonServer("s3://models-bucket/dfguard", ports=(1, 2, 3)).command()
    assert "--model-repository=s3://models-bucket/dfguard" in bucket


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost and its key (PEM), valid for a day."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1)).add_extension(names, critical=False)
                   .sign(key, hashes.SHA256()))
    cert, secret = folder / "server.pem", folder / "server.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    secret.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
    return cert, secret


def test_tls_mode_refuses_plaintext(server, video, tmp_path):
    """With a certificate, gRPC speaks TLS only: a plaintext client gets no answer (UNAVAILABLE), a client that
    trusts the certificate (the project's Connection options) is served."""
    from dfguard.client.grpc_client import Connection

    cert, key = self_signed(tmp_path)
    with TritonServer(server.repository, tls_cert=cert, tls_key=key) as tls:
        with pytest.raises(InferenceServerException) as refused:
            grpc.InferenceServerClient(tls.grpc_url).is_server_ready(client_timeout=10)
        assert refused.value.status() == "StatusCode.UNAVAILABLE"
        options = Connection(tls.grpc_url, ssl=True, root_certificates=cert).client_options()
        secure = grpc.InferenceServerClient(**options)
        assert secure.is_server_ready(client_timeout=10)
        assert len(probe(secure, video, 4)) == 4


def stubs_of(server: TritonServer, model: str) -> list[int]:
    """The Python-backend stubs serving ``model`` (its folder is on each stub's command line)."""
    found = []
    for pid in sorted(server.stubs):
        try:
            if f"/{model}/".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def test_a_dead_stub_fails_its_requests_in_time_and_gets_the_server_restarted(server, video):
    """Triton 2.51 neither restarts a killed Python-backend stub nor reports its model unready: a request in flight
    in the killed stub gets an error (not a hang: well inside its deadline), and so does every later request to
    that model; ``TritonServer.supervise`` (what ``dfguard serve`` runs) restarts the server on the same ports."""
    import os
    import signal
    import threading

    from hostile import heavy_video

    heavy = heavy_video()
    supervised = TritonServer(server.repository).start()
    watcher = threading.Thread(target=supervised.supervise, kwargs={"interval": 0.5})
    watcher.start()
    try:
        client = grpc.InferenceServerClient(supervised.grpc_url)
        assert len(probe(client, video, 4)) == 4
        indices = np.arange(0, 128, 2, dtype=np.int32)  # 64 of its 150 frames (over this server's byte limit
        # for video_probe, which video_decode does not check)
        outcome: list[BaseException | float] = []

        def decode_heavy() -> None:
            start = time.monotonic()
            try:
                client.infer("video_decode", [tensor("VIDEO", np.frombuffer(heavy, np.uint8), "UINT8"),
                                              tensor("FRAME_INDEX", indices, "INT32")], client_timeout=60)
                outcome.append(time.monotonic() - start)
            except InferenceServerException as error:
                outcome.append(error)
                outcome.append(time.monotonic() - start)

        in_flight = threading.Thread(target=decode_heavy)
        first = set(supervised.stubs)
        decoders = stubs_of(supervised, "video_decode")
        assert len(decoders) == 2
        in_flight.start()
        time.sleep(0.3)  # the heavy decode is in a stub now
        for pid in decoders:
            os.kill(pid, signal.SIGKILL)
        in_flight.join(60)
        assert not in_flight.is_alive() and isinstance(outcome[0], InferenceServerException), outcome
        print(f"in flight when its stub died: {outcome[0].status()} after {outcome[1]:.1f} s: {outcome[0].message()}")
        assert outcome[1] < 30
        deadline, answered = time.monotonic() + 120, False
        while not answered and time.monotonic() < deadline:
            try:
                answered = not supervised.stubs & first and len(
                    probe(grpc.InferenceServerClient(supervised.grpc_url), video, 4)) == 4
            except InferenceServerException:  # the dead stub's error, or UNAVAILABLE while it restarts
                pass
            time.sleep(0.5)
        assert answered and supervised.stubs  # a new server, new stubs, answering
    finally:
        supervised.stop()
        watcher.join(60)
    assert not watcher.is_alive()


def test_metrics_carry_what_the_autoscaler_and_the_dashboard_read(served, video):
    """After a request, /metrics has the series deploy/ is built on: the queue-time and success counters of
    face_finder (the autoscaler's rule), the video ensemble's successes, and per-step latency quantiles (p95)."""
    import urllib.request

    from dfguard.client.grpc_client import DeepfakeClient

    with DeepfakeClient(served.grpc_url) as client:
        client.score_video(video, 6)
    text = urllib.request.urlopen(served.metrics_url, timeout=10).read().decode()

    def value(pattern: str) -> float:
        found = re.search(rf"^{pattern} (\S+)$", text, re.MULTILINE)
        assert found, f"no {pattern} in /metrics"
        return float(found[1])

    assert value(r'nv_inference_queue_duration_us\{model="face_finder",version="1"\}') >= 0
    assert value(r'nv_inference_request_success\{model="face_finder",version="1"\}') >= 1
    assert value(r'nv_inference_request_success\{model="deepfake_video",version="1"\}') >= 1
    assert value(r'nv_inference_request_summary_us\{model="face_finder",version="1",quantile="0.95"\}') > 0


def test_every_stub_runs_with_the_allocator_that_gives_memory_back(served):
    """What ``ALLOCATOR`` sets reaches tritonserver and each Python-backend stub (glibc reads it at start)."""
    from dfguard.serving.server import ALLOCATOR

    for pid in (served.process.pid, *served.stubs):
        environment = dict(entry.split("=", 1) for entry in
                           Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in entry)
        assert {name: environment.get(name) for name in ALLOCATOR} == ALLOCATOR, pid


def test_an_operators_allocator_settings_win(monkeypatch):
    from dfguard.serving.server import ALLOCATOR, server_environment

    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    environment = server_environment(Path("/opt/tritonserver/bin/tritonserver"))
    assert environment["MALLOC_ARENA_MAX"] == "8"
    assert environment["MALLOC_MMAP_THRESHOLD_"] == ALLOCATOR["MALLOC_MMAP_THRESHOLD_"]


@pytest.mark.parametrize(("value", "kept"), [(None, True), ("true", True), ("false", False), ("False", False)])
def test_the_memory_arena_parameter_of_an_onnx_step(value, kept):
    import json

    from dfguard.serving.steps import memory_arena

    parameters = {} if value is None else {"memory_arena": {"string_value": value}}
    assert memory_arena({"model_config": json.dumps({"parameters": parameters})}) is kept
    with pytest.raises(ValueError, match="memory_arena must be true or false"):
        memory_arena({"model_config": json.dumps({"parameters": {"memory_arena": {"string_value": "off"}}})})
