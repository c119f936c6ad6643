"""The one settings object and the one error registry: read once, documented from themselves, used everywhere."""

from __future__ import annotations

import dataclasses

import pytest

from infra.readme_tables import README, stale_tables
from meaa import errors
from meaa.config import DetectionSettings, Settings, SettingsError, iter_settings


def test_every_setting_has_a_meaa_variable_and_a_doc_line() -> None:
    names = [meta["env"] for _, _, meta in iter_settings()]
    assert all(name.startswith("MEAA_") for name in names)
    assert len(names) == len(set(names)), "one variable per setting"
    assert all(meta["doc"] for _, _, meta in iter_settings())


def test_from_env_reads_every_part_once_and_keeps_defaults_for_unset_or_empty() -> None:
    settings = Settings.from_env(
        {
            "MEAA_THREADS": "2",
            "MEAA_THRESHOLDS": "0.5,0.6,0.95",
            "MEAA_ALIGN_FACES": "yes",
            "MEAA_UI": "1",
            "MEAA_AUTH_MODE": "jwt",
            "MEAA_VIDEO_SAMPLE_FPS": "5",
            "MEAA_TABLE_NAME": "results",
            "MEAA_MIN_FACE_PX": "",
        }
    )
    assert settings.threads == 2 and settings.align_faces is True
    assert settings.detection.thresholds == (0.5, 0.6, 0.95)
    assert settings.detection.min_face_px == DetectionSettings().min_face_px
    assert settings.api.try_it_page and settings.api.results_routes
    assert settings.video_scoring.sample_fps == 5.0 and settings.store.table_name == "results"
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(
    "variable, value",
    [("MEAA_THREADS", "two"), ("MEAA_UI", "maybe"), ("MEAA_THRESHOLDS", "0.6,0.7"), ("MEAA_SCALE_FACTOR", "1.5")],
)
def test_a_variable_that_cannot_be_read_names_itself(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})
    assert issubclass(SettingsError, ValueError)


def test_the_detector_has_no_defaults_of_its_own() -> None:
    import inspect

    from meaa.detector import MTCNNDetector

    parameters = inspect.signature(MTCNNDetector.__init__).parameters.values()
    assert all(parameter.default is inspect.Parameter.empty for parameter in parameters)
    assert dataclasses.is_dataclass(Settings().detection)


def test_the_error_registry_is_complete_and_consistent() -> None:
    assert len(errors.ERRORS) >= 18
    for code, cls in errors.ERRORS.items():
        assert cls.code == code and 400 <= cls.http_status < 600 and cls.summary()
        assert cls("a message").to_dict() == {"code": code, "message": "A message"}
    with pytest.raises(TypeError, match="declared twice"):

        class Again(errors.MeaaError, code="invalid_image", status=400):
            pass


def test_readme_tables_are_generated_from_the_code() -> None:
    assert stale_tables(README.read_text(encoding="utf-8")) == []


def test_openapi_lists_every_error_a_route_can_answer(api_client) -> None:
    document = api_client.get("/openapi.json").json()
    upload = document["paths"]["/upload-meaa-image"]["post"]["responses"]
    described = " ".join(response["description"] for status, response in upload.items() if status != "200")
    for code in ("invalid_image", "malformed_multipart", "image_too_large", "unsupported_format", "internal_error"):
        assert f"`{code}`" in described
    codes = document["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["description"]
    assert all(code in codes for code in errors.ERRORS)
