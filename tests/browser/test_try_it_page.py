"""The try-it page in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``)
driven by selenium, against uvicorn serving the real models with ``MEAA_UI=1`` on 127.0.0.1.

A photo is uploaded through the page's file input and the drawn result is checked in the DOM and in the
canvas pixels; the webcam mode runs on Chromium's fake camera fed with a real face; the timeline tab
reads a day of results that the batch handler wrote to moto's server. Screenshots are test artifacts
in ``artifacts/screenshots/`` (gitignored); ``make screenshots`` writes them to ``docs/screenshots/``
for the README instead (``MEAA_SCREENSHOT_DIR``). Skips, saying why, only when no browser can be found.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data

from devkit.aws import apply_environment, moto_environment, moto_server
from devkit.lambda_loader import load_function_module, load_template
from devkit.sample_faces import one_face_frame
from devkit.timeline_day import OTHER_SUBJECT, SUBJECT, faces_in, result_item, write_day
from meaa.config import Settings
from meaa.labels import MOODS
from meaa.pipeline import model_version_of
from tests.browser.chromium import require_chromium
from tests.support.gateway import LocalHttpApi, sign_token, template_routes
from tests.support.servers import STARTUP_WAIT_S, local_api_server

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("MEAA_SCREENSHOT_DIR") or REPO_ROOT / "artifacts" / "screenshots")
RESULT_WAIT_S = 120
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1100",
    "--force-device-scale-factor=1",
    # The webcam: no permission prompt, and a fake camera that plays a file (a real face) in a loop.
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
)


webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install -r requirements.txt)"
)


@pytest.fixture(scope="module", autouse=True)
def chromium() -> tuple[str, str]:
    """Before any server starts: skip without Chromium, or fail when MEAA_BROWSER_TESTS=1 asked for it."""
    return require_chromium()


from selenium.webdriver.common.by import By  # noqa: E402 - after the skip above
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def day_of_results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """moto's server with a day of batch results; yields the environment that points at it."""
    with pytest.MonkeyPatch.context() as patch, moto_server() as endpoint:
        environment = moto_environment(endpoint)
        apply_environment(patch, environment)
        environment = {name: value for name, value in environment.items() if value is not None}
        uploaded = write_day(tmp_path_factory.mktemp("media"))
        mine = [entry for entry in uploaded if entry.subject == SUBJECT]
        environment["EXPECTED_OBJECTS"] = str(len(mine))
        environment["EXPECTED_FACES"] = str(sum(faces_in(result_item(entry.key)) for entry in mine))
        yield environment


@pytest.fixture(scope="module")
def server_url(day_of_results: dict[str, str]) -> Iterator[str]:
    """``make serve``'s command (MEAA_UI=1, MEAA_LOCAL=1) on a free port, reading the moto table."""
    with local_api_server({**day_of_results, "MEAA_UI": "1", "MEAA_LOCAL": "1"}, drop_env=("MEAA_AUTH_MODE",)) as url:
        yield url


def _write_y4m(path: Path, frame_bgr: np.ndarray, frames: int = 10) -> Path:
    """A Y4M clip (the format Chromium's fake camera plays) of one real picture."""
    height, width = frame_bgr.shape[:2]
    yuv = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2YUV_I420).tobytes()
    with path.open("wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            handle.write(b"FRAME\n" + yuv)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, chromium: tuple[str, str]) -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    work = tmp_path_factory.mktemp("chromium")
    camera_clip = _write_y4m(work / "camera.y4m", one_face_frame(640, 480))
    options = Options()
    chromium_binary, chromedriver = chromium
    options.binary_location = chromium_binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={work / 'profile'}")
    options.add_argument(f"--use-file-for-fake-video-capture={camera_clip}")
    # The driver's path is given, so selenium-manager never looks for (or downloads) one.
    driver = webdriver.Chrome(
        service=Service(executable_path=chromedriver, env={**os.environ, "TZ": "UTC"}), options=options
    )
    try:
        yield driver
    finally:
        driver.quit()


def _open_page(browser, server_url: str) -> None:
    browser.get(f"{server_url}/")
    WebDriverWait(browser, STARTUP_WAIT_S).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
    )


def _state(browser) -> str:
    return browser.find_element(By.TAG_NAME, "body").get_attribute("data-state")


def _hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _canvas_pixel(browser, selector: str, x: float, y: float) -> tuple[int, int, int]:
    red, green, blue, _ = browser.execute_script(
        "const c = document.querySelector(arguments[0]);"
        "return Array.from(c.getContext('2d').getImageData(Math.floor(arguments[1]), Math.floor(arguments[2]), 1, 1).data);",
        selector, x, y,
    )  # fmt: skip
    return red, green, blue


def _distance(a: tuple[int, int, int], b: tuple[int, int, int]) -> int:
    return max(abs(p - q) for p, q in zip(a, b, strict=True))


def test_photo_upload_draws_the_box_and_the_mood(browser, server_url: str, tmp_path: Path) -> None:
    photo = tmp_path / "astronaut.jpg"
    astronaut_rgb = data.astronaut()
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    _open_page(browser, server_url)
    assert _state(browser) == "idle"

    browser.find_element(By.ID, "photo-input").send_keys(str(photo))
    WebDriverWait(browser, RESULT_WAIT_S).until(lambda d: _state(d) in ("done", "error"))
    assert _state(browser) == "done", browser.find_element(By.ID, "status").text

    (face,) = browser.find_elements(By.CSS_SELECTOR, "#faces li.face")
    mood = face.get_attribute("data-mood")
    assert mood in MOODS
    assert face.find_element(By.CLASS_NAME, "mood").text == f"Face 1: {mood}"
    bars = face.find_elements(By.CSS_SELECTOR, ".bar")
    assert [bar.get_attribute("data-mood") for bar in bars] == list(MOODS)
    assert sum(int(bar.find_element(By.CLASS_NAME, "value").text.rstrip("%")) for bar in bars) in range(98, 103)
    assert browser.find_element(By.ID, "status").text == f"1 face; main face: {mood}."
    # A clean portrait is reliable, and its measured quality is listed under the bars.
    assert face.get_attribute("data-reliable") == "true" and "unreliable" not in face.get_attribute("class")
    assert not face.find_elements(By.CLASS_NAME, "unreliable-note")
    listed = face.find_elements(By.CSS_SELECTOR, ".quality dd")
    metrics = {item.get_attribute("data-metric"): item.text for item in listed}
    assert set(metrics) == {
        "sharpness", "brightness", "contrast", "clipped", "size", "outside", "yaw / pitch / roll", "detection",
    }  # fmt: skip
    assert 50 <= int(metrics["size"].removesuffix(" px")) <= 160 and metrics["outside"] == "0%"

    # The box in the DOM holds the astronaut's face; on the canvas its top edge is drawn in the mood's
    # colour, where the photo itself has another colour there.
    x, y, w, h = (int(v) for v in face.get_attribute("data-box").split(","))
    assert x <= 225 <= x + w and y <= 125 <= y + h and 50 <= w <= 160
    scale = float(browser.find_element(By.ID, "view").get_attribute("data-box-scale"))
    assert scale == 1.0  # a 512x512 photo is drawn at its own size
    color = _hex_rgb(face.get_attribute("data-color"))
    edge = (x + w * 0.75, y)  # the label covers the left part of the top edge, in the same colour
    assert _distance(_canvas_pixel(browser, "#view", *edge), color) <= 8
    left_edge = (x, y + h * 0.5)
    assert _distance(_canvas_pixel(browser, "#view", *left_edge), color) <= 8
    photo_there = tuple(int(v) for v in astronaut_rgb[int(left_edge[1]), int(left_edge[0])])
    assert _distance(photo_there, color) > 40, "the photo already had the box colour there: pick another point"
    inside = (x + w * 0.5, y + h * 0.5)  # the face itself is the photo, not paint
    photo_inside = tuple(int(v) for v in astronaut_rgb[int(inside[1]), int(inside[0])])
    assert _distance(_canvas_pixel(browser, "#view", *inside), photo_inside) <= 40

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "try-it.png"))


def test_an_unreliable_face_is_marked_with_its_reasons(browser, server_url: str, tmp_path: Path) -> None:
    """A strongly blurred portrait: the face is still found and listed, drawn dashed in gray with the reason,
    and the answer has no mood."""
    photo = tmp_path / "astronaut-blurred.jpg"
    blurred_rgb = cv2.GaussianBlur(data.astronaut(), (0, 0), 5.0)
    cv2.imwrite(str(photo), cv2.cvtColor(blurred_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    _open_page(browser, server_url)
    browser.find_element(By.ID, "photo-input").send_keys(str(photo))
    WebDriverWait(browser, RESULT_WAIT_S).until(lambda d: _state(d) in ("done", "error"))
    assert _state(browser) == "done", browser.find_element(By.ID, "status").text

    (face,) = browser.find_elements(By.CSS_SELECTOR, "#faces li.face")
    assert "unreliable" in face.get_attribute("class").split() and face.get_attribute("data-reliable") == "false"
    assert "blurred" in face.get_attribute("data-reasons").split(",")
    note = face.find_element(By.CLASS_NAME, "unreliable-note").text
    assert note.startswith("Unreliable:") and "blurred" in note
    assert face.find_element(By.CLASS_NAME, "mood").text.endswith("?")
    assert browser.find_element(By.ID, "status").text == "1 face, none reliable: no mood."

    # On the canvas the box is dashed in the unreliable gray, never in a mood's colour.
    gray = _hex_rgb(browser.execute_script("return UNRELIABLE_COLOR"))
    assert face.get_attribute("data-color").lower() == browser.execute_script("return UNRELIABLE_COLOR").lower()
    x, y, _, h = (int(v) for v in face.get_attribute("data-box").split(","))
    edge = [_canvas_pixel(browser, "#view", x, y + h * (0.3 + 0.05 * i)) for i in range(10)]
    painted = [pixel for pixel in edge if _distance(pixel, gray) <= 8]
    assert 3 <= len(painted) <= 8, edge  # dashes and gaps
    mood_colours = [_hex_rgb(color) for color in browser.execute_script("return Object.values(MOOD_COLORS)")]
    assert not any(_distance(pixel, colour) <= 8 for pixel in edge for colour in mood_colours)
    browser.save_screenshot(str(SCREENSHOTS / "try-it-unreliable.png"))


def test_webcam_mode_sends_frames_and_charts_the_main_face(browser, server_url: str) -> None:
    _open_page(browser, server_url)
    browser.find_element(By.ID, "camera-start").click()
    # At least six answered frames: the chart needs a history, and every frame is one request.
    WebDriverWait(browser, RESULT_WAIT_S).until(
        lambda d: d.execute_script("return camera.history.filter((s) => s.moods).length") >= 6 or _state(d) == "error"
    )
    assert _state(browser) == "done", browser.find_element(By.ID, "status").text
    assert browser.find_element(By.ID, "live").is_displayed()
    # Frames keep arriving and each one rebuilds the list: read it in one script call, not element by element.
    moods = browser.execute_script(
        "return Array.from(document.querySelectorAll('#faces li.face'), (li) => li.dataset.mood)"
    )
    assert len(moods) == 1 and moods[0] in MOODS
    main_mood = moods[0]
    # The live chart has line pixels of every mood's colour.
    colours = browser.execute_script(
        "const c = document.querySelector('#live-chart');"
        "const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "const want = Object.entries(MOOD_COLORS).map(([m, h]) => [m, [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16))]);"
        "const seen = {};"
        "for (let i = 0; i < px.length; i += 4) for (const [m, rgb] of want)"
        "  if (Math.abs(px[i] - rgb[0]) < 12 && Math.abs(px[i + 1] - rgb[1]) < 12 && Math.abs(px[i + 2] - rgb[2]) < 12) seen[m] = (seen[m] || 0) + 1;"
        "return seen;"
    )
    # Lines near 0 % overlap, so not every colour shows; the main face's mood (the top line) must.
    assert colours.get(main_mood, 0) > 20 and len(colours) >= 2, colours
    browser.save_screenshot(str(SCREENSHOTS / "webcam.png"))
    browser.find_element(By.ID, "camera-stop").click()
    assert browser.execute_script("return camera.stream") is None


def _load_timeline(browser, subject: str, bucket: str = "1h") -> str:
    """Ask the timeline tab for the test day of ``subject``; the page's resulting state (done, http-403...)."""
    browser.find_element(By.ID, "tab-timeline").click()
    browser.execute_script(
        "document.querySelector('#tl-subject').value = arguments[0];"
        "document.querySelector('#tl-from').value = toLocalInputValue(new Date(arguments[1]));"
        "document.querySelector('#tl-to').value = toLocalInputValue(new Date(arguments[2]));"
        "document.querySelector('#tl-bucket').value = arguments[3];"
        "document.body.dataset.timeline = '';",
        subject, "2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z", bucket,
    )  # fmt: skip
    browser.find_element(By.ID, "tl-load").click()
    WebDriverWait(browser, RESULT_WAIT_S).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-timeline") not in ("", "busy")
    )
    return browser.find_element(By.TAG_NAME, "body").get_attribute("data-timeline")


def test_timeline_tab_shows_a_subjects_day(browser, server_url: str, day_of_results: dict[str, str]) -> None:
    _open_page(browser, server_url)
    assert _load_timeline(browser, SUBJECT, bucket="3h") == "done", browser.find_element(By.ID, "tl-status").text

    rows = browser.find_elements(By.CSS_SELECTOR, "#tl-table tbody tr")
    assert len(rows) == 8  # pictures every hour: every 3-hour bucket has some
    cells = [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert sum(int(row[1]) for row in cells) == int(day_of_results["EXPECTED_OBJECTS"])
    assert sum(int(row[2]) for row in cells) == int(day_of_results["EXPECTED_FACES"])
    assert {row[3] for row in cells} <= set(MOODS) | {"–"} and set(MOODS) & {row[3] for row in cells}
    # One model version's results, named on the page: the deployed one, which scored every object of the day.
    shown = browser.find_element(By.ID, "tl-model-shown").text
    assert f"model version {model_version_of(Settings())}." in shown and "other versions" not in shown, shown
    assert all(row[8] == "0" for row in cells)
    # The stacked area covers the hours with faces from 0 to 100 %: painted pixels fill a good part.
    painted = browser.execute_script(
        "const c = document.querySelector('#tl-chart');"
        "const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "const want = Object.values(MOOD_COLORS).map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));"
        "let n = 0;"
        "for (let i = 0; i < px.length; i += 4) if (want.some((rgb) => Math.abs(px[i] - rgb[0]) < 6 && Math.abs(px[i + 1] - rgb[1]) < 6 && Math.abs(px[i + 2] - rgb[2]) < 6)) n++;"
        "return n / (c.width * c.height);"
    )
    assert painted > 0.3, painted
    browser.save_screenshot(str(SCREENSHOTS / "timeline.png"))


# ---------------------------------------------------------------- the token box, behind the JWT authorizer

ISSUER, AUDIENCE, SECRET = "https://issuer.example.org/pool", "try-it-client", b"browser-test-signing-key"


def _token(sub: str, groups: list[str] | None = None) -> str:
    claims: dict[str, Any] = {"sub": sub, "iss": ISSUER, "client_id": AUDIENCE, "exp": int(time.time()) + 3600}
    if groups:
        claims["cognito:groups"] = groups
    return sign_token(claims, SECRET)


@pytest.fixture(scope="module")
def gateway_url(day_of_results: dict[str, str]) -> Iterator[str]:
    """The API's Lambda handler behind a local stand-in for the deployed HTTP API (routes and JWT authorizer
    from template.yaml, AuthMode=jwt, EnableTryItPage=true), reading the same day of results."""
    parameters = {"AuthMode": "jwt", "EnableTryItPage": "true"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEAA_AUTH_MODE", "jwt")
        patch.setenv("MEAA_UI", "1")
        patch.delenv("MEAA_LOCAL", raising=False)
        handler = load_function_module("ApiFunction").handler
        api = LocalHttpApi(handler, template_routes(load_template(), parameters), SECRET, ISSUER, AUDIENCE)
        url = api.start()
        try:
            yield url
        finally:
            api.stop()


def _sign_in(browser, token: str) -> str:
    if not browser.find_element(By.ID, "auth").get_attribute("open"):
        browser.find_element(By.CSS_SELECTOR, "#auth summary").click()
    box = browser.find_element(By.ID, "token")
    box.clear()
    browser.execute_script("document.querySelector('#whoami').textContent = ''")
    box.send_keys(token, Keys.TAB)  # the change event asks GET me who this is
    WebDriverWait(browser, RESULT_WAIT_S).until(lambda d: d.find_element(By.ID, "whoami").text)
    return browser.find_element(By.ID, "whoami").text


def test_a_patients_token_shows_its_own_timeline_and_a_403_for_another(
    browser, gateway_url: str, day_of_results: dict[str, str]
) -> None:
    _open_page(browser, gateway_url)
    assert _sign_in(browser, _token(SUBJECT)) == f"Signed in as patient {SUBJECT}"
    assert browser.find_element(By.ID, "tl-subject").get_attribute("value") == SUBJECT  # its own, filled in
    assert _load_timeline(browser, SUBJECT) == "done", browser.find_element(By.ID, "tl-status").text
    rows = browser.find_elements(By.CSS_SELECTOR, "#tl-table tbody tr")
    assert sum(int(row.find_elements(By.TAG_NAME, "td")[1].text) for row in rows) == int(
        day_of_results["EXPECTED_OBJECTS"]
    )

    assert _load_timeline(browser, OTHER_SUBJECT) == "http-403"
    status = browser.find_element(By.ID, "tl-status").text
    assert status == f"Forbidden: this token may not read the moods of subject {OTHER_SUBJECT} (forbidden)."
    assert browser.find_elements(By.CSS_SELECTOR, "#tl-table tbody tr") == []  # nothing left on screen
    browser.save_screenshot(str(SCREENSHOTS / "timeline-forbidden.png"))


def test_a_bad_token_is_said_to_be_refused_and_an_admin_reads_anyone(browser, gateway_url: str) -> None:
    _open_page(browser, gateway_url)
    assert _sign_in(browser, "not-a-token").startswith("Token not accepted")
    assert _load_timeline(browser, SUBJECT) == "http-401"
    assert browser.find_element(By.ID, "tl-status").text.startswith("Not signed in")
    assert _sign_in(browser, _token("admin-1", ["admins"])) == "Signed in as admin"
    assert _load_timeline(browser, OTHER_SUBJECT) == "done", browser.find_element(By.ID, "tl-status").text
