"""How the filters learn: `lenet train --snapshots` records C1's kernels and one test digit's C1 and
C3 maps as training goes, and draws them as learning.png (one row per snapshot) and learning.gif.

Snapshots are taken before the first step, eight times during the first epoch (where most of
the change happens) and after every epoch. Taking one reads the weights and runs one image
through `model.layers()` in evaluation mode: it changes nothing that training uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lenet.evaluation.explain import kernel_mosaic, mosaic


class Snapshots:
    """The record, in memory (a resumed run starts a new one from where it resumed)."""

    def __init__(self, model, digit: torch.Tensor, config):
        self.model, self.config = model, config
        self.digit = digit  # uint8 (28, 28), a fixed test image
        self.rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []

    @torch.no_grad()
    def take(self, label: str) -> None:
        """Record C1's kernels and the digit's C1 and C3 maps now, labelled `label`."""
        was_training = self.model.training
        self.model.eval()
        try:
            x = self.config.normalize(self.digit[None, None].float().to(next(self.model.parameters()).device))
            maps = {name: out[0].float().cpu().numpy() for name, out in self.model.layers(x) if name in ("c1", "c3")}
        finally:
            self.model.train(was_training)
        kernels = self.model.c1.weight[:, 0].detach().float().cpu().numpy()
        self.rows.append((label, kernels, maps["c1"], maps["c3"]))

    def write(self, out: Path) -> list[Path]:
        """learning.png and learning.gif in `out`."""
        return [self.write_strip(out / "learning.png"), self.write_gif(out / "learning.gif")]

    def write_strip(self, path: Path) -> Path:
        from lenet.figures import figure
        from lenet.files import write_atomic

        fig = figure(figsize=(16, 0.75 * len(self.rows) + 0.6))
        axes = fig.subplots(len(self.rows), 3, gridspec_kw={"width_ratios": [2, 3, 4]}, squeeze=False)
        for r, (label, kernels, c1, c3) in enumerate(self.rows):
            bound = float(np.abs(kernels).max()) or 1.0
            axes[r, 0].imshow(kernel_mosaic(kernels), cmap="bwr", vmin=-bound, vmax=bound)
            axes[r, 1].imshow(mosaic(c1), cmap="gray")
            axes[r, 2].imshow(mosaic(c3), cmap="gray")
            axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
            for ax in axes[r]:
                ax.set_xticks([])
                ax.set_yticks([])
        for ax, name in zip(axes[0], ("C1 kernels", "C1 maps of one test digit", "C3 maps"), strict=False):
            ax.set_title(name, fontsize=9)
        write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
        return path

    def write_gif(self, path: Path) -> Path:
        from PIL import Image, ImageDraw

        from lenet.files import write_atomic

        frames = []
        for label, kernels, c1, _ in self.rows:
            k = kernel_mosaic(kernels)
            k = np.nan_to_num((k / (np.nanmax(np.abs(k)) or 1.0) + 1) / 2, nan=1.0)  # -max..max -> 0..1
            m = np.nan_to_num(mosaic(c1), nan=1.0)
            scale_k, scale_m = 8, 3
            top = np.kron(k, np.ones((scale_k, scale_k)))
            bottom = np.kron(m, np.ones((scale_m, scale_m)))
            width = max(top.shape[1], bottom.shape[1])
            canvas = np.ones((20 + top.shape[0] + 6 + bottom.shape[0], width))
            canvas[20:20 + top.shape[0], :top.shape[1]] = top
            canvas[26 + top.shape[0]:, :bottom.shape[1]] = bottom
            frame = Image.fromarray((canvas * 255).astype(np.uint8), "L").convert("P")
            ImageDraw.Draw(frame).text((2, 4), label, fill=0)
            frames.append(frame)
        write_atomic(path, lambda tmp: frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                                                      duration=600, loop=0))
        return path

