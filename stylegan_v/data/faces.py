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


# ---------------------------------------------------------------- FaceForensics as the official preprocessing crops it

MASK_THRESHOLD = 5.0  # a mask column (row) is face where its mean darkness, sum over RGB of 255 - value, exceeds this

MaskBox = tuple[int, int, int, int]  # (left, right, top, bottom): first and last face column and row


def mask_box(mask: np.ndarray) -> MaskBox | None:
    """The face's extent in one FaceForensics mask frame ``[H, W, 3]`` uint8 (white outside the face); None when
    the frame shows no face."""
    darkness = (255 - mask).astype(np.float64).sum(axis=2)  # [H, W]
    cols = np.where(darkness.mean(axis=0) > MASK_THRESHOLD)[0]
    rows = np.where(darkness.mean(axis=1) > MASK_THRESHOLD)[0]
    if not len(cols) or not len(rows):
        return None
    return int(cols[0]), int(cols[-1]), int(rows[0]), int(rows[-1])


def union_box(boxes: list[MaskBox]) -> MaskBox:
    """The smallest box holding every box (one crop for a whole video)."""
    return (min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes))


def mask_crop(image: np.ndarray, box: MaskBox, resolution: int) -> np.ndarray | None:
    """The FaceForensics crop of the official preprocessing: the box (its last column and row excluded) grown
    on its shorter side to a square, half before and half (plus the odd pixel) after, then OpenCV's Lanczos-4
    resize to ``resolution``² (no antialiasing). The square is sliced as numpy slices: past the bottom or right
    edge it is clipped (and the resize stretches it); a start before the top or left edge counts from the
    other end, which leaves nothing to resize, and the frame is dropped (None), as the official script skips
    such frames."""
    import cv2  # OpenCV is only needed for FaceForensics

    left, right, top, bottom = box
    cols, rows = right - left, bottom - top
    if cols < rows:
        pad = rows - cols
        left, right = left - pad // 2, right + pad // 2 + pad % 2
    else:
        pad = cols - rows
        top, bottom = top - pad // 2, bottom + pad // 2 + pad % 2
    crop = image[top:bottom, left:right]
    if crop.size == 0:
        return None
    return cv2.resize(crop, (resolution, resolution), interpolation=cv2.INTER_LANCZOS4)
