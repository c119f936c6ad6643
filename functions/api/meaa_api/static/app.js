// MEAA try-it page: a photo or webcam frames go to POST upload-meaa-image; boxes, moods and bars are
// drawn over the picture. The timeline tab reads GET subjects/{subject}/moods page by page and draws
// the mood shares as a stacked area. With a token (JWT auth), GET me says the role it carries. Plain browser APIs only (no library, no build step, no network
// beyond this API), so the page works offline.
"use strict";

const MOODS = ["positive", "negative", "neutral", "other"];
const MOOD_COLORS = { positive: "#2e9d57", negative: "#d64545", neutral: "#4a78c2", other: "#e0a020" };
// Faces the quality gate marks unreliable are drawn dashed in this gray, their mood with a question mark.
const UNRELIABLE_COLOR = "#7b8494";
const REASON_TEXT = {
  blurred: "blurred",
  dark: "too dark",
  overexposed: "overexposed",
  low_contrast: "low contrast",
  small: "too small",
  out_of_frame: "cut by the frame",
  turned: "turned away",
  tilted: "tilted",
  uncertain_detection: "uncertain detection",
};
const MAX_PICTURE_SIDE = 1280; // canvas pixels; boxes are scaled from the image's own pixels
const WEBCAM_FRAME_INTERVAL_MS = 300; // a few frames per second, never more than one request in flight
const WEBCAM_UPLOAD_WIDTH = 640;
const LIVE_WINDOW_MS = 60_000;
const TIMELINE_PAGE_ITEMS = 1000;
const TIMELINE_MAX_PAGES = 100;
const TIMELINE_PAD = { left: 44, right: 12, top: 12, bottom: 28 }; // room for the axis labels

const $ = (selector) => document.querySelector(selector);

// ------------------------------------------------------------------ API calls

function authHeaders() {
  const token = $("#token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function apiJson(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    // not JSON: a gateway error page, for instance
  }
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.code || `http_${response.status}`, error.message || response.statusText);
  }
  return body;
}

async function analyzeImage(blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  const response = await fetch("upload-meaa-image", { method: "POST", body: form, headers: authHeaders() });
  return apiJson(response);
}

// ------------------------------------------------------------------ who the token is

// GET me tells the role the API reads from the token's verified claims (admins > clinicians > patient);
// a patient's timeline is its own subject, filled in for it.
async function onTokenChanged() {
  const who = $("#whoami");
  delete document.body.dataset.role;
  if (!$("#token").value.trim()) {
    who.textContent = "";
    return;
  }
  try {
    const me = await apiJson(await fetch("me", { headers: authHeaders() }));
    document.body.dataset.role = me.role;
    who.textContent = me.role === "patient" ? `Signed in as patient ${me.subject}` : `Signed in as ${me.role}`;
    if (me.role === "patient") $("#tl-subject").value = me.subject;
  } catch (error) {
    const refused = error instanceof ApiError && error.status === 401;
    who.textContent = refused ? "Token not accepted: expired, or not from this API's user pool." : `Could not check the token: ${error.message}`;
  }
}

// ------------------------------------------------------------------ drawing faces

function setState(state, message) {
  document.body.dataset.state = state;
  $("#status").textContent = message;
}

function percent(value) {
  return `${Math.round(value * 100)}%`;
}

// Draws the picture, then for each face its box, a label with the mood and four probability bars.
function drawAnalysis(canvas, source, sourceWidth, sourceHeight, analysis) {
  const scale = Math.min(1, MAX_PICTURE_SIDE / Math.max(sourceWidth, sourceHeight));
  canvas.width = Math.round(sourceWidth * scale);
  canvas.height = Math.round(sourceHeight * scale);
  const context = canvas.getContext("2d");
  context.drawImage(source, 0, 0, canvas.width, canvas.height);
  // The API's boxes are in the decoded image's pixels; the picture may have been resized on the way.
  const boxScale = canvas.width / (analysis.width || sourceWidth);
  canvas.dataset.boxScale = String(boxScale);
  const line = Math.max(2, Math.round(canvas.width / 250));
  const fontSize = Math.max(12, Math.round(canvas.width / 45));
  for (const face of analysis.faces) {
    const x = face.box.x * boxScale;
    const y = face.box.y * boxScale;
    const w = face.box.w * boxScale;
    const h = face.box.h * boxScale;
    const color = face.reliable ? MOOD_COLORS[face.mood] : UNRELIABLE_COLOR;
    context.lineWidth = line;
    context.strokeStyle = color;
    context.setLineDash(face.reliable ? [] : [line * 3, line * 2]);
    context.strokeRect(x, y, w, h);
    context.setLineDash([]);

    const label = face.reliable
      ? `${face.mood} ${percent(face.moods[face.mood])}`
      : `${face.mood}? ${reasonsText(face.unreliable_reasons)}`;
    context.font = `600 ${fontSize}px system-ui, sans-serif`;
    const labelWidth = context.measureText(label).width + fontSize * 0.6;
    const labelHeight = fontSize * 1.4;
    const labelTop = y - line / 2 - labelHeight >= 0 ? y - line / 2 - labelHeight : y + line / 2;
    context.fillStyle = color;
    context.fillRect(x - line / 2, labelTop, labelWidth, labelHeight);
    context.fillStyle = "#fff";
    context.textBaseline = "middle";
    context.fillText(label, x - line / 2 + fontSize * 0.3, labelTop + labelHeight / 2);

    drawBars(context, face.moods, x, y + h + line, Math.max(w, fontSize * 6), fontSize, canvas.height);
  }
}

// A small panel under the box: one bar per mood, its length the probability, on a dark track.
function drawBars(context, moods, left, top, width, fontSize, canvasHeight) {
  const rowHeight = Math.max(5, Math.round(fontSize * 0.45));
  const gap = Math.max(2, Math.round(rowHeight / 3));
  const padding = gap;
  const panelHeight = MOODS.length * (rowHeight + gap) - gap + 2 * padding;
  const panelTop = top + panelHeight <= canvasHeight ? top : Math.max(0, top - panelHeight - fontSize * 2);
  context.fillStyle = "rgba(20, 24, 33, 0.72)";
  context.fillRect(left, panelTop, width, panelHeight);
  const barWidth = width - 2 * padding;
  MOODS.forEach((mood, row) => {
    const rowTop = panelTop + padding + row * (rowHeight + gap);
    context.fillStyle = "rgba(255, 255, 255, 0.18)";
    context.fillRect(left + padding, rowTop, barWidth, rowHeight);
    context.fillStyle = MOOD_COLORS[mood];
    context.fillRect(left + padding, rowTop, Math.max(1, barWidth * moods[mood]), rowHeight);
  });
}

function reasonsText(reasons) {
  return reasons.map((reason) => REASON_TEXT[reason] || reason.replaceAll("_", " ")).join(", ");
}

function degrees(value) {
  return `${Math.round(value)}°`;
}

// One line of the face's measured quality, and for an unreliable face a warning that says why.
function qualityParts(face) {
  const parts = [];
  if (!face.reliable) {
    const warning = document.createElement("div");
    warning.className = "unreliable-note";
    warning.setAttribute("role", "note");
    warning.textContent = `Unreliable: ${reasonsText(face.unreliable_reasons)}. Its mood is not the answer's.`;
    parts.push(warning);
  }
  const q = face.quality;
  const details = document.createElement("dl");
  details.className = "quality";
  const entries = [
    ["sharpness", q.sharpness.toFixed(2)],
    ["brightness", percent(q.brightness)],
    ["contrast", q.contrast.toFixed(2)],
    ["clipped", percent(q.clipped_fraction)],
    ["size", `${q.face_px} px`],
    ["outside", percent(q.outside_fraction)],
    ["yaw / pitch / roll", [q.pose.yaw, q.pose.pitch, q.pose.roll].map(degrees).join(" / ")],
    ["detection", percent(q.detection_score)],
  ];
  for (const [name, value] of entries) {
    const term = document.createElement("dt");
    term.textContent = name;
    const definition = document.createElement("dd");
    definition.textContent = value;
    definition.dataset.metric = name;
    details.append(term, definition);
  }
  parts.push(details);
  return parts;
}

// The same results as DOM (labels, bars and numbers a screen reader and a test can read).
function listFaces(analysis) {
  const list = $("#faces");
  list.replaceChildren();
  analysis.faces.forEach((face, index) => {
    const item = document.createElement("li");
    item.className = face.reliable ? "face" : "face unreliable";
    item.dataset.mood = face.mood;
    item.dataset.reliable = String(face.reliable);
    item.dataset.reasons = face.unreliable_reasons.join(",");
    item.dataset.color = face.reliable ? MOOD_COLORS[face.mood] : UNRELIABLE_COLOR;
    item.dataset.box = [face.box.x, face.box.y, face.box.w, face.box.h].join(",");
    item.style.setProperty("--mood-color", item.dataset.color);
    const title = document.createElement("div");
    title.className = "mood";
    title.textContent = `Face ${index + 1}: ${face.mood}${face.reliable ? "" : "?"}`;
    item.append(title);
    for (const mood of MOODS) {
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.dataset.mood = mood;
      const name = document.createElement("span");
      name.textContent = mood;
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.style.display = "block";
      fill.style.width = percent(face.moods[mood]);
      fill.style.background = MOOD_COLORS[mood];
      track.append(fill);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = percent(face.moods[mood]);
      bar.append(name, track, value);
      item.append(bar);
    }
    item.append(...qualityParts(face));
    list.append(item);
  });
}

function describe(analysis) {
  if (analysis.face_count === 0) return "No face found.";
  const faces = analysis.face_count === 1 ? "1 face" : `${analysis.face_count} faces`;
  if (analysis.mood === null) return `${faces}, none reliable: no mood.`;
  return `${faces}; main face: ${analysis.mood}.`;
}

// ------------------------------------------------------------------ photo mode

async function onPhotoChosen(event) {
  const file = event.target.files[0];
  if (!file) return;
  stopCamera();
  setState("busy", `Analysing ${file.name}…`);
  const url = URL.createObjectURL(file);
  try {
    const picture = new Image();
    picture.src = url;
    await picture.decode();
    const analysis = await analyzeImage(file, file.name);
    drawAnalysis($("#view"), picture, picture.naturalWidth, picture.naturalHeight, analysis);
    listFaces(analysis);
    setState("done", describe(analysis));
  } catch (error) {
    listFaces({ faces: [] });
    setState("error", error instanceof ApiError ? `${error.message} (${error.code})` : `Could not read that picture: ${error.message}`);
  } finally {
    URL.revokeObjectURL(url);
    event.target.value = "";
  }
}

// ------------------------------------------------------------------ webcam mode

const camera = { stream: null, timer: null, inFlight: false, history: [] };

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setState("error", "This browser gives no camera here (it needs https or localhost).");
    return;
  }
  try {
    camera.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 } }, audio: false });
  } catch (error) {
    setState("error", `No camera: ${error.message}`);
    return;
  }
  const video = $("#camera");
  video.srcObject = camera.stream;
  await video.play();
  camera.history = [];
  $("#live").hidden = false;
  $("#camera-start").disabled = true;
  $("#camera-stop").disabled = false;
  setState("busy", "Webcam on.");
  camera.timer = setInterval(sendCameraFrame, WEBCAM_FRAME_INTERVAL_MS);
}

function stopCamera() {
  if (camera.timer) clearInterval(camera.timer);
  if (camera.stream) camera.stream.getTracks().forEach((track) => track.stop());
  camera.stream = null;
  camera.timer = null;
  $("#camera-start").disabled = false;
  $("#camera-stop").disabled = true;
}

async function sendCameraFrame() {
  const video = $("#camera");
  if (camera.inFlight || !camera.stream || video.videoWidth === 0) return;
  camera.inFlight = true;
  try {
    const frame = document.createElement("canvas");
    const scale = Math.min(1, WEBCAM_UPLOAD_WIDTH / video.videoWidth);
    frame.width = Math.round(video.videoWidth * scale);
    frame.height = Math.round(video.videoHeight * scale);
    frame.getContext("2d").drawImage(video, 0, 0, frame.width, frame.height);
    const blob = await new Promise((resolve) => frame.toBlob(resolve, "image/jpeg", 0.85));
    const analysis = await analyzeImage(blob, "webcam.jpg");
    if (!camera.stream) return;
    drawAnalysis($("#view"), frame, frame.width, frame.height, analysis);
    listFaces(analysis);
    recordMainFace(analysis);
    drawLiveChart($("#live-chart"), camera.history, Date.now());
    setState("done", describe(analysis));
  } catch (error) {
    setState("error", error instanceof ApiError ? `${error.message} (${error.code})` : error.message);
  } finally {
    camera.inFlight = false;
  }
}

function recordMainFace(analysis) {
  const now = Date.now();
  camera.history.push({ time: now, moods: analysis.moods }); // moods is null when there is no face: a gap
  while (camera.history.length && camera.history[0].time < now - LIVE_WINDOW_MS) camera.history.shift();
}

// Four lines (one per mood) of the main face's probabilities over the last minute; gaps where no face.
function drawLiveChart(canvas, history, now) {
  const pad = { left: 36, right: 8, top: 8, bottom: 20 };
  const { context, plotWidth, plotHeight } = startPlot(canvas, pad);
  context.fillStyle = "#5b6475";
  context.textAlign = "center";
  for (const secondsAgo of [60, 45, 30, 15, 0]) {
    const x = pad.left + plotWidth * (1 - secondsAgo / 60);
    context.fillText(secondsAgo ? `-${secondsAgo}s` : "now", x, canvas.height - 6);
  }
  const xOf = (time) => pad.left + plotWidth * (1 - (now - time) / LIVE_WINDOW_MS);
  const yOf = (value) => pad.top + plotHeight * (1 - value);
  context.lineWidth = 2;
  for (const mood of MOODS) {
    context.strokeStyle = MOOD_COLORS[mood];
    context.beginPath();
    let drawing = false;
    for (const sample of history) {
      if (!sample.moods) {
        drawing = false;
        continue;
      }
      const x = xOf(sample.time);
      const y = yOf(sample.moods[mood]);
      if (drawing) context.lineTo(x, y);
      else context.moveTo(x, y);
      drawing = true;
    }
    context.stroke();
    context.fillStyle = MOOD_COLORS[mood];
    for (const sample of history) {
      if (sample.moods) context.fillRect(xOf(sample.time) - 2, yOf(sample.moods[mood]) - 2, 4, 4);
    }
  }
}

// A cleared canvas with the share axis drawn, and the plot area inside the padding.
function startPlot(canvas, pad) {
  const context = canvas.getContext("2d");
  const plotWidth = canvas.width - pad.left - pad.right;
  const plotHeight = canvas.height - pad.top - pad.bottom;
  context.clearRect(0, 0, canvas.width, canvas.height);
  drawYAxis(context, pad, plotWidth, plotHeight);
  return { context, plotWidth, plotHeight };
}

function drawYAxis(context, pad, plotWidth, plotHeight) {
  context.font = "11px system-ui, sans-serif";
  context.textBaseline = "middle";
  context.textAlign = "right";
  context.lineWidth = 1;
  for (const value of [0, 0.5, 1]) {
    const y = pad.top + plotHeight * (1 - value);
    context.strokeStyle = "#d9dde5";
    context.beginPath();
    context.moveTo(pad.left, Math.round(y) + 0.5);
    context.lineTo(pad.left + plotWidth, Math.round(y) + 0.5);
    context.stroke();
    context.fillStyle = "#5b6475";
    context.fillText(percent(value), pad.left - 4, y);
  }
}

// ------------------------------------------------------------------ timeline

function toLocalInputValue(date) {
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

function timelineStatus(message, isError = false) {
  const status = $("#tl-status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

// Pages are read until next_cursor is null; a bucket cut by a page boundary is added back together.
// Every page shows one model version's results (the deployed one unless modelVersion names another); objects
// with results of other versions only are counted apart (objects_without_result), never mixed in.
async function loadTimeline(subject, from, to, bucket, modelVersion) {
  const merged = new Map();
  const otherVersions = new Set();
  let cursor = null;
  let bucketSeconds = null;
  let shownVersion = null;
  for (let page = 0; page < TIMELINE_MAX_PAGES; page += 1) {
    const params = new URLSearchParams({ from, to, bucket, limit: String(TIMELINE_PAGE_ITEMS) });
    if (modelVersion) params.set("model_version", modelVersion);
    if (cursor) params.set("cursor", cursor);
    const response = await fetch(`subjects/${encodeURIComponent(subject)}/moods?${params}`, { headers: authHeaders() });
    const answer = await apiJson(response);
    bucketSeconds = answer.bucket_seconds;
    shownVersion = answer.model_version;
    for (const version of answer.other_model_versions) otherVersions.add(version);
    for (const part of answer.buckets) {
      const total = merged.get(part.start);
      if (!total) {
        merged.set(part.start, { ...part, mood_counts: { ...part.mood_counts } });
        continue;
      }
      total.objects += part.objects;
      total.failed += part.failed;
      total.objects_without_result += part.objects_without_result;
      for (const mood of MOODS) total.mood_counts[mood] += part.mood_counts[mood];
    }
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  const buckets = [...merged.values()].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  for (const entry of buckets) {
    entry.face_count = MOODS.reduce((sum, mood) => sum + entry.mood_counts[mood], 0);
    for (const mood of MOODS) entry.moods[mood] = entry.face_count ? entry.mood_counts[mood] / entry.face_count : 0;
    entry.dominant_mood = entry.face_count ? MOODS.reduce((best, mood) => (entry.mood_counts[mood] > entry.mood_counts[best] ? mood : best), MOODS[0]) : null;
  }
  return { buckets, bucketSeconds, truncated: Boolean(cursor), modelVersion: shownVersion, otherVersions: [...otherVersions].sort() };
}

// Stacked areas of the mood shares, in steps: each bucket holds its shares over its own span, so a
// run of buckets reads as one area and a bucket without faces is a gap (no data is not "neutral").
function drawTimeline(canvas, buckets, fromMs, toMs, bucketMs) {
  const pad = TIMELINE_PAD;
  const { context, plotWidth, plotHeight } = startPlot(canvas, pad);
  const xOf = (time) => pad.left + (plotWidth * (Math.min(Math.max(time, fromMs), toMs) - fromMs)) / (toMs - fromMs);
  const yOf = (share) => pad.top + plotHeight * (1 - share);
  drawTimeTicks(context, fromMs, toMs, xOf, canvas.height - 8);
  for (const entry of buckets) {
    const start = Date.parse(entry.start);
    // Whole pixels, so neighbouring buckets meet without a hairline between them.
    const left = Math.round(xOf(start));
    const right = Math.round(xOf(start + bucketMs));
    if (entry.objects_without_result > 0) {
      // Objects this model version has not scored: a gray band under the bucket, so a gap does not read as "no faces".
      context.fillStyle = UNRELIABLE_COLOR;
      context.fillRect(left, Math.round(yOf(0)) + 2, Math.max(1, right - left), 4);
    }
    if (entry.face_count === 0) continue;
    let below = 0;
    for (const mood of MOODS) {
      const above = below + entry.moods[mood];
      const top = Math.round(yOf(above));
      const bottom = Math.round(yOf(below));
      if (bottom > top) {
        context.fillStyle = MOOD_COLORS[mood];
        context.fillRect(left, top, Math.max(1, right - left), bottom - top);
      }
      below = above;
    }
  }
}

function drawTimeTicks(context, fromMs, toMs, xOf, baseline) {
  const steps = [60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);
  const step = steps.find((s) => (toMs - fromMs) / s <= 12) || 86400 * 1000 * Math.ceil((toMs - fromMs) / (86400 * 1000 * 12));
  const zone = new Date().getTimezoneOffset() * 60_000;
  context.fillStyle = "#5b6475";
  context.textAlign = "center";
  context.textBaseline = "alphabetic";
  const multiDay = toMs - fromMs > 86400 * 1000;
  for (let tick = Math.ceil((fromMs - zone) / step) * step + zone; tick <= toMs; tick += step) {
    const date = new Date(tick);
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const label = multiDay ? `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}` : time;
    context.fillText(label, xOf(tick), baseline);
  }
}

function fillTimelineTable(buckets) {
  const body = $("#tl-table tbody");
  body.replaceChildren();
  for (const entry of buckets) {
    const row = document.createElement("tr");
    row.dataset.start = entry.start;
    const cells = [
      new Date(entry.start).toLocaleString(),
      entry.objects,
      entry.face_count,
      entry.dominant_mood || "–",
      ...MOODS.map((mood) => (entry.face_count ? percent(entry.moods[mood]) : "–")),
      entry.objects_without_result,
    ];
    for (const value of cells) {
      const cell = document.createElement("td");
      cell.textContent = String(value);
      row.append(cell);
    }
    body.append(row);
  }
}

async function onTimelineSubmit(event) {
  event.preventDefault();
  const subject = $("#tl-subject").value.trim();
  const fromDate = new Date($("#tl-from").value);
  const toDate = new Date($("#tl-to").value);
  if (!subject || Number.isNaN(fromDate.getTime()) || Number.isNaN(toDate.getTime())) {
    timelineStatus("Give a subject, a start and an end.", true);
    return;
  }
  const bucket = $("#tl-bucket").value;
  timelineStatus("Loading…");
  document.body.dataset.timeline = "busy";
  try {
    const result = await loadTimeline(subject, fromDate.toISOString(), toDate.toISOString(), bucket, $("#tl-model").value.trim());
    const bucketMs = result.bucketSeconds * 1000;
    drawTimeline($("#tl-chart"), result.buckets, fromDate.getTime(), toDate.getTime(), bucketMs);
    fillTimelineTable(result.buckets);
    const faces = result.buckets.reduce((sum, entry) => sum + entry.face_count, 0);
    const objects = result.buckets.reduce((sum, entry) => sum + entry.objects, 0);
    const unscored = result.buckets.reduce((sum, entry) => sum + entry.objects_without_result, 0);
    $("#tl-model-shown").textContent = `Results of model version ${result.modelVersion}.` + (unscored
      ? ` ${unscored} objects have results of other versions only (${result.otherVersions.join(", ")}): not counted here (gray band); re-score them, or show that version.`
      : "");
    timelineStatus(`${objects} objects, ${faces} faces in ${result.buckets.length} buckets${result.truncated ? " (more pages not read)" : ""}.`);
    document.body.dataset.timeline = "done";
  } catch (error) {
    // Nothing of an earlier answer stays on screen under this subject's name.
    fillTimelineTable([]);
    startPlot($("#tl-chart"), TIMELINE_PAD);
    timelineStatus(timelineError(error, subject), true);
    document.body.dataset.timeline = error instanceof ApiError && [401, 403].includes(error.status) ? `http-${error.status}` : "error";
  }
}

// A refusal says what was refused and why, not only a code: 403 is this token's reach, 401 the token itself.
function timelineError(error, subject) {
  if (!(error instanceof ApiError)) return error.message;
  if (error.status === 404 && error.code === "not_found") return "The timeline is off on this server: it needs JWT auth or local serving.";
  if (error.status === 403) return `Forbidden: this token may not read the moods of subject ${subject} (${error.code}).`;
  if (error.status === 401) return `Not signed in: paste a valid token under "API token" (${error.code}).`;
  return `${error.message} (${error.code})`;
}

// ------------------------------------------------------------------ wiring

function showTab(name) {
  for (const tab of ["analyze", "timeline"]) {
    $(`#tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(`#${tab}`).hidden = tab !== name;
  }
}

function fillLegends() {
  for (const legend of document.querySelectorAll(".legend")) {
    for (const mood of MOODS) {
      const item = document.createElement("li");
      item.textContent = mood;
      item.style.setProperty("--swatch", MOOD_COLORS[mood]);
      legend.append(item);
    }
  }
}

function init() {
  fillLegends();
  $("#photo-input").addEventListener("change", onPhotoChosen);
  $("#camera-start").addEventListener("click", startCamera);
  $("#camera-stop").addEventListener("click", () => {
    stopCamera();
    setState("idle", "Webcam off.");
  });
  $("#tab-analyze").addEventListener("click", () => showTab("analyze"));
  $("#tab-timeline").addEventListener("click", () => showTab("timeline"));
  $("#timeline-form").addEventListener("submit", onTimelineSubmit);
  $("#token").addEventListener("change", onTokenChanged);
  const hourEnd = new Date();
  hourEnd.setMinutes(60, 0, 0);
  $("#tl-to").value = toLocalInputValue(hourEnd);
  $("#tl-from").value = toLocalInputValue(new Date(hourEnd.getTime() - 86400 * 1000));
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", init);
