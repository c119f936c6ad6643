"""What the OpenAPI document states and what the server checks are the same rules.

Each pattern the document publishes is compared with the check the server runs (over the edge cases and a
sweep of generated values); the request examples are sent through the real parsers; the document behind the
authorizer marks exactly the routes the template puts behind it; a 405 names every method of its path.
schemathesis's run over the whole document is tests/integration/test_api_contract.py.
"""

from __future__ import annotations

import base64
import re
import string
from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
from fastapi.testclient import TestClient

from devkit.lambda_loader import load_template
from meaa.config import Settings
from meaa.decoding import decode_image
from meaa.errors import InvalidCursor, InvalidQuery, ObjectNotFound, UnsupportedFormat
from meaa.object_keys import FILE_NAME_PATTERN, is_valid_subject, safe_file_name
from meaa_api import query, upload_parsing
from meaa_api.app import create_app
from meaa_api.auth import BEARER_SCHEME, PUBLIC_OPERATIONS
from meaa_api.schemas import EXAMPLE_JPEG_BASE64, ID_PATTERN

JWT = {"MEAA_AUTH_MODE": "jwt", "MEAA_TABLE_NAME": "results", "MEAA_DROP_BUCKET": "drop"}


def _document(**environment: str) -> dict:
    return create_app(Settings.from_env(environment)).openapi()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-25T08:00:00Z", datetime(2026, 11, 25, 8, tzinfo=UTC)),
        ("2026-11-25t08:00:00z", datetime(2026, 11, 25, 8, tzinfo=UTC)),  # RFC 3339 allows lower case
        ("2026-11-25T09:30:00+01:30", datetime(2026, 11, 25, 8, tzinfo=UTC)),
        ("2026-11-25T09:30:00 01:30", datetime(2026, 11, 25, 8, tzinfo=UTC)),  # an unencoded "+" in a URL
        ("2026-11-25T08:00:00.1234567891Z", datetime(2026, 11, 25, 8, 0, 0, 123456, tzinfo=UTC)),
        ("2026-12-31T23:59:60Z", datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),  # a leap second
        ("2026-11-25", datetime(2026, 11, 25, tzinfo=UTC)),
    ],
)
def test_times_are_rfc_3339_date_times_or_dates(text: str, expected: datetime) -> None:
    assert query.parse_time(text, "from") == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-11-25T08:00:00",  # no offset: whose local time?
        "2026-11-25T08:00Z",
        "2026-11-25T08Z",
        "20261125T080000Z",  # ISO 8601's basic format
        "2026-W48-3",  # a week date
        "2026-11-25T08:00:00,5Z",
        "2026-11-25T08:00:00.Z",
        "2026-11-25T08:00:00+24:00",
        "2026-02-30",
        "0000-01-01T00:00:00Z",  # RFC 3339's year 0 is outside years 1..9999
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "2026-11-25T08:00:00Z\n",
        "٢٠٢٦-١١-٢٥",  # digits of another script
    ],
)
def test_other_times_are_refused(text: str) -> None:
    with pytest.raises(InvalidQuery):
        query.parse_time(text, "from")


def test_an_empty_from_to_or_cursor_is_refused_not_ignored() -> None:
    for start, end in (("", None), (None, "")):
        with pytest.raises(InvalidQuery):
            query.parse_time_range(start, end, "1h")
    with pytest.raises(InvalidCursor):
        query.timeline_start_key("", "s-1", query.parse_time_range("2026-11-25", "2026-11-26", "1h"))


def test_the_bucket_pattern_is_the_size_rule() -> None:
    """Every <n><unit> up to 99999: the document's pattern admits exactly the sizes from 1 minute to 1 day."""
    units = {"m": 1, "h": 60, "d": 1440}
    for number, unit in product(range(2000), units):
        for text in (f"{number}{unit}", f"0{number}{unit}"):
            size_ok = text[0] != "0" and 1 <= number * units[unit] <= 1440
            assert bool(re.fullmatch(query.BUCKET_PATTERN, text)) is size_ok, text
            if size_ok:
                assert query.parse_bucket(text) == timedelta(minutes=number * units[unit])
            else:
                with pytest.raises(InvalidQuery):
                    query.parse_bucket(text)
    for text in ("99999m", "5m\n", " 5m", "5M", "1w"):
        with pytest.raises(InvalidQuery):
            query.parse_bucket(text)


def test_cursors_outside_the_documented_alphabet_are_refused() -> None:
    key = {"pk": "OBJECT#b/k", "sk": "REV#e#RESULT"}
    cursor = query.encode_cursor(key)
    assert re.fullmatch(query.CURSOR_PATTERN, cursor)
    assert query.decode_cursor(cursor, {}, ("pk", "sk")) == key
    # base64's decoder skips characters outside its alphabet: without the check these would decode to `key`.
    for spoiled in (cursor + "*", cursor[:4] + "!" + cursor[4:], cursor + "=" * (-len(cursor) % 4 or 4), ""):
        with pytest.raises(InvalidCursor):
            query.decode_cursor(spoiled, {}, ("pk", "sk"))


def _id_samples() -> list[str]:
    alphabet = ["a", ".", "/", "\x00", "\x1f", "\x7f", " ", "é", "\n"]
    samples = ["".join(chars) for size in range(1, 4) for chars in product(alphabet, repeat=size)]
    return [*samples, "", "x" * 256, "x" * 257, "subject-1", "..x", ".x."]


def test_the_id_pattern_is_is_valid_subject() -> None:
    for text in _id_samples():
        assert bool(re.fullmatch(ID_PATTERN, text)) is is_valid_subject(text) or len(text) > 256, repr(text)


def test_subjects_are_checked_with_the_same_rule_as_keys() -> None:
    for text in (".", "..", "a\x00", "a/b", "", "x" * 257):
        with pytest.raises(InvalidQuery):
            query.check_subject(text)
    assert query.check_subject("...") == "..."


def test_the_file_name_pattern_is_the_suffix_rule() -> None:
    names = [
        "a.jpg", "a.JPG", "A.Jpeg", "clip.mp4", "x.M4V", ".png", "dir.jpg/a.bmp", "a\\b.webp", "a.png.jpg",
        "a.jpg/b", "a.gif", "a", "a.jpg ", "a.jpg\n", "x.jpǵ", "ｘ.ｊｐｇ", "a.JPG\u0301", "a.mp4.",
    ]  # fmt: skip
    for name in names:
        try:
            safe_file_name(name)
            accepted = True
        except UnsupportedFormat:
            accepted = False
        assert bool(re.search(FILE_NAME_PATTERN, name) and not name.endswith("\n")) is accepted, repr(name)


def test_keys_are_characters_in_the_document_and_bytes_at_s3() -> None:
    assert query.check_key("k" * 1024)
    with pytest.raises(InvalidQuery):
        query.check_key("k" * 1025)
    with pytest.raises(ObjectNotFound):  # 1024 characters, 2048 bytes: no object can have that key
        query.check_key("é" * 1024)


def test_the_json_example_is_a_real_image_through_the_real_parser() -> None:
    document = _document()
    body = document["paths"]["/upload-meaa-image"]["post"]["requestBody"]["content"]["application/json"]
    example = body["example"]
    upload = upload_parsing.parse_upload(
        "application/json", __import__("json").dumps(example).encode(), max_image_bytes=1 << 20
    )
    assert upload.image == base64.b64decode(EXAMPLE_JPEG_BASE64)
    assert decode_image(upload.image, Settings().decoding).shape == (8, 8, 3)
    schema = body["schema"]["properties"]["image_base64"]
    assert schema["format"] == "byte" and schema["examples"] == [EXAMPLE_JPEG_BASE64]
    assert set(string.ascii_letters + string.digits + "+/=") >= set(EXAMPLE_JPEG_BASE64)


def test_the_example_is_answered_by_the_api(api_client: TestClient) -> None:
    response = api_client.post("/upload-meaa-image", json={"image_base64": EXAMPLE_JPEG_BASE64})
    assert response.status_code == 200, response.text
    assert (response.json()["width"], response.json()["faces"]) == (8, [])


def test_behind_the_authorizer_the_document_marks_the_template_routes_that_need_a_token() -> None:
    document = _document(**JWT)
    assert document["components"]["securitySchemes"][BEARER_SCHEME]["scheme"] == "bearer"
    documented = {
        (method.upper(), path): operation.get("security")
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    routes = {
        tuple(resource["Properties"]["RouteKey"].replace("{key+}", "{key}").split(" ", 1)): resource["Properties"]
        for resource in load_template()["Resources"].values()
        if resource["Type"] == "AWS::ApiGatewayV2::Route"
    }
    for operation, security in documented.items():
        kind = routes[operation]["AuthorizationType"]
        behind_authorizer = kind != "NONE"  # JWT, or !If [UseJwtAuth, JWT, NONE]: JWT in this document
        assert (security == [{BEARER_SCHEME: []}]) is behind_authorizer, operation
        assert behind_authorizer is ((operation[0].lower(), operation[1]) not in PUBLIC_OPERATIONS)


def test_the_local_document_has_no_security_and_the_same_operations() -> None:
    local, behind = _document(MEAA_LOCAL="1", MEAA_TABLE_NAME="results"), _document(**JWT)
    assert "securitySchemes" not in local.get("components", {})
    assert set(local["paths"]) == set(behind["paths"])
    ids = [op["operationId"] for ops in behind["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)) == 9 and all(re.fullmatch(r"[a-z][A-Za-z]+", name) for name in ids)


def test_a_405_names_every_method_of_its_path() -> None:
    client = TestClient(create_app(Settings.from_env(JWT)), raise_server_exceptions=False)
    response = client.patch("/clinicians/c-1/subjects/s-1")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert set(response.headers["allow"].split(", ")) == {"PUT", "DELETE"}
    assert client.post("/health").headers["allow"] == "GET"


def test_a_body_fastapi_cannot_parse_is_invalid_json() -> None:
    client = TestClient(create_app(Settings.from_env({**JWT, "MEAA_LOCAL": "1", "MEAA_AUTH_MODE": "none"})))
    for body in (b"{not json", b"\xff\xfe\x00"):
        response = client.post("/uploads", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json", body
    shape = client.post("/uploads", json={"filename": 7})
    assert shape.status_code == 422 and shape.json()["error"]["code"] == "invalid_input"
