"""Batch augmentation in torch, on whatever device the data lives on (GPU sweeps stay on the GPU).

It imitates what our detector's crop hands the classifier: the MTCNN box plus margin is not
FER2013's framing, so faces arrive a little larger or smaller, shifted and tilted; phone photos
vary in exposure and focus. Hence random scale/shift/rotation, horizontal flip,
brightness/contrast and blur, plus optional cutout.

With a ``PipelineCrops`` table (``model_build/geometry.py``: where meaa's own MTCNN puts its margin-0
square on each training face), a share of the batch is instead cut the way the service cuts it: that
square, with only the small jitter of the detector itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    scale: float = 0.15  # zoom in [1 - scale, 1 + scale]
    shift: float = 0.10  # fraction of the side
    rotation_deg: float = 12.0
    flip: bool = True
    brightness: float = 0.2  # additive, in the [-1, 1] input range
    contrast: float = 0.3  # multiplicative around the image mean, in [1 - c, 1 + c]
    blur_prob: float = 0.25
    blur_sigma: tuple[float, float] = (0.4, 1.2)
    cutout_prob: float = 0.0
    cutout_fraction: tuple[float, float] = (0.2, 0.45)
    # Share of the faces that have a detector box which are cut at that box (the service's crop).
    pipeline_crop_prob: float = 0.0
    pipeline_jitter_scale: float = 0.05  # zoom jitter around the detector's square
    pipeline_jitter_shift: float = 0.03  # fraction of the side
    pipeline_rotation_deg: float = 5.0


@dataclass(frozen=True)
class PipelineCrops:
    """Per training image (tensors on the training device): whether the detector found the face, the
    side of its margin-0 square over the image side, and its centre's offset from the image centre as a
    fraction of the side (x, y)."""

    found: torch.Tensor
    scale: torch.Tensor
    center: torch.Tensor

    def take(self, index: torch.Tensor) -> PipelineCrops:
        return PipelineCrops(self.found[index], self.scale[index], self.center[index])


def to_model_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [N,1,H,W] -> float32 scaled x / 255 * 2 - 1 (the exported model's input contract)."""
    return images_uint8.float() * (2.0 / 255.0) - 1.0


def resize_for_model(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize with half-pixel centres (what cv2.INTER_LINEAR does when upsampling)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def _gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample 5x5 Gaussian blur via a grouped convolution."""
    n, c, h, w = images.shape
    offsets = torch.arange(-2, 3, device=images.device, dtype=images.dtype)
    kernel_1d = torch.exp(-(offsets[None, :] ** 2) / (2 * sigma[:, None] ** 2))
    kernel_1d = kernel_1d / kernel_1d.sum(dim=1, keepdim=True)
    kernel = (kernel_1d[:, :, None] * kernel_1d[:, None, :])[:, None]  # [n,1,5,5]
    padded = F.pad(images.reshape(1, n * c, h, w), (2, 2, 2, 2), mode="replicate")
    return F.conv2d(padded, kernel.repeat_interleave(c, dim=0), groups=n * c).reshape(n, c, h, w)


def augment_batch(
    images_uint8: torch.Tensor,
    size: int,
    config: AugmentConfig,
    generator: torch.Generator,
    crops: PipelineCrops | None = None,
) -> torch.Tensor:
    """uint8 [N,1,h,w] -> augmented float [N,1,size,size] in [-1, 1].

    ``crops`` (this batch's rows of a ``PipelineCrops`` table) enables the service-like crops.
    """
    device = images_uint8.device
    x = to_model_range(images_uint8)
    n = x.shape[0]
    angle = _uniform(n, -1, 1, generator, device) * math.radians(config.rotation_deg)
    inverse_zoom = 1.0 / _uniform(n, 1 - config.scale, 1 + config.scale, generator, device)
    shift_x = _uniform(n, -1, 1, generator, device) * 2 * config.shift
    shift_y = _uniform(n, -1, 1, generator, device) * 2 * config.shift
    if crops is not None and config.pipeline_crop_prob > 0:
        # The output square is the detector's: side `scale` (in image sides) around its centre. In
        # affine_grid's [-1, 1] coordinates that is zoom `scale` and shift 2 * centre, plus a small jitter.
        use = crops.found & (torch.rand(n, generator=generator, device=device) < config.pipeline_crop_prob)
        jitter = config.pipeline_jitter_scale
        pipeline_zoom = crops.scale * _uniform(n, 1 - jitter, 1 + jitter, generator, device)
        pipeline_x = 2 * crops.center[:, 0] + _uniform(n, -1, 1, generator, device) * 2 * config.pipeline_jitter_shift
        pipeline_y = 2 * crops.center[:, 1] + _uniform(n, -1, 1, generator, device) * 2 * config.pipeline_jitter_shift
        pipeline_angle = _uniform(n, -1, 1, generator, device) * math.radians(config.pipeline_rotation_deg)
        inverse_zoom = torch.where(use, pipeline_zoom, inverse_zoom)
        shift_x = torch.where(use, pipeline_x, shift_x)
        shift_y = torch.where(use, pipeline_y, shift_y)
        angle = torch.where(use, pipeline_angle, angle)
    flip = torch.ones(n, device=device)
    if config.flip:
        flip = torch.where(torch.rand(n, generator=generator, device=device) < 0.5, -flip, flip)
    theta = torch.zeros(n, 2, 3, device=device)
    cos, sin = torch.cos(angle) * inverse_zoom, torch.sin(angle) * inverse_zoom
    theta[:, 0, 0] = cos * flip
    theta[:, 0, 1] = -sin
    theta[:, 1, 0] = sin * flip
    theta[:, 1, 1] = cos
    theta[:, 0, 2] = shift_x
    theta[:, 1, 2] = shift_y
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)
    # Outside the source is black (-1), as meaa's crops are padded outside the photo.
    x = F.grid_sample(x + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0

    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = _uniform(n, 1 - config.contrast, 1 + config.contrast, generator, device)[:, None, None, None]
    brightness = _uniform(n, -config.brightness, config.brightness, generator, device)[:, None, None, None]
    x = (x - mean) * contrast + mean + brightness

    if config.blur_prob > 0:
        sigma = _uniform(n, *config.blur_sigma, generator, device)
        blurred = _gaussian_blur(x, sigma)
        use_blur = (torch.rand(n, generator=generator, device=device) < config.blur_prob)[:, None, None, None]
        x = torch.where(use_blur, blurred, x)

    if config.cutout_prob > 0:
        side = (_uniform(n, *config.cutout_fraction, generator, device) * size)[:, None, None]
        cy = _uniform(n, 0, size, generator, device)[:, None, None]
        cx = _uniform(n, 0, size, generator, device)[:, None, None]
        rows = torch.arange(size, device=device, dtype=x.dtype)[None, :, None]
        cols = torch.arange(size, device=device, dtype=x.dtype)[None, None, :]
        inside = ((rows - cy).abs() < side / 2) & ((cols - cx).abs() < side / 2)
        use_cutout = (torch.rand(n, generator=generator, device=device) < config.cutout_prob)[:, None, None]
        x = torch.where((inside & use_cutout)[:, None], torch.zeros_like(x), x)

    return x.clamp(-1.0, 1.0)
