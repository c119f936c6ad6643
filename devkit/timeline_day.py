"""A day of batch results for two subjects, written THROUGH the batch handler against moto's server.

Used by the timeline integration test and the browser test. Real frames only (scikit-image's astronaut,
varied; a group of her faces on the coffee photo; coffee alone with no face) and one short video, put
under ``incoming/<subject>/<session>/`` with S3 events whose ``eventTime`` spreads them over the day.
The two subjects are ``subject-1`` and ``subject-10`` (one id a prefix of the other) and their objects
sit at different minutes of the hour (:10 and :40), so a leak from one into the other shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import cv2
import numpy as np

from devkit.aws import BUCKET, TABLE, create_drop_bucket_and_tables, event_for, face_video_bytes, put_object
from devkit.lambda_loader import lambda_context, load_handler
from devkit.sample_faces import astronaut_bgr, group_frame, no_face_images, one_face_frame

DAY = datetime(2026, 11, 25, tzinfo=UTC)
SUBJECT = "subject-1"
OTHER_SUBJECT = "subject-10"
SUBJECT_MINUTE = 10
OTHER_SUBJECT_MINUTE = 40
VIDEO_TIME = DAY + timedelta(hours=12, minutes=SUBJECT_MINUTE)


@dataclass(frozen=True)
class Uploaded:
    """One object put in the drop bucket and scored; ``created_at`` is its event time."""

    subject: str
    key: str
    created_at: datetime


def _jpeg(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buffer.tobytes()


# The astronaut's mouth in the 512x512 original (x1, y1, x2, y2), for the edited expressions below.
_MOUTH = (195, 130, 260, 175)


def _with_mouth(edit: str) -> np.ndarray:
    """The astronaut with her smile turned upside down (a frown: the classifier says negative) or
    stretched open (it says other), cropped like ``one_face_frame(480, 360)``; moods besides positive."""
    image = astronaut_bgr()
    x1, y1, x2, y2 = _MOUTH
    mouth = image[y1:y2, x1:x2]
    if edit == "frown":
        image[y1:y2, x1:x2] = cv2.rotate(mouth, cv2.ROTATE_180)
    else:  # "open": the middle rows of the lips stretched over the whole mouth box
        image[y1 + 8 : y2 - 3, x1 + 3 : x2 - 2] = cv2.resize(
            image[150:160, x1 + 3 : x2 - 2], (x2 - x1 - 5, y2 - y1 - 11)
        )
    crop_h = round(512 * 360 / 480)
    return cv2.resize(image[:crop_h], (480, 360), interpolation=cv2.INTER_AREA)


def _frames() -> list[np.ndarray]:
    """Real pictures to cycle through: one face (smiling, frowning, open-mouthed, gray), a group, no face."""
    face = one_face_frame(480, 360)
    gray = cv2.cvtColor(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return [
        face,
        _with_mouth("frown"),
        group_frame(640, 480).image,
        _with_mouth("open"),
        gray,
        cv2.resize(no_face_images()["coffee"], (480, 320), interpolation=cv2.INTER_AREA),
    ]


def write_day(tmp_dir: Path) -> list[Uploaded]:
    """Upload and score the day: 24 hourly pictures and a video for SUBJECT, 8 pictures and a corrupt
    file for OTHER_SUBJECT. Needs the moto environment set (``moto_environment``)."""
    s3 = boto3.client("s3")
    create_drop_bucket_and_tables(s3, boto3.client("dynamodb"))
    frames = [_jpeg(frame) for frame in _frames()]
    plan: list[tuple[str, str, bytes, datetime]] = []
    for hour in range(24):
        created = DAY + timedelta(hours=hour, minutes=SUBJECT_MINUTE)
        plan.append((SUBJECT, f"incoming/{SUBJECT}/ward a/{hour:02d}10.jpg", frames[hour % len(frames)], created))
    plan.append((SUBJECT, f"incoming/{SUBJECT}/ward a/noon clip.mp4", face_video_bytes(tmp_dir), VIDEO_TIME))
    for hour in range(0, 24, 3):
        created = DAY + timedelta(hours=hour, minutes=OTHER_SUBJECT_MINUTE)
        plan.append(
            (
                OTHER_SUBJECT,
                f"incoming/{OTHER_SUBJECT}/home/{hour:02d}40.jpg",
                frames[(hour + 2) % len(frames)],
                created,
            )
        )
    corrupt_time = DAY + timedelta(hours=22, minutes=OTHER_SUBJECT_MINUTE + 5)
    plan.append(
        (OTHER_SUBJECT, f"incoming/{OTHER_SUBJECT}/home/broken.png", b"\x89PNG\r\n\x1a\n" + bytes(64), corrupt_time)
    )

    handler = load_handler("BatchFunction")
    uploaded = []
    for subject, key, body, created in plan:
        entry = put_object(s3, key, body)
        entry["event_time"] = created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z"
        outcome = handler(event_for([entry]), lambda_context("BatchFunction"))["outcomes"][0]
        assert outcome["status"] in ("scored", "failed"), outcome
        uploaded.append(Uploaded(subject, key, created))
    return uploaded


def result_item(key: str) -> dict[str, Any]:
    """The RESULT item of an object, read straight from the table (the ground truth for the timeline)."""
    table = boto3.resource("dynamodb").Table(TABLE)
    page = table.query(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :model)",
        ExpressionAttributeValues={":pk": f"OBJECT#{BUCKET}/{key}", ":model": "MODEL#"},
    )
    (item,) = [item for item in page["Items"] if item["sk"].endswith("#RESULT")]
    return item


def faces_in(item: dict[str, Any]) -> int:
    """Faces the timeline should count for an object: an image's faces; a video's frames with a face."""
    if item["kind"] == "video":
        return int(item["frames_with_face"])
    return int(item.get("face_count") or 0)
