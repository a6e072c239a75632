"""Face detection (BlazeFace from mediapipe's own weights) and the crops both papers use."""

from .blazeface import BlazeFace, load_blazeface
from .detect import KEYPOINT_NAMES, Detection, detect_faces, detect_faces_batch

__all__ = ["KEYPOINT_NAMES", "BlazeFace", "Detection", "detect_faces", "detect_faces_batch", "load_blazeface"]
