"""Face detection (BlazeFace from mediapipe's own weights) and the crops both papers use.

Nothing is imported here: ``dfguard.faces.detect`` needs OpenCV, ``dfguard.faces.blazeface`` torch, and a serving
step that imports one of them must not pay for the others.
"""
