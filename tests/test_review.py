"""dfguard review: the moderators' page. The app through Flask's test client, then the real thing: results from
the served ensemble, ``dfguard review`` on a free port, and Debian's chromium clicking a decision."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import DFGUARD

from dfguard.answer import Face, Track
from dfguard.client.results import Record, ResultsFile
from dfguard.review import Review, create_app, read_decisions, read_results

KEY = "k" * 24


def small_video(path: Path) -> Path:
    """Four frames of noise: a file to serve, not to score."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in np.random.default_rng(0).integers(0, 256, (4, 48, 64, 3), dtype=np.uint8):
            container.mux(stream.encode(__import__("av").VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def record(path: Path, score: float, verdict: str) -> Record:
    import hashlib

    faces = (Face(0, (4.0, 4.0, 30.0, 30.0), 0, score), Face(1, (5.0, 4.0, 31.0, 30.0), 0, score))
    return Record(str(path), hashlib.sha256(path.read_bytes()).hexdigest(), "video", "ok", score, verdict, 2,
                  [0, 1], [score, score], "deepfake_video", "1", 1, 0.5, None, faces, (Track(0, score, 2, 0, 1),))


@pytest.fixture
def site(tmp_path):
    """Three scored videos (two in the videos folder, one outside it), a malformed line between them, the app."""
    videos = tmp_path / "videos"
    videos.mkdir()
    inside = [small_video(videos / f"{name}.mp4") for name in ("low", "high")]
    outside = small_video(tmp_path / "elsewhere.mp4")
    results = ResultsFile(tmp_path / "results.jsonl")
    results.append(record(inside[0], 0.12, "real"))
    results.file.append('{"path": "torn"\n')
    results.append(record(inside[1], 0.93, "fake"))
    results.append(record(outside, 0.55, "uncertain"))
    review = Review(tmp_path / "results.jsonl", videos, tmp_path / "decisions.jsonl", KEY, who="tester")
    return create_app(review).test_client(), tmp_path


def test_every_request_needs_the_key_and_a_right_one_is_remembered(site):
    client, _ = site
    for answer in (client.get("/"), client.get("/?key=wrong"), client.get("/video/0/frames.png")):
        assert answer.status_code == 403 and b"wrong or missing review key" in answer.data
    assert client.get(f"/?key={KEY}").status_code == 200
    assert client.get("/video/0").status_code == 200  # the cookie set by the first good request


def test_the_list_is_by_p_fake_filtered_and_names_the_line_it_could_not_read(site):
    client, _ = site
    page = client.get(f"/?key={KEY}").get_data(as_text=True)
    assert page.index("high.mp4") < page.index("elsewhere.mp4") < page.index("low.mp4")
    assert "results.jsonl line 2: not a results record" in page
    fakes = client.get("/?verdict=fake").get_data(as_text=True)
    assert "high.mp4" in fakes and "low.mp4" not in fakes and "elsewhere.mp4" not in fakes
    assert "low.mp4" not in client.get("/?min=0.5").get_data(as_text=True)


def scored_as(folder: Path, name: str) -> dict[str, str]:
    """The form fields that name a video as it was scored: its path and content hash."""
    (found,) = [r for r in read_results(folder / "results.jsonl")[0] if r.path.endswith(name)]
    return {"path": found.path, "sha256": found.sha256}


def test_a_decision_is_one_appended_line_and_shows_on_reload(site):
    client, folder = site
    client.get(f"/?key={KEY}")
    high = scored_as(folder, "high.mp4")
    answer = client.post("/video/0/decide", data={"label": "fake", "note": "mouth warps", "who": "ana", **high})
    assert answer.status_code == 303
    client.post("/video/0/decide", data={"label": "real", "track": "0", **high})
    (video, track) = read_decisions(folder / "decisions.jsonl")
    assert (video.who, video.label, video.note, video.track, video.score) == ("ana", "fake", "mouth warps", None, 0.93)
    assert video.path.endswith("high.mp4") and len(video.sha256) == 64 and video.verdict == "fake"
    assert (track.who, track.label, track.track) == ("tester", "real", 0)
    page = client.get("/video/0").get_data(as_text=True)
    assert "decided: <b>fake</b> by ana" in page
    assert "fake" in client.get("/").get_data(as_text=True).split("high.mp4")[1].split("</tr>")[0]
    for bad in ({"label": "maybe"}, {"label": "fake", "track": "7"}):
        refused = client.post("/video/0/decide", data=bad | high)
        assert refused.status_code == 400
    gone = client.post("/video/0/decide", data={"label": "fake", "path": high["path"], "sha256": "0" * 64})
    assert gone.status_code == 409 and b"reload the page" in gone.data  # not the video scored: nothing decided
    assert len((folder / "decisions.jsonl").read_text().splitlines()) == 2  # nothing written for them


def test_a_file_outside_the_videos_folder_is_never_read_and_the_page_goes_on(site):
    client, _ = site
    client.get(f"/?key={KEY}")
    outside = client.get("/video/1")  # elsewhere.mp4, the second by P(fake)
    assert outside.status_code == 200 and "outside the videos folder" in outside.get_data(as_text=True)
    picture = client.get("/video/1/frames.png")
    assert picture.status_code == 403 and b"outside the videos folder" in picture.data
    inside = client.get("/video/0/frames.png")
    assert inside.status_code == 200 and inside.data.startswith(b"\x89PNG")
    assert client.get("/video/9").status_code == 404


def test_a_file_changed_since_it_was_scored_is_not_shown(site):
    client, folder = site
    with (folder / "videos" / "high.mp4").open("ab") as changed:
        changed.write(b"\0")
    client.get(f"/?key={KEY}")
    answer = client.get("/video/0/timeline.png")
    assert answer.status_code == 403 and b"changed since it was scored" in answer.data


def browser(downloads: Path):
    """Headless Debian chromium through its chromedriver (skipped where neither is installed, failed in CI)."""
    import os

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        message = "no chromium/chromedriver: apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600",
                     f"--user-data-dir={downloads / 'profile'}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


def test_a_moderator_decides_in_a_real_browser_on_served_results(served, two_people, tmp_path):
    """Both videos of two people scored by the served ensemble; the page in chromium lists the forged one first;
    its view shows the boxed frames, the timeline and the frequency view; a click on "fake" leaves one line in the
    decisions file and the page says so; with the real one marked real, ``dfguard calibrate --labels`` refits from
    the two decisions and the served scores; a wrong key gets the error page and the server keeps serving."""
    from selenium.webdriver.common.by import By

    results = tmp_path / "results.jsonl"
    scored = subprocess.run([DFGUARD, "score", str(two_people["forged"].path.parent), "--url", served.grpc_url,
                             "--out", str(results), "--num-frames", "8", "--no-progress"], capture_output=True,
                            text=True, timeout=300)
    assert scored.returncode == 0, scored.stderr
    (tmp_path / "key").write_text(KEY)
    server = subprocess.Popen([DFGUARD, "review", str(results), "--videos", str(two_people["forged"].path.parent),
                               "--port", "0", "--key-file", str(tmp_path / "key")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    driver = None
    try:
        address = server.stdout.readline().strip().split()[-1]
        assert address.startswith("http://127.0.0.1:") and address.endswith(f"?key={KEY}")
        base = address.split("?")[0].rstrip("/")
        driver = browser(tmp_path)
        driver.get(address)
        rows = driver.find_elements(By.CSS_SELECTOR, "#videos tr")[1:]
        assert [row.find_element(By.TAG_NAME, "a").text for row in rows] == ["forged.mp4", "real.mp4"]
        driver.save_screenshot(str(tmp_path / "list.png"))
        rows[0].find_element(By.TAG_NAME, "a").click()
        for picture in driver.find_elements(By.TAG_NAME, "img"):  # every picture drawn and loaded
            assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", picture) > 300
        driver.save_screenshot(str(tmp_path / "video.png"))
        driver.find_element(By.ID, "mark-fake").click()
        assert "decided: fake" in driver.find_element(By.ID, "decision").text
        (decision,) = [json.loads(line) for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
        assert decision["label"] == "fake" and decision["path"].endswith("forged.mp4") and decision["track"] is None
        driver.get(address)
        driver.find_elements(By.CSS_SELECTOR, "#videos a")[1].click()
        driver.find_element(By.ID, "mark-real").click()
        calibrated = subprocess.run([DFGUARD, "calibrate", "--labels", str(tmp_path / "decisions.jsonl"),
                                     "--results", str(results), "--spec", str(served.repository), "--out",
                                     str(tmp_path / "recalibrated")], capture_output=True, text=True, timeout=120)
        assert calibrated.returncode == 0, calibrated.stderr
        assert "1 real and 1 fake videos decided by moderators" in calibrated.stdout
        assert "The served `fake` threshold" in calibrated.stdout and "0 of 1 real videos flagged" in calibrated.stdout
        assert (tmp_path / "recalibrated" / "calibration.json").is_file()
        driver.delete_all_cookies()
        driver.get(f"{base}/?key=wrong")
        assert "wrong or missing review key" in driver.find_element(By.TAG_NAME, "body").text
        driver.get(address)
        assert "forged.mp4" in driver.page_source  # still serving
        for name in ("list.png", "video.png"):
            assert (tmp_path / name).stat().st_size > 20_000
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=30)


def test_decisions_refit_the_calibration_through_the_served_one_without_rescoring(tmp_path):
    """60 served videos whose P(fake) came through a calibration (slope 2, intercept -1); moderators decided 50
    (40 on the video, 10 through a track, some unsure). The refit equals Platt on the raw scores of the decided
    videos (the served calibration undone), the report gives the served threshold's false-positive rate on them,
    and the file is one ``dfguard export --calibration`` reads."""
    from dfguard.calibration import Calibration, fit_platt
    from dfguard.inference.spec import read_calibrated
    from dfguard.review import calibrate_from_decisions

    rng = np.random.default_rng(0)
    truth = rng.random(60) < 0.4
    raw = np.clip(np.where(truth, rng.normal(0.7, 0.15, 60), rng.normal(0.3, 0.15, 60)), 0.01, 0.99)
    served_calibration = Calibration(2.0, -1.0)
    served = served_calibration.apply(raw)
    results = ResultsFile(tmp_path / "results.jsonl")
    review = Review(tmp_path / "results.jsonl", None, tmp_path / "decisions.jsonl", KEY)
    for k in range(60):
        scored = Record(str(tmp_path / f"v{k}.mp4"), f"{k:064x}", "video", "ok", float(served[k]), "real", 1, [0],
                        [0.0], "deepfake_video", "1", 1, 0.1, None, (Face(0, (0, 0, 9, 9), 0, float(served[k])),),
                        (Track(0, float(served[k]), 1, 0, 0),))
        results.append(scored)
        label = "fake" if truth[k] else "real"
        if k < 40:
            review.decide(scored, None, "unsure", "", "ana")
            review.decide(scored, None, label, "", "ana")  # the last decision counts
        elif k < 50:
            review.decide(scored, 0, label, "", "bo")
        elif k < 55:
            review.decide(scored, None, "unsure", "", "bo")
    report = calibrate_from_decisions(tmp_path / "decisions.jsonl", tmp_path / "results.jsonl", served_calibration,
                                      0.6, tmp_path / "out")
    decided = slice(0, 50)
    expected = fit_platt(raw[decided], truth[decided].astype(int))
    fitted = read_calibrated(tmp_path / "out" / "calibration.json")
    assert fitted.calibration.slope == pytest.approx(expected.slope, rel=1e-6)
    assert fitted.calibration.intercept == pytest.approx(expected.intercept, abs=1e-6)
    reals = ~truth[decided]
    flagged = int((served[decided][reals] >= 0.6).sum())
    assert f"{flagged} of {int(reals.sum())} real videos flagged" in report.splitlines()[2]
    assert "of 50 decided" not in report and "0 decided videos without a score" in report

