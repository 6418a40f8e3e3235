"""Augmentation on the batch tensor: one random affine map plus a smooth elastic field per image.

Done as a single `grid_sample` over the whole batch, never per image in Python.
The affine part (small rotation, scale, shear, shift) and the elastic part
(Simard, Steinkraus & Platt 2003: random displacements smoothed, here by
upsampling a coarse 4x4 noise field bicubically) distort the digit the way
handwriting varies.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ROTATE_DEG = 10.0   # uniform in +-10 degrees
SCALE = 0.10        # uniform in 1 +- 0.10
SHEAR = 0.15        # uniform in +-0.15 (about 8.5 degrees)
SHIFT_PX = 2.0      # uniform in +-2 pixels each way
ELASTIC = 0.06      # std of the coarse field, in normalised coordinates (about 0.8 px)
ELASTIC_GRID = 4    # the coarse field's side: its smoothness


def distort(x: torch.Tensor, gen: torch.Generator, background: float,
                  draws: int | None = None, select: slice = slice(None)) -> torch.Tensor:
    """Distort a batch (B, 1, H, W); `gen` (on the CPU) draws every random number, so a seeded run
    is reproducible; `background` is the value of an empty pixel in x's normalisation.

    Under data parallelism x is this rank's `select` of a global batch of `draws` images:
    parameters are drawn for all of them, so each image gets what one process would give it."""
    b, _, h, w = x.shape
    draws = draws or b
    u = (torch.rand(draws, 5, generator=gen) * 2 - 1)[select]   # uniform in [-1, 1]
    angle = u[:, 0] * math.radians(ROTATE_DEG)
    scale = 1 + u[:, 1] * SCALE
    shear = u[:, 2] * SHEAR
    tx, ty = u[:, 3] * SHIFT_PX * 2 / w, u[:, 4] * SHIFT_PX * 2 / h
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, tx], 1),
                         torch.stack([sin, cos, ty], 1)], 1)     # (B, 2, 3): output -> input coords
    field = torch.randn(draws, 2, ELASTIC_GRID, ELASTIC_GRID, generator=gen)[select] * ELASTIC
    theta, field = theta.to(x.device, x.dtype), field.to(x.device, x.dtype)
    grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    grid = grid + F.interpolate(field, size=(h, w), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    # grid_sample fills outside with zeros: shift so that zero is the background.
    out = F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + background


def roughen(x: torch.Tensor, gen: torch.Generator, background: float, ink: float,
            draws: int | None = None, select: slice = slice(None)) -> torch.Tensor:
    """What real writing and scanning vary in, on a batch (B, 1, H, W) in any normalisation
    (`background`: an empty pixel; `ink`: full ink): pen width (grey dilation or erosion, partly
    mixed in), low resolution (reduced to 8-16 px and enlarged back), blur, and sensor noise.
    Each image gets each change with its own probability; draws as in `distort`."""
    b, _, h, w = x.shape
    draws = draws or b
    everyone = torch.rand(draws, 6, generator=gen)
    u = everyone[select]
    noise = torch.randn(draws, 1, h, w, generator=gen)[select]
    u, noise = u.to(x.device, x.dtype), noise.to(x.device, x.dtype)
    sign = 1.0 if ink > background else -1.0   # so that max pooling always spreads the ink
    y = x * sign
    thick = F.max_pool2d(y, 3, 1, 1)
    thin = -F.max_pool2d(-y, 3, 1, 1)
    amount = u[:, 1].view(-1, 1, 1, 1)
    pen = u[:, 0].view(-1, 1, 1, 1)
    y = torch.where(pen < 0.25, y + amount * (thick - y), y)            # a broader pen, 25%
    y = torch.where(pen > 0.88, y + amount * (thin - y), y)             # a finer one, 12%
    x = y * sign
    # Low resolution: the digit scanned at 8-16 px and enlarged again, 15%.
    side = int(8 + everyone[0, 2].item() * 8)  # one size a batch, the same on every rank
    low = F.interpolate(F.interpolate(x, size=(side, side), mode="area"), size=(h, w), mode="bilinear",
                        align_corners=False)
    x = torch.where((u[:, 3] < 0.15).view(-1, 1, 1, 1), low, x)
    # Blur, 15%: a 3x3 binomial kernel.
    k = torch.tensor([1.0, 2.0, 1.0], device=x.device, dtype=x.dtype)
    kernel = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3)
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel)
    x = torch.where((u[:, 4] < 0.15).view(-1, 1, 1, 1), blurred, x)
    # Noise, 15%: up to 8% of the ink's contrast.
    scale = (u[:, 5] < 0.15).to(x.dtype).view(-1, 1, 1, 1) * 0.08 * abs(ink - background)
    return x + noise * scale * u[:, 1].view(-1, 1, 1, 1)
