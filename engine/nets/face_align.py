"""Find the face in a photo, crop it the way FFHQ faces are cropped, and paste a result back.

FFHQ generators only draw faces aligned like their training set (eyes level, at a fixed
place and scale). The FFHQ recipe aligns from dlib's 68 landmarks, whose weights cannot be
fetched offline, so we follow the same geometry from OpenCV's Haar cascades, which ship
inside the opencv-python-headless wheel: the face box, and the two eyes when the eye
cascade finds them (for roll and scale); without eyes, typical eye positions within the
face box stand in. The crop is a (possibly rotated) square; pasting back applies the exact
inverse transform with a feathered edge, so the photo keeps its size and everything
outside the face.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image

from ..errors import UserError

log = logging.getLogger(__name__)

NO_FACE = "No face found in the image; nada works on portrait photos with one clear face."
MIN_FACE_PX = 40  # smaller faces carry too little detail to invert
SECOND_FACE_RATIO = 0.7  # another face at least this wide (relative) makes the photo ambiguous
DETECT_SIDE = 800  # detection runs on a copy no larger than this (speed; cascades are scale-free)
FEATHER = 0.08  # fraction of the crop side over which the pasted result fades out

# Eye geometry of a typical Haar face box (fractions of its width/height), used without eyes.
BOX_EYE_Y = 0.40
BOX_EYE_DISTANCE = 0.39
BOX_EYE_TO_MOUTH = 0.33


@cache
def _cascade(name: str):
    try:
        import cv2
    except ImportError as exc:  # an install problem, not the user's
        raise RuntimeError("nada's face detection needs OpenCV: "
                           "pip install 'opencv-python-headless<5'") from exc
    classifier = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if classifier.empty():
        raise RuntimeError(f"OpenCV has no Haar cascade {name}; install opencv-python-headless<5 "
                           "(OpenCV 5 dropped the bundled cascades)")
    return classifier


@dataclass(frozen=True)
class FaceCrop:
    """Where the aligned square came from: ``origin`` + u * ``x_axis`` + v * ``y_axis``, u, v in 0..1."""

    origin: tuple[float, float]
    x_axis: tuple[float, float]
    y_axis: tuple[float, float]
    box: tuple[int, int, int, int]  # detected face (x, y, w, h) in photo pixels
    eyes_found: bool

    @property
    def side(self) -> float:
        return float(np.hypot(*self.x_axis))

    def quad(self) -> tuple[float, ...]:
        """Corners UL, LL, LR, UR, as PIL's QUAD transform wants them."""
        o, x, y = np.array(self.origin), np.array(self.x_axis), np.array(self.y_axis)
        return tuple(float(v) for v in np.concatenate([o, o + y, o + x + y, o + x]))


def detect_face(photo: Image.Image) -> tuple[int, int, int, int]:
    """The one clear face in ``photo`` as (x, y, w, h), or ``UserError`` saying why not."""
    import cv2

    scale = min(1.0, DETECT_SIDE / max(photo.size))
    small = photo
    if scale < 1.0:
        small = photo.resize((max(1, round(photo.width * scale)), max(1, round(photo.height * scale))),
                             Image.Resampling.BILINEAR)
    gray = cv2.equalizeHist(np.asarray(small.convert("L")))
    min_side = max(12, int(MIN_FACE_PX * scale * 0.6))
    faces: list = []
    for name in ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml"):
        found = _cascade(name).detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                                minSize=(min_side, min_side))
        faces = [tuple(int(round(v / scale)) for v in f) for f in found]
        if faces:
            break
    if not faces:
        raise UserError(NO_FACE)
    faces.sort(key=lambda f: f[2] * f[3], reverse=True)
    x, y, w, h = faces[0]
    if len(faces) > 1 and faces[1][2] >= SECOND_FACE_RATIO * w and not _overlaps(faces[0], faces[1]):
        raise UserError(f"Found {len(faces)} faces; nada works on portrait photos with one clear "
                        "face. Crop the photo to the face you want restyled.")
    if w < MIN_FACE_PX:
        raise UserError(f"The face in the image is only {w} pixels wide; nada needs a face at least "
                        f"{MIN_FACE_PX} pixels wide. Send a closer or larger portrait.")
    return x, y, w, h


def _overlaps(a, b) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def _find_eyes(photo: Image.Image,
               box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Centres of the left and right eye inside the upper part of the face box, if both are found."""
    import cv2

    x, y, w, h = box
    roi = np.asarray(photo.crop((x, y, x + w, y + int(h * 0.6))).convert("L"))
    roi = cv2.equalizeHist(roi)
    min_eye = max(6, w // 10)
    for name in ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml"):
        eyes = _cascade(name).detectMultiScale(roi, scaleFactor=1.1, minNeighbors=4,
                                               minSize=(min_eye, min_eye))
        centres = [np.array([x + ex + ew / 2, y + ey + eh / 2]) for ex, ey, ew, eh in eyes]
        left = [c for c in centres if c[0] < x + w / 2]
        right = [c for c in centres if c[0] >= x + w / 2]
        if not left or not right:
            continue
        # The pair closest to the expected eye line, both eyes similarly high.
        expected_y = y + BOX_EYE_Y * h
        l, r = min(((l, r) for l in left for r in right),
                   key=lambda p: abs(p[0][1] - p[1][1]) + abs((p[0][1] + p[1][1]) / 2 - expected_y))
        distance = float(np.hypot(*(r - l)))
        if 0.25 * w <= distance <= 0.65 * w and abs(r[1] - l[1]) <= 0.5 * distance:
            return l, r
    return None


def face_crop(photo: Image.Image) -> FaceCrop:
    """The FFHQ-style square around the one face in ``photo`` (``UserError`` if there is none)."""
    box = detect_face(photo)
    eyes = _find_eyes(photo, box)
    return crop_from_eyes(*eyes, box=box) if eyes is not None else crop_from_box(box)


def crop_from_eyes(left: np.ndarray, right: np.ndarray, box: tuple[int, int, int, int]) -> FaceCrop:
    """Square from the eye centres; the eye line sets roll and scale. No mouth detector offline:
    the mouth is assumed perpendicular to the eye line, 0.85 eye distances below it."""
    left, right = np.asarray(left, float), np.asarray(right, float)
    eye_to_eye = right - left
    eye_to_mouth = np.array([-eye_to_eye[1], eye_to_eye[0]]) * (BOX_EYE_TO_MOUTH / BOX_EYE_DISTANCE)
    return _ffhq_square((left + right) / 2, eye_to_eye, eye_to_mouth, box, eyes_found=True)


def crop_from_box(box: tuple[int, int, int, int]) -> FaceCrop:
    """Square from the face box alone, with typical eye and mouth positions inside it."""
    x, y, w, h = box
    eye_avg = np.array([x + w / 2, y + BOX_EYE_Y * h])
    return _ffhq_square(eye_avg, np.array([BOX_EYE_DISTANCE * w, 0.0]),
                        np.array([0.0, BOX_EYE_TO_MOUTH * h]), box, eyes_found=False)


def _ffhq_square(eye_avg: np.ndarray, eye_to_eye: np.ndarray, eye_to_mouth: np.ndarray,
                 box: tuple[int, int, int, int], *, eyes_found: bool) -> FaceCrop:
    """FFHQ's recipe (Karras et al. 2019, dataset tool): centre just below the eyes, half-side
    max(2 x eye distance, 1.8 x eye-to-mouth), x axis along the eye line."""
    axis = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    axis = axis / np.hypot(*axis)
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    x_axis = axis * half
    y_axis = np.array([-x_axis[1], x_axis[0]])
    origin = eye_avg + eye_to_mouth * 0.1 - x_axis - y_axis
    return FaceCrop(_pair(origin), _pair(2 * x_axis), _pair(2 * y_axis),
                    tuple(int(v) for v in box), eyes_found)


def _pair(v: np.ndarray) -> tuple[float, float]:
    return float(v[0]), float(v[1])


def crop_aligned(photo: Image.Image, crop: FaceCrop, size: int) -> Image.Image:
    """Cut the crop square out at ``size`` x ``size``; parts outside the photo are mirrored in."""
    quad = np.array(crop.quad()).reshape(4, 2)
    image = photo
    shrink = int(np.floor(crop.side / size / 2))
    if shrink > 1:  # resample large photos in two steps so the result is not aliased
        image = photo.reduce(shrink)
        quad = quad / shrink
    pad_lo = np.maximum(0, np.ceil(-quad.min(axis=0)) + 2).astype(int)
    pad_hi = np.maximum(0, np.ceil(quad.max(axis=0) - np.array(image.size)) + 2).astype(int)
    if pad_lo.any() or pad_hi.any():
        pad = ((pad_lo[1], pad_hi[1]), (pad_lo[0], pad_hi[0]), (0, 0))
        image = Image.fromarray(np.pad(np.asarray(image.convert("RGB")), pad, mode="reflect"))
        quad = quad + pad_lo
    return image.transform((size, size), Image.Transform.QUAD, tuple(quad.flatten()),
                           resample=Image.Resampling.BICUBIC)


def paste_back(photo: Image.Image, result: Image.Image, crop: FaceCrop) -> Image.Image:
    """Put ``result`` (the restyled crop) back where the crop came from, fading out at its edges."""
    side = result.width
    o, xa, ya = np.array(crop.origin), np.array(crop.x_axis), np.array(crop.y_axis)
    # Photo point p = o + (u / side) * xa + (v / side) * ya; PIL wants result (u, v) from photo (X, Y).
    forward = np.stack([xa, ya], axis=1) / side
    inverse = np.linalg.inv(forward)
    offset = -inverse @ o
    data = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    warped = result.convert("RGB").transform(photo.size, Image.Transform.AFFINE, data,
                                             resample=Image.Resampling.BICUBIC)
    mask = Image.fromarray(_feather_mask(side))
    warped_mask = mask.transform(photo.size, Image.Transform.AFFINE, data,
                                 resample=Image.Resampling.BILINEAR)
    return Image.composite(warped, photo.convert("RGB"), warped_mask)


def _feather_mask(side: int) -> np.ndarray:
    """255 in the middle, falling smoothly to 0 over the outer ``FEATHER`` of the square."""
    ramp = max(1.0, FEATHER * side)
    coords = np.arange(side) + 0.5
    edge = np.minimum(coords, side - coords) / ramp
    one_d = np.clip(edge, 0, 1)
    one_d = one_d * one_d * (3 - 2 * one_d)  # smoothstep
    return (np.outer(one_d, one_d) * 255).astype(np.uint8)
