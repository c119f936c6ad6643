"""A Python client generated from the demo server's ``/openapi.json`` with openapi-python-client (pinned), used
the way a client team uses it: upload an image three ways, read a timeline, page through results.

``make serve-demo``'s command (``python -m devkit.serve_demo``: moto's server, a day of batch results for
``subject-1`` and ``subject-10``, the API with the real models) runs in a subprocess; the client is generated
into a temporary folder with README's command and configuration (``docs/clients/openapi-python-client.yaml``)
and imported from there. The generator must not warn: a warning means a part of the API it could not express.
"""

from __future__ import annotations

import base64
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from devkit.aws import face_jpeg
from devkit.timeline_day import DAY, SUBJECT, VIDEO_TIME
from meaa_api.schemas import EXAMPLE_JPEG_BASE64
from tests.support.servers import REPO_ROOT, free_port, served

STARTUP_WAIT_S = 600  # scoring the demo day and loading the models on a slow, shared machine: a readiness wait
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
CONFIG = REPO_ROOT / "docs" / "clients" / "openapi-python-client.yaml"
DAY_START, DAY_END = DAY, datetime(2026, 11, 26, tzinfo=UTC)
VIDEO_KEY = f"incoming/{SUBJECT}/ward a/noon clip.mp4"
SUBJECT_OBJECTS = 25  # devkit.timeline_day: 24 hourly pictures and a video


@pytest.fixture(scope="module")
def demo_server() -> Iterator[str]:
    port = free_port()
    with served([sys.executable, "-m", "devkit.serve_demo", "--port", str(port)], port, wait_s=STARTUP_WAIT_S) as url:
        yield url


@pytest.fixture(scope="module")
def meaa_client(demo_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated package, from README's command (ruff, the generator's formatter, from this venv)."""
    out = tmp_path_factory.mktemp("generated") / "meaa_client"
    command = [str(GENERATOR), "generate", "--url", f"{demo_server}/openapi.json", "--config", str(CONFIG)]
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    generated = subprocess.run(
        [*command, "--meta", "none", "--output-path", str(out)], capture_output=True, text=True, env=environment
    )
    report = generated.stdout + generated.stderr
    assert generated.returncode == 0, report
    assert "warning" not in report.lower(), report
    sys.path.insert(0, str(out.parent))
    try:
        yield importlib.import_module("meaa_client")
    finally:
        sys.path.remove(str(out.parent))
        for name in [name for name in sys.modules if name == "meaa_client" or name.startswith("meaa_client.")]:
            del sys.modules[name]


def _api(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"meaa_client.api.{name}")


def test_the_generated_client_uploads_an_image_three_ways(meaa_client: ModuleType, demo_server: str) -> None:
    from meaa_client.models import AnalysisResponse, UploadImageFilesBody, UploadImageJsonUploadJson
    from meaa_client.types import File

    upload = _api(meaa_client, "images.upload_image")
    with meaa_client.Client(base_url=demo_server, timeout=120, raise_on_unexpected_status=True) as client:
        raw = upload.sync(client=client, body=File(payload=BytesIO(face_jpeg()), file_name="face.jpg"))
        assert isinstance(raw, AnalysisResponse), raw
        assert raw.face_count == 1 and raw.faces[0].mood in ("positive", "negative", "neutral", "other")
        multipart = upload.sync(
            client=client, body=UploadImageFilesBody(file=File(payload=BytesIO(face_jpeg()), file_name="face.jpg"))
        )
        assert isinstance(multipart, AnalysisResponse) and multipart.face_count == 1, multipart
        # The document's own JSON example: a real 8x8 JPEG without a face.
        example = upload.sync(client=client, body=UploadImageJsonUploadJson(image_base64=EXAMPLE_JPEG_BASE64))
        assert isinstance(example, AnalysisResponse) and (example.width, example.height, example.faces) == (8, 8, [])
        refused = upload.sync(
            client=client, body=UploadImageJsonUploadJson(image_base64=base64.b64encode(b"%PDF-1.4\n").decode())
        )
        assert refused.error.code == "unsupported_format", refused


def test_the_generated_client_pages_through_a_timeline(meaa_client: ModuleType, demo_server: str) -> None:
    from meaa_client.models import SubjectMoods

    moods = _api(meaa_client, "results.get_subject_moods")
    query = {"subject": SUBJECT, "from_": DAY_START, "to": DAY_END, "bucket": "1h"}
    with meaa_client.Client(base_url=demo_server, timeout=60, raise_on_unexpected_status=True) as client:
        whole = moods.sync(client=client, limit=1000, **query)
        assert isinstance(whole, SubjectMoods) and not whole.next_cursor, whole
        pages, cursor = [], None
        while True:
            page = moods.sync(client=client, limit=4, **query, **({"cursor": cursor} if cursor else {}))
            assert isinstance(page, SubjectMoods), page
            pages.append(page)
            cursor = page.next_cursor
            if not cursor:
                break
        assert len(pages) >= SUBJECT_OBJECTS // 4
        assert sum(bucket.objects for page in pages for bucket in page.buckets) == SUBJECT_OBJECTS
        assert sum(bucket.objects for bucket in whole.buckets) == SUBJECT_OBJECTS
        assert whole.from_ == "2026-11-25T00:00:00.000Z" and whole.bucket_seconds == 3600
        refused = moods.sync(client=client, limit=0, **query)  # the client sends what it is given
        assert refused.error.code == "invalid_query", refused


def test_the_generated_client_pages_through_an_objects_items(meaa_client: ModuleType, demo_server: str) -> None:
    from meaa_client.models import ObjectItems

    results = _api(meaa_client, "results.get_object_results")
    with meaa_client.Client(base_url=demo_server, timeout=60, raise_on_unexpected_status=True) as client:
        whole = results.sync(VIDEO_KEY, client=client, limit=1000)  # the key's '/' and ' ' travel encoded
        assert isinstance(whole, ObjectItems) and whole.key == VIDEO_KEY and not whole.next_cursor, whole
        items, cursor = [], None
        while True:
            page = results.sync(VIDEO_KEY, client=client, limit=3, **({"cursor": cursor} if cursor else {}))
            items += [item.to_dict() for item in page.items]
            cursor = page.next_cursor
            if not cursor:
                break
        assert len(items) == len(whole.items) > 3  # the video's RESULT item and its frames
        assert items == [item.to_dict() for item in whole.items]
        kinds = {item["kind"] for item in items if "kind" in item}
        assert "video" in kinds, kinds
        assert VIDEO_TIME.isoformat()[:13] in str(items[0])  # the item of the noon clip
