"""The caller from the authorizer's claims (``meaa_api.auth``), and the object-key layout that decides whose an
object is (``meaa.object_keys``): the pieces the access matrix (test_access_matrix.py) stands on."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote_plus

import pytest
from fastapi.testclient import TestClient

from meaa import store
from meaa.config import ApiSettings, Settings, SettingsError
from meaa.errors import Unauthenticated, UnsupportedFormat
from meaa.object_keys import (
    IMAGE_SUFFIXES,
    MAX_FILE_NAME_CHARS,
    MEDIA_TYPES,
    VIDEO_SUFFIXES,
    owner_of,
    safe_file_name,
    upload_key,
)
from meaa_api.app import create_app
from meaa_api.auth import Principal, Role, parse_groups, principal_from_claims
from meaa_aws.s3_objects import object_byte_limit

PREFIX = "incoming/"


@pytest.mark.parametrize(
    "value, groups",
    [
        (None, set()),
        ("[admins clinicians]", {"admins", "clinicians"}),  # API Gateway's rendering of a list claim
        ("[clinicians]", {"clinicians"}),
        ("[]", set()),
        ("", set()),
        ('["admins", "clinicians"]', {"admins", "clinicians"}),  # a JSON list in the string
        ('[ "clinicians" ]', {"clinicians"}),
        (["admins"], {"admins"}),  # a JSON list as such
        ("clinicians", {"clinicians"}),  # one bare group name
    ],
)
def test_groups_claim_in_each_accepted_form(value, groups) -> None:
    assert parse_groups(value) == groups


@pytest.mark.parametrize(
    "value",
    [7, 1.5, True, {"admins": True}, [1, 2], ["admins", None], '["admins"', "[admins", '["admins" "x"]', "x" * 5000],
)
def test_groups_claim_of_a_wrong_type_or_shape_is_401(value) -> None:
    with pytest.raises(Unauthenticated):
        parse_groups(value)


def test_role_precedence_is_admin_then_clinician_then_patient() -> None:
    both = {"sub": "u-1", "cognito:groups": "[clinicians admins]"}
    assert principal_from_claims(both, "sub") == Principal("u-1", Role.ADMIN)
    assert principal_from_claims({**both, "cognito:groups": "[clinicians]"}, "sub") == Principal("u-1", Role.CLINICIAN)
    other = {"sub": "u-1", "cognito:groups": "[nurses Admins]"}  # other groups, and names are case-sensitive
    assert principal_from_claims(other, "sub") == Principal("u-1", Role.PATIENT, "u-1")


def test_a_patient_is_the_subject_its_subject_claim_names() -> None:
    claims = {"sub": "5f0c-uuid", "custom:patient_id": "patient-007"}
    assert principal_from_claims(claims, "custom:patient_id") == Principal("5f0c-uuid", Role.PATIENT, "patient-007")
    with pytest.raises(Unauthenticated, match="custom:patient_id"):
        principal_from_claims({"sub": "5f0c-uuid"}, "custom:patient_id")  # a patient without one: 401
    for unusable in ("a/b", "", "..", "x" * 300, "tab\there"):
        with pytest.raises(Unauthenticated):
            principal_from_claims({"sub": "5f0c-uuid", "custom:patient_id": unusable}, "custom:patient_id")
    # Staff need no subject claim.
    staff = {"sub": "c-1", "cognito:groups": "[clinicians]"}
    assert principal_from_claims(staff, "custom:patient_id").role is Role.CLINICIAN


@pytest.mark.parametrize("claims", [None, {}, [], "sub=x", {"sub": ""}, {"sub": 7}, {"sub": ["a"]}, {"groups": "x"}])
def test_claims_that_describe_nobody_are_401(claims) -> None:
    with pytest.raises(Unauthenticated):
        principal_from_claims(claims, "sub")


@pytest.mark.parametrize(
    "key, owner",
    [
        ("incoming/subject-a/ward/a.jpg", "subject-a"),
        ("incoming/subject-a/ward/deeper/a.jpg", "subject-a"),
        ("incoming/subject a/2026-11-26/a b.jpg", "subject a"),
        ("incoming/subject-a/a.jpg", None),  # no session: the batch files it under no subject
        ("incoming//ward/a.jpg", None),
        ("incoming/subject-a//a.jpg", None),
        ("incoming/a.jpg", None),
        ("elsewhere/subject-a/ward/a.jpg", None),
        ("incomingsubject-a/ward/a.jpg", None),
        ("", None),
    ],
)
def test_owner_of_a_key_is_the_subject_the_batch_files_it_under(key: str, owner: str | None) -> None:
    assert owner_of(key, PREFIX) == owner
    if key.startswith(PREFIX):  # one layout: the batch function's ObjectRef reads the same subject
        parsed = store.ObjectRef.from_event_key("b", quote_plus(key, safe="/"), PREFIX, etag="e")
        assert parsed.key == key and parsed.subject == owner


@pytest.mark.parametrize(
    "name, safe",
    [
        ("clip.mp4", "clip.mp4"),
        ("CLIP.MP4", "CLIP.mp4"),  # suffix in lower case: the S3 trigger's filters are case-sensitive
        ("DCIM/Camera/IMG_0001.JPG", "IMG_0001.jpg"),
        ("C:\\Users\\me\\Desktop\\photo.jpeg", "photo.jpeg"),
        ("../../etc/passwd.png", "passwd.png"),
        ("Crème brûlée (2).webp", "Creme_brulee_2.webp"),
        ("a b\tc\nd.mov", "a_b_c_d.mov"),
        (".hidden.jpg", "hidden.jpg"),
        ("....jpg", "upload.jpg"),
        ("%2e%2e%2fx.avi", "2e_2e_2fx.avi"),
        ("照片.png", "upload.png"),
        ("x" * 300 + ".m4v", "x" * (MAX_FILE_NAME_CHARS - 4) + ".m4v"),
    ],
)
def test_untrusted_file_names_are_sanitized(name: str, safe: str) -> None:
    assert safe_file_name(name) == safe
    assert len(safe) <= MAX_FILE_NAME_CHARS


@pytest.mark.parametrize("name", ["clip", "clip.gif", "clip.mp4.exe", "archive.tar.gz", "photo.jpg/", "photo.heic"])
def test_names_without_a_scored_media_suffix_are_refused(name: str) -> None:
    with pytest.raises(UnsupportedFormat):
        safe_file_name(name)


def test_upload_keys_follow_the_layout_and_never_repeat() -> None:
    keys = {upload_key(PREFIX, "subject-a", "2026-11-26", "clip.MP4") for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert owner_of(key, PREFIX) == "subject-a" and key.endswith("-clip.mp4")
        assert key.startswith("incoming/subject-a/2026-11-26/")
    for subject, session in (("a/b", "s"), ("..", "s"), ("a", "../s"), ("a", ""), ("a", "x" * 65)):
        with pytest.raises(ValueError):
            upload_key(PREFIX, subject, session, "clip.mp4")


def test_one_suffix_list_with_a_media_type_and_the_batch_limits() -> None:
    assert set(MEDIA_TYPES) == IMAGE_SUFFIXES | VIDEO_SUFFIXES and not IMAGE_SUFFIXES & VIDEO_SUFFIXES
    assert all(MEDIA_TYPES[s].startswith("image/") for s in IMAGE_SUFFIXES)
    assert all(MEDIA_TYPES[s].startswith("video/") for s in VIDEO_SUFFIXES)
    settings = Settings.from_env({"MEAA_MAX_OBJECT_BYTES": "300000000"})
    assert object_byte_limit(".mp4", settings) == 300_000_000
    assert object_byte_limit(".jpg", settings) == settings.decoding.max_image_bytes  # the decoder's cap binds
    small = Settings.from_env({"MEAA_MAX_OBJECT_BYTES": "1000"})
    assert object_byte_limit(".jpg", small) == object_byte_limit(".mov", small) == 1000


@pytest.mark.parametrize(
    "environ", [{"MEAA_UPLOAD_URL_EXPIRES_S": "901"}, {"MEAA_UPLOAD_URL_EXPIRES_S": "0"}, {"MEAA_AUTH_MODE": "jtw"}]
)
def test_access_settings_out_of_range_stop_the_process(environ) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(environ)
    with pytest.raises(SettingsError):
        ApiSettings(subject_claim=" ")


def test_jwt_wins_over_local() -> None:
    """Both set: the stricter one (verified claims needed), never the open local mode."""
    both = Settings.from_env({"MEAA_AUTH_MODE": "jwt", "MEAA_LOCAL": "1"})
    with TestClient(create_app(both), raise_server_exceptions=False) as client:
        response = client.get("/me")
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
    with TestClient(create_app(Settings.from_env({"MEAA_LOCAL": "1"}))) as client:
        assert client.get("/me").json() == {"sub": "local", "role": "admin", "subject": None}


def test_cognito_tokens_of_the_readmes_groups_give_the_roles() -> None:
    """README's Cognito setup (groups, users, group membership) done on moto's Cognito: the access token it
    issues, rendered the way API Gateway renders claims, is an admin, a clinician or a patient."""
    import boto3
    from moto import mock_aws

    from meaa_api.auth import ADMINS_GROUP, CLINICIANS_GROUP
    from tests.support.gateway import render_claims

    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name="eu-west-1")
        pool = cognito.create_user_pool(PoolName="meaa-users", UsernameAttributes=["email"])["UserPool"]["Id"]
        client = cognito.create_user_pool_client(
            UserPoolId=pool, ClientName="app", ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]
        for group in (ADMINS_GROUP, CLINICIANS_GROUP):
            cognito.create_group(UserPoolId=pool, GroupName=group)
        roles = {}
        for email, group in (
            ("admin@h.example", ADMINS_GROUP),
            ("dr@h.example", CLINICIANS_GROUP),
            ("p@h.example", None),
        ):
            cognito.admin_create_user(UserPoolId=pool, Username=email, MessageAction="SUPPRESS")
            cognito.admin_set_user_password(UserPoolId=pool, Username=email, Password="Long-enough-1!", Permanent=True)
            if group:
                cognito.admin_add_user_to_group(UserPoolId=pool, Username=email, GroupName=group)
            tokens = cognito.admin_initiate_auth(
                UserPoolId=pool,
                ClientId=client,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": email, "PASSWORD": "Long-enough-1!"},
            )["AuthenticationResult"]
            payload = tokens["AccessToken"].split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            roles[email] = principal_from_claims(render_claims(claims), "sub")
            assert roles[email].sub == claims["sub"]
    assert roles["admin@h.example"].role is Role.ADMIN and roles["dr@h.example"].role is Role.CLINICIAN
    assert roles["p@h.example"] == Principal(roles["p@h.example"].sub, Role.PATIENT, roles["p@h.example"].sub)
