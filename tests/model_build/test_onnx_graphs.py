"""model_build/onnx_graphs.py against independent torch forward passes, on random weights.

Runs in model_build's venv (torch, onnx, onnxruntime). The published weights are checked against
their source packages by model_build/verify.py and tests/unit/test_model_parity.py; these tests pin
down the translation rules themselves (ceil-mode pooling, the R/O-Net flatten order, BatchNorm folding,
TensorFlow's asymmetric 'same' padding) with no download.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from model_build import onnx_graphs

TOLERANCE = 1e-4


def run(model, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"image": x}), strict=False))


def random_state(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    """Weights scaled by 1/sqrt(fan-in), so activations stay O(1) as in a trained network."""
    rng = np.random.default_rng(seed)
    return {
        name: (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]) if len(shape) > 1 else 10.0)).astype(np.float32)
        for name, shape in shapes.items()
    }


def conv_prelu(x: torch.Tensor, s: dict[str, torch.Tensor], conv: str, prelu: str) -> torch.Tensor:
    return F.prelu(F.conv2d(x, s[f"{conv}.weight"], s[f"{conv}.bias"]), s[f"{prelu}.weight"])


PNET_SHAPES = {
    "conv1.weight": (10, 3, 3, 3),
    "conv1.bias": (10,),
    "prelu1.weight": (10,),
    "conv2.weight": (16, 10, 3, 3),
    "conv2.bias": (16,),
    "prelu2.weight": (16,),
    "conv3.weight": (32, 16, 3, 3),
    "conv3.bias": (32,),
    "prelu3.weight": (32,),
    "conv4_1.weight": (2, 32, 1, 1),
    "conv4_1.bias": (2,),
    "conv4_2.weight": (4, 32, 1, 1),
    "conv4_2.bias": (4,),
}
ONET_SHAPES = {
    "conv1.weight": (32, 3, 3, 3),
    "conv1.bias": (32,),
    "prelu1.weight": (32,),
    "conv2.weight": (64, 32, 3, 3),
    "conv2.bias": (64,),
    "prelu2.weight": (64,),
    "conv3.weight": (64, 64, 3, 3),
    "conv3.bias": (64,),
    "prelu3.weight": (64,),
    "conv4.weight": (128, 64, 2, 2),
    "conv4.bias": (128,),
    "prelu4.weight": (128,),
    "dense5.weight": (256, 1152),
    "dense5.bias": (256,),
    "prelu5.weight": (256,),
    "dense6_1.weight": (2, 256),
    "dense6_1.bias": (2,),
    "dense6_2.weight": (4, 256),
    "dense6_2.bias": (4,),
    "dense6_3.weight": (10, 256),
    "dense6_3.bias": (10,),
}


@pytest.mark.parametrize("height,width", [(12, 12), (13, 17), (37, 53), (64, 31)])
def test_pnet_graph_matches_torch_with_ceil_mode_pooling(height: int, width: int) -> None:
    state = random_state(PNET_SHAPES, seed=1)
    s = {k: torch.from_numpy(v) for k, v in state.items()}
    x = np.random.default_rng(2).uniform(-1, 1, (2, 3, height, width)).astype(np.float32)
    h = F.max_pool2d(conv_prelu(torch.from_numpy(x), s, "conv1", "prelu1"), 2, 2, ceil_mode=True)
    h = conv_prelu(conv_prelu(h, s, "conv2", "prelu2"), s, "conv3", "prelu3")
    expected_prob = F.softmax(F.conv2d(h, s["conv4_1.weight"], s["conv4_1.bias"]), dim=1).numpy()
    expected_reg = F.conv2d(h, s["conv4_2.weight"], s["conv4_2.bias"]).numpy()
    out = run(onnx_graphs.build_pnet(state), x)
    np.testing.assert_allclose(out["prob"], expected_prob, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(out["reg"], expected_reg, atol=TOLERANCE, rtol=0)


def test_onet_graph_keeps_facenets_permuted_flatten_order() -> None:
    state = random_state(ONET_SHAPES, seed=3)
    s = {k: torch.from_numpy(v) for k, v in state.items()}
    x = np.random.default_rng(4).uniform(-1, 1, (5, 3, 48, 48)).astype(np.float32)
    h = F.max_pool2d(conv_prelu(torch.from_numpy(x), s, "conv1", "prelu1"), 3, 2, ceil_mode=True)
    h = F.max_pool2d(conv_prelu(h, s, "conv2", "prelu2"), 3, 2, ceil_mode=True)
    h = F.max_pool2d(conv_prelu(h, s, "conv3", "prelu3"), 2, 2, ceil_mode=True)
    h = conv_prelu(h, s, "conv4", "prelu4").permute(0, 3, 2, 1).reshape(5, -1)  # facenet-pytorch's order
    h = F.prelu(F.linear(h, s["dense5.weight"], s["dense5.bias"]), s["prelu5.weight"])
    expected = {
        "prob": F.softmax(F.linear(h, s["dense6_1.weight"], s["dense6_1.bias"]), dim=1).numpy(),
        "reg": F.linear(h, s["dense6_2.weight"], s["dense6_2.bias"]).numpy(),
        "landmarks": F.linear(h, s["dense6_3.weight"], s["dense6_3.bias"]).numpy(),
    }
    out = run(onnx_graphs.build_onet(state), x)
    for name, value in expected.items():
        np.testing.assert_allclose(out[name], value, atol=TOLERANCE, rtol=0, err_msg=name)


@pytest.mark.parametrize(
    "size,kernel,stride,pads",
    [
        (60, 3, 2, (0, 1)),
        (30, 3, 2, (0, 1)),
        (15, 3, 2, (1, 1)),
        (8, 3, 2, (0, 1)),
        (64, 1, 2, (0, 0)),
        (15, 1, 2, (0, 0)),
        (30, 3, 1, (1, 1)),
    ],
)
def test_keras_same_padding_puts_the_odd_pixel_bottom_right(size: int, kernel: int, stride: int, pads) -> None:
    assert onnx_graphs._keras_same_pads(size, kernel, stride) == pads


def tf_same(x: torch.Tensor, kernel: int, stride: int, value: float) -> torch.Tensor:
    """Pad square NCHW like TensorFlow's 'same': output ceil(n / stride), the odd pixel at the bottom/right."""
    size = x.shape[2]
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    before = total // 2
    return F.pad(x, (before, total - before, before, total - before), value=value)


def layer(kind: str, name: str, inputs: list[str], **config) -> dict:
    return {
        "class_name": kind,
        "name": name,
        "config": {"name": name, **config},
        "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]] if inputs else [],
    }


def conv_config(filters: int, kernel: int, stride: int, padding: str, use_bias: bool = False) -> dict:
    return {
        "filters": filters,
        "kernel_size": [kernel, kernel],
        "strides": [stride, stride],
        "padding": padding,
        "use_bias": use_bias,
        "activation": "linear",
        "data_format": "channels_last",
        "dilation_rate": [1, 1],
    }


def bn_config() -> dict:
    return {"axis": -1, "epsilon": 0.001, "center": True, "scale": True}


def test_emotion_builder_folds_batchnorm_and_pads_like_tensorflow() -> None:
    """A one-block mini-Xception (residual branch, separable conv, 'same' max-pool on an even size)."""
    config = {
        "config": {
            "layers": [
                layer("InputLayer", "input", [], batch_input_shape=[None, 64, 64, 1]),
                layer("Conv2D", "c1", ["input"], **conv_config(4, 3, 1, "valid")),
                layer("BatchNormalization", "bn1", ["c1"], **bn_config()),
                layer("Activation", "relu1", ["bn1"], activation="relu"),
                layer("SeparableConv2D", "sep", ["relu1"], depth_multiplier=1, **conv_config(6, 3, 1, "same")),
                layer("BatchNormalization", "bn2", ["sep"], **bn_config()),
                layer(
                    "MaxPooling2D",
                    "pool",
                    ["bn2"],
                    pool_size=[3, 3],
                    strides=[2, 2],
                    padding="same",
                    data_format="channels_last",
                ),
                layer("Conv2D", "res", ["relu1"], **conv_config(6, 1, 2, "same")),
                layer("BatchNormalization", "bn3", ["res"], **bn_config()),
                layer("Add", "add", ["pool", "bn3"]),
                layer("Conv2D", "head", ["add"], **conv_config(7, 3, 1, "same", use_bias=True)),
                layer("GlobalAveragePooling2D", "gap", ["head"], data_format="channels_last"),
                layer("Activation", "predictions", ["gap"], activation="softmax"),
            ],
            "output_layers": [["predictions", 0, 0]],
        }
    }
    rng = np.random.default_rng(5)

    def bn(channels: int) -> dict[str, np.ndarray]:
        return {
            "gamma": rng.uniform(0.5, 1.5, channels),
            "beta": rng.normal(0, 0.3, channels),
            "moving_mean": rng.normal(0, 0.3, channels),
            "moving_variance": rng.uniform(0.2, 2.0, channels),
        }

    weights = {
        "c1": {"kernel": rng.normal(0, 0.5, (3, 3, 1, 4))},
        "bn1": bn(4),
        "sep": {
            "depthwise_kernel": rng.normal(0, 0.5, (3, 3, 4, 1)),
            "pointwise_kernel": rng.normal(0, 0.5, (1, 1, 4, 6)),
        },
        "bn2": bn(6),
        "res": {"kernel": rng.normal(0, 0.5, (1, 1, 4, 6))},
        "bn3": bn(6),
        "head": {"kernel": rng.normal(0, 0.5, (3, 3, 6, 7)), "bias": rng.normal(0, 0.3, 7)},
    }
    weights = {k: {n: v.astype(np.float32) for n, v in w.items()} for k, w in weights.items()}
    model = onnx_graphs.build_emotion(weights, config)
    assert "BatchNormalization" not in {node.op_type for node in model.graph.node}

    t = {k: {n: torch.from_numpy(v) for n, v in w.items()} for k, w in weights.items()}

    def conv(x, kernel, bias=None, stride=1, groups=1):
        w = kernel.permute(3, 2, 0, 1) if groups == 1 else kernel.permute(2, 3, 0, 1)
        return F.conv2d(x, w, bias, stride=stride, groups=groups)

    def batchnorm(x, w):
        return F.batch_norm(x, w["moving_mean"], w["moving_variance"], w["gamma"], w["beta"], False, 0.0, 1e-3)

    x = np.random.default_rng(6).uniform(-1, 1, (3, 1, 64, 64)).astype(np.float32)
    h = F.relu(batchnorm(conv(torch.from_numpy(x), t["c1"]["kernel"]), t["bn1"]))  # 62x62
    s = conv(tf_same(h, 3, 1, 0.0), t["sep"]["depthwise_kernel"], groups=4)
    s = batchnorm(conv(s, t["sep"]["pointwise_kernel"]), t["bn2"])
    s = F.max_pool2d(tf_same(s, 3, 2, float("-inf")), 3, 2)  # 62 -> 31, one extra row/column at the end
    r = batchnorm(conv(h, t["res"]["kernel"], stride=2), t["bn3"])
    head = conv(tf_same(s + r, 3, 1, 0.0), t["head"]["kernel"], t["head"]["bias"])
    expected = F.softmax(head.mean(dim=(2, 3)), dim=1).numpy()
    np.testing.assert_allclose(run(model, x)["probabilities"], expected, atol=TOLERANCE, rtol=0)


def test_graphs_serialise_to_the_same_bytes_every_time() -> None:
    state = random_state(PNET_SHAPES, seed=7)
    first = onnx_graphs.build_pnet(state).SerializeToString(deterministic=True)
    second = onnx_graphs.build_pnet(state).SerializeToString(deterministic=True)
    assert first == second
