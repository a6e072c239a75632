"""Batch scoring across servers and shards: ``--url A --url B`` survives a server's SIGKILL with one record per
input; ``--shard I/N`` runs merged with ``--merge`` equal one unsharded run, and a merge that would lose or double an
input refuses, naming it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tritonclient.grpc as grpc
from helpers import DFGUARD, read_jsonl

from dfguard.client.grpc_client import Connection, DeepfakeClient, RetryPolicy
from dfguard.client.replicas import Replicas
from dfguard.client.results import Record, ResultsFile
from dfguard.client.shards import merge_shards, parse_shard, select_shard, shard_of


def score(*arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``dfguard score ARGUMENTS --no-progress``, its output captured."""
    return subprocess.run([DFGUARD, "score", *arguments, "--no-progress"], capture_output=True, text=True,
                          timeout=timeout)


def video_requests(server_url: str) -> int:
    """How many requests ``deepfake_video`` of the server at ``server_url`` has answered successfully."""
    statistics = grpc.InferenceServerClient(server_url).get_inference_statistics("deepfake_video", as_json=True)
    return int(statistics["model_stats"][0]["inference_stats"]["success"].get("count", 0))


def test_requests_go_to_the_replica_with_fewest_in_flight_and_ties_take_turns():
    replicas = Replicas(["a:1", "b:1", "c:1"], RetryPolicy(base_delay=0.01, max_delay=0.02))
    first = [replicas.acquire() for _ in range(3)]
    assert sorted(first) == [0, 1, 2]  # one each before any gets a second
    replicas.release(1, failed=False)
    assert replicas.acquire() == 1  # the only one with a free slot
    for index in (0, 1, 2):
        replicas.release(index, failed=False)
    assert [r.in_flight for r in replicas.replicas] == [0, 0, 0]
    one_at_a_time = []
    for _ in range(6):
        one_at_a_time.append(replicas.acquire())
        replicas.release(one_at_a_time[-1], failed=False)
    assert sorted(one_at_a_time) == [0, 0, 1, 1, 2, 2]  # idle and equal: they take turns


def test_a_failed_replica_is_left_alone_then_tried_again():
    replicas = Replicas(["a:1", "b:1"], RetryPolicy(base_delay=0.2, max_delay=0.2))
    down = replicas.acquire()
    replicas.release(down, failed=True)
    assert all(replicas.acquire() != down for _ in range(4))  # all to the other while it cools down
    for _ in range(4):
        replicas.release(1 - down, failed=False)
    lone = Replicas(["a:1"], RetryPolicy(base_delay=0.2, max_delay=0.2))
    lone.release(lone.acquire(), failed=True)
    start = time.monotonic()
    assert lone.acquire() == 0 and time.monotonic() - start >= 0.09  # all down: wait for it (±50 % jitter)
    with pytest.raises(ValueError, match="--url"):
        Replicas([], RetryPolicy())


def test_a_replica_back_from_cooling_down_takes_one_probe_at_a_time():
    """After a failure, the first request back is a probe; the others go elsewhere (or wait) until it answers."""
    replicas = Replicas(["a:1", "b:1"], RetryPolicy(base_delay=0.02, max_delay=0.02))
    replicas.release(0, failed=True) if replicas.acquire() == 0 else pytest.fail("a goes first")
    time.sleep(0.05)  # cooled down
    chosen = [replicas.acquire() for _ in range(5)]
    assert chosen.count(0) == 1  # back: it gets one request, the probe, and no second while that is in flight
    replicas.release(0, failed=False)  # it answered: back in the rotation, and the least busy
    assert replicas.acquire() == 0
    lone = Replicas(["a:1"], RetryPolicy(base_delay=0.02, max_delay=0.02))
    lone.release(lone.acquire(), failed=True)
    time.sleep(0.05)
    assert lone.acquire() == 0  # the probe
    answered = threading.Timer(0.2, lone.release, args=(0,), kwargs={"failed": False})
    answered.start()
    start = time.monotonic()
    assert lone.acquire() == 0 and time.monotonic() - start >= 0.15  # waited for the probe's answer
    answered.join()


def test_replicas_choose_safely_from_many_threads():
    replicas = Replicas(["a:1", "b:1", "c:1", "d:1"], RetryPolicy())
    chosen: list[int] = []

    def work() -> None:
        for _ in range(200):
            index = replicas.acquire()
            chosen.append(index)
            replicas.release(index, failed=False)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.in_flight for r in replicas.replicas] == [0, 0, 0, 0]
    assert min(chosen.count(i) for i in range(4)) > 200  # 1600 requests spread, none starved


def test_a_dns_url_gets_round_robin_and_keeps_large_messages():
    options = Connection("dns:///deepfake-guard-headless.moderation.svc:8001").client_options()
    assert ("grpc.lb_policy_name", "round_robin") in options["channel_args"]
    assert ("grpc.max_send_message_length", 2**31 - 1) in options["channel_args"]
    assert "channel_args" not in Connection("10.0.0.7:8001").client_options()  # tritonclient's defaults


def test_shards_cover_every_input_once_whatever_the_order(tmp_path):
    paths = [tmp_path / f"upload-{k:04d}.mp4" for k in range(2000)]
    shards = [select_shard(paths, index, 4) for index in range(4)]
    assert sorted(p for shard in shards for p in shard) == sorted(p.resolve() for p in paths)
    assert all(400 < len(shard) < 600 for shard in shards)  # a hash spreads them evenly
    assert select_shard(list(reversed(paths)), 2, 4) == list(reversed(shards[2]))  # order kept, choice unchanged
    assert select_shard(paths[:10], 2, 4) == [p for p in shards[2] if p in {q.resolve() for q in paths[:10]}]
    # the same slice in another process (no per-process hash seed)
    other = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                            "from dfguard.client.shards import shard_of; "
                            "print(shard_of(Path(sys.argv[1]), 4))", str(paths[7].resolve())],
                           capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "random"})
    assert int(other.stdout) == shard_of(paths[7].resolve(), 4)


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1", "a/b", "1/0"])
def test_a_wrong_shard_is_refused(text):
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(text)


def write_records(path: Path, inputs: list[Path]) -> None:
    """A results file with an ok record for each of ``inputs``."""
    results = ResultsFile(path)
    results.open()
    for k, source in enumerate(inputs):
        results.append(Record(str(source.resolve()), f"{k:064x}", "video", "ok", score=k / 100, verdict="real"))


def test_a_merge_that_would_lose_double_or_add_an_input_refuses_naming_it(tmp_path):
    inputs = [Path(f"/uploads/v{k}.mp4") for k in range(15)]  # fixed paths: the same shards on every run
    shards = [tmp_path / f"shard-{i}.jsonl" for i in range(3)]
    for index, shard in enumerate(shards):
        assert select_shard(inputs, index, 3), "each shard has inputs"
        write_records(shard, select_shard(inputs, index, 3))
    assert merge_shards(inputs, shards, tmp_path / "all.jsonl") == {"ok": len(inputs)}
    assert [r["path"] for r in read_jsonl(tmp_path / "all.jsonl")] == [str(p.resolve()) for p in inputs]  # in order
    lines = {json.loads(line)["path"]: line for shard in shards for line in shard.read_text().splitlines()}
    assert (tmp_path / "all.jsonl").read_text().splitlines() == [lines[str(p)] for p in inputs]  # byte for byte
    merge_shards(inputs, shards, tmp_path / "all.csv")  # shards → another format
    csv_shards = [tmp_path / f"shard-{i}.csv" for i in range(3)]
    for index, shard in enumerate(csv_shards):
        write_records(shard, select_shard(inputs, index, 3))
    assert merge_shards(inputs, csv_shards, tmp_path / "from-csv.jsonl") == {"ok": len(inputs)}
    assert read_jsonl(tmp_path / "from-csv.jsonl") == read_jsonl(tmp_path / "all.jsonl")
    assert [r.path for r in ResultsFile(tmp_path / "all.csv").open()] == [str(p) for p in inputs]
    assert [r.score for r in ResultsFile(tmp_path / "all.csv").open()] == [r["score"] for r in
                                                                            read_jsonl(tmp_path / "all.jsonl")]
    lost = next(p for p in inputs if shard_of(p.resolve(), 3) == 1)
    with pytest.raises(ValueError, match="inputs have no record") as missing:
        merge_shards(inputs, [shards[0], shards[2]], tmp_path / "x.jsonl")
    assert str(lost.resolve()) in str(missing.value) and not (tmp_path / "x.jsonl").exists()
    with pytest.raises(ValueError, match="more than one record"):
        merge_shards(inputs, [*shards, shards[1]], tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match=r"of no input given.*v14\.mp4"):
        merge_shards(inputs[:-1], shards, tmp_path / "x.jsonl")
    with shards[0].open("a") as handle:
        handle.write('{"path": "/torn')  # its job still writing
    with pytest.raises(ValueError, match="torn"):
        merge_shards(inputs, shards, tmp_path / "x.jsonl")
    assert shards[0].read_text().endswith('{"path": "/torn')  # a merge reads, never repairs


@pytest.fixture(scope="module")
def uploads(prepared, tmp_path_factory) -> Path:
    """A folder of 20 test videos and a broken one, enough work that a kill lands mid-run."""
    from dfguard.train.datasets import load_csv

    folder = tmp_path_factory.mktemp("uploads")
    sources = [r.path for r in load_csv(prepared.parent / "videos" / "manifest.csv") if r.split == "test"]
    for k in range(20):
        shutil.copy(sources[k % len(sources)], folder / f"{k:02d}.mp4")
    (folder / "broken.mp4").write_bytes(bytes(range(256)) * 10)
    return folder


def test_two_servers_one_killed_mid_run_every_input_once(repository, served, uploads, tmp_path, tritonserver):
    """``--url A --url B``: both servers take requests; SIGKILL to B's tritonserver and stubs mid-run: its requests
    are resent to A, the run completes, and every input has exactly one record."""

    out = tmp_path / "results.jsonl"
    served_before = video_requests(served.grpc_url)
    with tritonserver(repository) as doomed:
        run = subprocess.Popen([DFGUARD, "score", str(uploads), "--url", served.grpc_url, "--url", doomed.grpc_url,
                                "--out", str(out), "-n", "4", "--num-frames", "8", "--retries", "8", "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while (not out.exists() or len(out.read_text().splitlines()) < 4) and time.monotonic() < deadline:
            time.sleep(0.05)
        answered_by_doomed = video_requests(doomed.grpc_url)
        os.killpg(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait()
    killed_at = len(read_jsonl(out))
    stdout, stderr = run.communicate(timeout=600)
    assert killed_at < 21, "the run ended before the kill"
    assert run.returncode == 1, stdout + stderr  # broken.mp4 is an error record; the rest scored
    records = read_jsonl(out)
    assert sorted(r["path"] for r in records) == sorted(str(p.resolve()) for p in uploads.iterdir())
    assert [r["status"] for r in records].count("ok") == 20
    assert answered_by_doomed > 0 and video_requests(served.grpc_url) - served_before > 0  # both took requests
    assert max(r["attempts"] for r in records if r["status"] == "ok") > 1  # what B held was resent


def test_shards_merged_equal_one_unsharded_run(served, uploads, tmp_path):
    whole = tmp_path / "whole.jsonl"
    assert score(str(uploads), "--url", served.grpc_url, "--out", str(whole), "--num-frames", "6").returncode == 1
    shards = []
    for index in range(3):
        shard = tmp_path / f"shard-{index}-of-3.jsonl"
        done = score(str(uploads), "--url", served.grpc_url, "--shard", f"{index}/3", "--out", str(shard),
                     "--num-frames", "6")
        assert done.returncode in (0, 1) and f"shard {index}/3:" in done.stdout, done.stdout + done.stderr
        shards.append(shard)
    merged = tmp_path / "merged.jsonl"
    done = score(str(uploads), "--merge", *map(str, shards), "--out", str(merged))
    assert done.returncode == 1 and "21 inputs, each with one record" in done.stdout, done.stdout + done.stderr

    def essentials(path: Path) -> dict[str, tuple]:
        return {r["path"]: (r["sha256"], r["status"], r["score"], r["verdict"], r["frame_index"],
                            len(r["faces"] or [])) for r in read_jsonl(path)}

    assert essentials(merged) == essentials(whole)
    refused = score(str(uploads), "--merge", str(shards[0]), str(shards[2]), "--out", str(tmp_path / "x.jsonl"))
    assert refused.returncode == 2 and "have no record" in refused.stderr, refused.stdout + refused.stderr


def test_a_dns_url_scores_over_round_robin(served, uploads):
    """A ``dns:///`` URL (what a headless Service gives) works end to end with the channel options it brings."""
    port = served.grpc_url.rsplit(":", 1)[1]
    with DeepfakeClient(Connection(f"dns:///127.0.0.1:{port}", timeout=120)) as client:
        result = client.score_video(uploads / "00.mp4", 6)
    assert result.verdict in ("real", "fake", "uncertain", "no_face") and len(result.frame_index) == 6
