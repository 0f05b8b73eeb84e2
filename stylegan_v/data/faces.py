"""One stable face-centred square crop per video (FaceForensics), with OpenCV's bundled Haar face detector.

The box is the median of the largest detection over frames spread through the video, so the crop does
not jitter from frame to frame (the model should learn head motion, not camera shake).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stylegan_v.data.decode import BadVideo, Box, decode

DETECTIONS = 16  # frames sampled for detection
MIN_FACE_FRACTION = 0.08  # smallest face side considered, as a fraction of the shorter frame side


def _detector():  # type: ignore[no-untyped-def]
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(
            "dataset.crop=face needs OpenCV: pip install opencv-python-headless==4.10.0.84"
        ) from exc
    return cv2, cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))


def face_box(path: Path, margin: float) -> Box:
    """Square (left, top, side) around the median face, ``margin`` x the face size, clipped to the frame."""
    cv2, detector = _detector()
    images = list(decode(path, None))  # frames at full size; FaceForensics clips are short (~20 s)
    width, height = images[0].size
    picks = np.unique(np.linspace(0, len(images) - 1, min(DETECTIONS, len(images))).round().astype(int))
    min_side = int(MIN_FACE_FRACTION * min(width, height))
    boxes = []
    for i in picks:
        grey = cv2.cvtColor(np.asarray(images[i]), cv2.COLOR_RGB2GRAY)
        faces = detector.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        if len(faces):
            x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
            boxes.append((x + w / 2, y + h / 2, max(w, h)))
    if not boxes:
        raise BadVideo(f"no face detected in {len(picks)} sampled frames")
    cx, cy, size = np.median(np.array(boxes, dtype=np.float64), axis=0)
    side = int(min(round(size * margin), width, height))
    left = int(np.clip(round(cx - side / 2), 0, width - side))
    top = int(np.clip(round(cy - side / 2), 0, height - side))
    return left, top, side
