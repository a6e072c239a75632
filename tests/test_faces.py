"""dfguard.faces: BlazeFace against mediapipe itself, the crops, bad input, the weights cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import mediapipe_faces
from photos import astronaut, grace_hopper, no_face_photos
from PIL import Image

from dfguard.faces.blazeface import load_blazeface, state_dict_from_tflite
from dfguard.faces.crops import crop_faces, crop_frames, extract_faces, flip_horizontal
from dfguard.faces.detect import (
    Detection,
    detect_whole_image,
    detect_whole_images,
    detections_from_outputs,
    detector_input,
    run_detector,
)
from dfguard.faces.search import find_faces
from dfguard.faces.settings import CropConfig, DetectorConfig, TrackConfig
from dfguard.faces.weights import DETECTORS, SHORT_RANGE, tflite_path


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    return float(inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter))


def variants(image: np.ndarray) -> dict[str, np.ndarray]:
    """The photo as given, scaled, padded (portrait and landscape), rotated by 90° and mirrored."""
    height, width = image.shape[:2]
    return {
        "original": image,
        "scaled-down": np.asarray(Image.fromarray(image).resize((width // 2, height // 2))),
        "scaled-up": np.asarray(Image.fromarray(image).resize((width * 2, height * 2))),
        "padded-landscape": np.pad(image, ((30, 30), (150, 60), (0, 0))),
        "padded-portrait": np.pad(image, ((120, 80), (20, 0), (0, 0))),
        "rotated-90": np.ascontiguousarray(np.rot90(image)),
        "mirrored": np.ascontiguousarray(image[:, ::-1]),
    }


CASES = [(f"{photo}-{name}", image) for photo, load in (("grace_hopper", grace_hopper), ("astronaut", astronaut))
         for name, image in variants(load()).items()]


@pytest.mark.parametrize("kind", DETECTORS.values(), ids=DETECTORS)
@pytest.mark.parametrize(("name", "image"), CASES, ids=[name for name, _ in CASES])
def test_detections_match_mediapipe(name, image, kind):
    ours, theirs = detect_whole_image(image, kind=kind), mediapipe_faces(image, kind)
    assert len(ours) == len(theirs), name
    # every case has a face for short range; full range (mediapipe's as much as ours) misses the rotated portrait
    assert theirs or (kind != SHORT_RANGE and name == "grace_hopper-rotated-90"), name
    for mine, (box, points, score) in zip(ours, theirs, strict=True):
        face_width = box[2] - box[0]
        assert iou(np.array(mine.box), box) >= 0.9
        assert np.abs(mine.keypoints - points).max() <= 0.03 * face_width
        assert mine.score == pytest.approx(score, abs=0.01)


def test_keypoints_are_the_persons_and_swap_under_a_mirror():
    image = grace_hopper()
    (face,) = detect_whole_image(image)
    (mirrored,) = detect_whole_image(np.ascontiguousarray(image[:, ::-1]))
    width = image.shape[1]
    assert face.keypoints[0, 0] < face.keypoints[1, 0]  # the person's right eye is on the image's left
    assert face.keypoints[4, 0] < face.keypoints[2, 0] < face.keypoints[5, 0]  # ears either side of the nose
    swapped = mirrored.keypoints[[1, 0, 2, 3, 5, 4]]
    # BlazeFace itself is only roughly mirror-symmetric (its mouth point moves ~2.5 % of the face width)
    np.testing.assert_allclose(width - swapped[:, 0], face.keypoints[:, 0], atol=0.05 * (face.box[2] - face.box[0]))


@pytest.mark.parametrize("name", ["flat", "coffee", "rocket"])
def test_no_face_gives_an_empty_list_and_well_formed_empty_crops(name):
    image = {"flat": np.full((240, 320, 3), (90, 140, 200), np.uint8), **no_face_photos()}[name]
    assert detect_whole_image(image) == []
    assert mediapipe_faces(image) == []
    crops = extract_faces([image])
    assert crops.found.tolist() == [False]
    assert crops.faces.shape == (1, 3, 256, 256) and crops.faces.dtype == np.uint8 and not crops.faces.any()
    assert crops.parts.shape == (1, 4, 3, 64, 64) and not crops.parts.any()
    assert np.isnan(crops.keypoints).all() and np.isnan(crops.boxes).all()


@pytest.mark.parametrize("kind", DETECTORS.values(), ids=DETECTORS)
def test_noise_is_judged_exactly_as_mediapipe_judges_it(rng, kind):
    # BlazeFace at mediapipe's threshold (0.5) sees a face in ~15 % of uniform-noise frames (9 of 60 seeds),
    # mediapipe included: what we promise is the same answer, not an empty one.
    for _ in range(5):
        image = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
        ours, theirs = detect_whole_image(image, kind=kind), mediapipe_faces(image, kind)
        assert len(ours) == len(theirs)
        for mine, (box, _, score) in zip(ours, theirs, strict=True):
            assert iou(np.array(mine.box), box) > 0.99 and mine.score == pytest.approx(score, abs=1e-3)


def test_batch_equals_one_at_a_time(rng):
    images = [grace_hopper(), astronaut(), rng.integers(0, 256, (100, 300, 3), dtype=np.uint8),
              np.ascontiguousarray(np.rot90(astronaut()))]
    batched = detect_whole_images(images)
    for image, together in zip(images, batched, strict=True):
        alone = detect_whole_image(image)
        assert len(alone) == len(together)
        for a, b in zip(alone, together, strict=True):
            np.testing.assert_allclose(a.box, b.box, atol=1e-3)
            np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-3)


def test_gray_and_rgba_are_handled_like_rgb():
    rgb = grace_hopper()
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    (from_gray,) = detect_whole_image(gray)
    (from_gray_rgb,) = detect_whole_image(np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_allclose(from_gray.box, from_gray_rgb.box)
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 77, np.uint8)], axis=2)
    (from_rgba,), (from_rgb,) = detect_whole_image(rgba), detect_whole_image(rgb)
    np.testing.assert_allclose(from_rgba.box, from_rgb.box)


@pytest.mark.parametrize(("image", "error", "message"), [
    (np.zeros((64, 64, 3), np.float32), TypeError, "uint8"),
    (np.zeros((64, 64, 2), np.uint8), ValueError, r"\[H, W, 3\]"),
    (np.zeros((12, 400, 3), np.uint8), ValueError, "too small"),
    (np.zeros((16, 16385, 3), np.uint8), ValueError, "too large"),
    ([[0, 0, 0]], TypeError, "numpy.ndarray"),
])
def test_bad_images_get_a_clear_error(image, error, message):
    with pytest.raises(error, match=message):
        detect_whole_image(image)


# --- crops -----------------------------------------------------------------------------------------------

def test_crops_are_centred_on_the_face_with_parts_on_the_keypoints():
    image = astronaut()
    crops = extract_faces([image])
    (face,) = detect_whole_image(image)
    assert crops.found.tolist() == [True]
    x0, y0, x1, y1 = crops.boxes[0]
    assert x1 - x0 == pytest.approx(y1 - y0) == pytest.approx(1.3 * max(face.box[2] - face.box[0],
                                                                          face.box[3] - face.box[1]), rel=1e-4)
    np.testing.assert_allclose([(x0 + x1) / 2, (y0 + y1) / 2],
                               [(face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2], atol=0.5)
    # keypoints in crop pixels land inside the crop, eyes above nose above mouth
    points = crops.keypoints[0]
    assert ((points >= 0) & (points < 256)).all()
    assert points[0, 1] < points[2, 1] < points[3, 1] and points[1, 1] < points[2, 1]
    # the face crop is the frame's pixels: compare with a direct resize of the same square
    direct = np.asarray(Image.fromarray(image).crop(tuple(np.round(crops.boxes[0]).astype(int)))
                        .resize((256, 256), Image.BILINEAR)).transpose(2, 0, 1).astype(float)
    assert np.abs(crops.faces[0].astype(float) - direct).mean() < 6


def test_face_square_is_moved_inside_or_padded_at_the_border():
    image = grace_hopper()
    shifted = np.ascontiguousarray(image[:, 180:])  # the face now touches the left border
    crops = extract_faces([shifted])
    assert crops.found[0] and crops.boxes[0][0] == 0.0  # moved inside, not padded
    small = np.ascontiguousarray(image[150:340, 170:360])  # the face fills the frame: the square cannot fit
    crops = extract_faces([small])
    assert crops.found[0]
    assert crops.boxes[0][0] < 0 and (crops.faces[0][:, :, :3] == 0).all()  # black padding on the left


def test_pytorch_and_the_default_onnx_runtime_engine_agree():
    batch = detector_input([grace_hopper(), astronaut()])
    for ours, reference in zip(run_detector(batch), run_detector(batch, load_blazeface()), strict=True):
        assert np.abs(ours - reference).max() < 1e-4


def test_crops_of_every_face_equal_the_largest_face_crops_where_both_cut_the_same_face():
    frames = [grace_hopper(), astronaut()]
    found = find_faces(frames, DetectorConfig(name=SHORT_RANGE.name), TrackConfig(), run_detector, batch=8)
    every, largest = crop_faces(frames, found), crop_frames(frames, [[d] for d in found.detections])
    assert len(found) == 2 and found.frame.tolist() == [0, 1]
    for field in ("faces", "parts", "keypoints", "boxes"):
        np.testing.assert_array_equal(getattr(every, field), getattr(largest, field))
    padded = crop_faces(frames, found.largest_per_frame(), rows=4)
    assert padded.found.tolist() == [True, True, False, False] and not padded.faces[2:].any()


def test_flip_horizontal_mirrors_and_swaps_and_is_its_own_inverse():
    crops = extract_faces([astronaut(), grace_hopper()])
    flipped = flip_horizontal(crops)
    np.testing.assert_array_equal(flipped.faces, crops.faces[..., ::-1])
    np.testing.assert_array_equal(flipped.parts[:, 0], crops.parts[:, 1, ..., ::-1])  # right eye <- left eye
    # as on a mirrored frame: the person's right eye (now the former left eye) is again on the image's left
    assert (flipped.keypoints[:, 0, 0] < flipped.keypoints[:, 1, 0]).all()
    np.testing.assert_allclose(flipped.keypoints[:, 0, 0], 256 - crops.keypoints[:, 1, 0], atol=1e-4)
    twice = flip_horizontal(flipped)
    np.testing.assert_array_equal(twice.faces, crops.faces)
    np.testing.assert_allclose(twice.keypoints, crops.keypoints, atol=1e-4)


def test_crop_config_rejects_bad_geometry():
    with pytest.raises(ValueError, match="multiple of 8"):
        CropConfig(size=250)
    with pytest.raises(ValueError, match="margin"):
        CropConfig(margin=0.5)


# --- weights ----------------------------------------------------------------------------------------------

def test_weights_are_converted_once_and_cached_by_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("DFGUARD_CACHE", str(tmp_path))
    first = load_blazeface()
    (cached,) = tmp_path.glob("face_detection_short_range-*.pt")
    stamp = cached.stat().st_mtime_ns
    second = load_blazeface()
    assert cached.stat().st_mtime_ns == stamp  # read back, not converted again
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    reference = state_dict_from_tflite(tflite_path())
    assert torch.equal(first.state_dict()["stem.weight"], reference["stem.weight"])


def test_a_file_that_is_not_tflite_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DFGUARD_CACHE", str(tmp_path / "cache"))
    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a TensorFlow Lite model"):
        load_blazeface(bogus)


def test_detection_is_the_contract_dataclass():
    (face,) = detect_whole_image(grace_hopper())
    assert isinstance(face, Detection) and len(face.box) == 4 and face.keypoints.shape == (6, 2)
    assert 0.0 <= face.score <= 1.0


@pytest.mark.parametrize("photo", [grace_hopper, astronaut])
def test_network_decoding_and_nms_equal_mediapipe_on_the_same_input(photo):
    from dfguard.faces.detect import letterbox

    canvas = letterbox(np.ascontiguousarray(np.rot90(photo())))  # 128×128: mediapipe's own letterbox is identity
    (ours,), (theirs,) = detect_whole_image(canvas), mediapipe_faces(canvas)
    assert iou(np.array(ours.box), theirs[0]) > 0.999
    np.testing.assert_allclose(ours.keypoints, theirs[1], atol=0.2)  # ONNX Runtime vs TFLite: ~1e-4 of 128 px
    assert ours.score == pytest.approx(theirs[2], abs=1e-4)


# --- ONNX -----------------------------------------------------------------------------------------------

@pytest.mark.slow  # a fresh torch.export of the network (seconds)
def test_onnx_export_equals_pytorch_on_real_frames(tmp_path):
    import onnxruntime

    from dfguard.faces.export import export_detector

    path = export_detector(tmp_path / "face_detector.onnx", detector=load_blazeface())  # exported afresh
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["DETECTOR_INPUT"]
    assert [o.name for o in session.get_outputs()] == ["REGRESSORS", "SCORES"]
    frames = [grace_hopper(), astronaut(), np.ascontiguousarray(np.rot90(astronaut()))]
    batch = detector_input(frames)
    regressors, scores = session.run(None, {"DETECTOR_INPUT": batch})
    expected_regressors, expected_scores = run_detector(batch, load_blazeface())  # PyTorch eager
    assert np.abs(regressors - expected_regressors).max() < 1e-4
    assert np.abs(scores - expected_scores).max() < 1e-4
    # the faces found from ONNX outputs are the faces found from PyTorch outputs
    sizes = [frame.shape[:2] for frame in frames]
    from_onnx = [len(found) for found in detections_from_outputs(regressors, scores, sizes)]
    assert from_onnx == [len(f) for f in detections_from_outputs(expected_regressors, expected_scores, sizes)]


@pytest.mark.slow  # exports the network once, into an empty cache
def test_an_export_of_mediapipes_weights_fills_the_cache_once_then_copies_and_checks_it(tmp_path, monkeypatch):
    import onnxruntime

    from dfguard.faces.export import export_detector
    from dfguard.faces.weights import cached_graph

    monkeypatch.setenv("DFGUARD_CACHE", str(tmp_path / "cache"))
    first = export_detector(tmp_path / "a" / "face_detector.onnx")
    (cached,) = (tmp_path / "cache").glob("*.onnx")  # the graph, and no partial file left beside it
    assert cached == cached_graph(SHORT_RANGE) and first.read_bytes() == cached.read_bytes()
    written = cached.stat().st_mtime_ns
    second = export_detector(tmp_path / "b" / "face_detector.onnx")
    assert cached.stat().st_mtime_ns == written and second.read_bytes() == cached.read_bytes()
    batch = detector_input([grace_hopper(), astronaut()])
    outputs = onnxruntime.InferenceSession(str(second), providers=["CPUExecutionProvider"]).run(None, {
        "DETECTOR_INPUT": batch})
    for ours, eager in zip(outputs, run_detector(batch, load_blazeface()), strict=True):
        assert np.abs(ours - eager).max() < 1e-4


def test_onnx_export_fails_loudly_on_mismatch(tmp_path):
    from dfguard.faces.export import export_detector
    from dfguard.onnx_export import ExportParityError

    with pytest.raises(ExportParityError, match="differs from PyTorch"):
        export_detector(tmp_path / "strict.onnx", tolerance=0.0 - 1.0)
    assert not (tmp_path / "strict.onnx").exists()
