"""Inside the network for one image: every layer's output, which pixels decided, and the figure.

`explain` runs the NumPy forward pass layer by layer (the same code that predicts,
walking network.py's description), so what it shows is what was computed. The
saliency is occlusion: grey out each 4x4 patch of the 28x28 image in turn and see
how much each class's score drops (Zeiler & Fergus 2014); a pixel is as important
as the drops of the patches that cover it, in the class's log-probability (red: the ink
there spoke for the class, blue: against). It needs no gradients, so no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet.nn.network import Layer
from lenet.nn.numpy_model import NumpyModel, softmax
from lenet.reading.digit import preprocess

PATCH, STRIDE = 4, 2  # occlusion patch side and step, pixels of the 28x28


def layer_outputs(model: NumpyModel, seen: np.ndarray) -> list[tuple[Layer, np.ndarray]]:
    """(Layer, output for this image) per layer: maps as (C, H, W), vectors as (N,)."""
    outputs: list[tuple[Layer, np.ndarray]] = []
    for layer, (_, y) in zip(model.description, model.run_layers(model.normalize(seen[None])), strict=False):
        y = y[0]
        outputs.append((layer, y.transpose(2, 0, 1) if y.ndim == 3 else y))
    return outputs


def occlusion(model: NumpyModel, seen: np.ndarray) -> np.ndarray:
    """(classes, 28, 28): how much each class's log-probability drops when the pixel's patches are
    blanked (positive: the ink there spoke for that class)."""
    side = seen.shape[0]
    corners = [(y, x) for y in range(0, side - PATCH + 1, STRIDE) for x in range(0, side - PATCH + 1, STRIDE)]
    batch = np.repeat(seen[None], len(corners) + 1, axis=0)
    for i, (y, x) in enumerate(corners, start=1):
        batch[i, y:y + PATCH, x:x + PATCH] = 0  # background: no ink
    scores = model.forward(model.normalize(batch)).astype(np.float64)   # (1 + patches, classes)
    logp = scores - np.log(np.exp(scores - scores.max(1, keepdims=True)).sum(1, keepdims=True)) \
        - scores.max(1, keepdims=True)                       # log-probabilities: one class against the others
    drop = logp[0] - logp[1:]                                 # (patches, classes)
    total = np.zeros((scores.shape[1], side, side), np.float32)
    count = np.zeros((side, side), np.float32)
    for (y, x), d in zip(corners, drop, strict=True):
        total[:, y:y + PATCH, x:x + PATCH] += d[:, None, None]
        count[y:y + PATCH, x:x + PATCH] += 1
    return total / np.maximum(count, 1)


@dataclass(frozen=True)
class Explanation:
    """Inside the network for one image: what `lenet explain` draws and writes (`to_json`), and
    POST /explain answers (`tiles`)."""
    digit: int
    runner_up: int
    probabilities: np.ndarray                 # (classes,) float64
    seen: np.ndarray                          # the 28x28 uint8 the network saw
    layers: list[tuple[Layer, np.ndarray]]    # (Layer, its output): maps (C, H, W), vectors (N,)
    saliency: dict[int, np.ndarray]           # (28, 28) for the answer and the runner-up; empty when not asked

    def to_json(self) -> dict:
        """As `lenet explain --json` writes it: each layer's name, shape and values (rounded)."""
        return {
            "digit": self.digit, "runner_up": self.runner_up,
            "probabilities": [round(float(p), 6) for p in self.probabilities],
            "seen": self.seen.tolist(),
            "layers": [{"name": layer.name, "title": title(layer, v), "shape": list(v.shape),
                        "values": np.round(v.astype(np.float64), 5).tolist()} for layer, v in self.layers],
            "saliency": {str(k): np.round(v.astype(np.float64), 5).tolist() for k, v in self.saliency.items()},
        }

    def tiles(self, model: NumpyModel) -> dict:
        """The compact layers of POST /explain: each layer's name, shape and values (base64 uint8,
        C*H*W in that order), with the kernels of each convolution for the page to show when a map
        is touched (a pooling layer's maps point at the convolution before it); the prediction
        and its judgement are the route's (reading.predict.judged)."""
        layers: list[dict[str, object]] = []
        kernel = None
        for layer, values in self.layers:
            if layer.op == "conv":
                k = model.w[f"{layer.name}.weight"]
                k = k[:, 0] if k.shape[1] == 1 else k.mean(1)
                kernel = {"of": layer.name, "shape": list(k.shape), "values": to_bytes(k)}
            entry: dict[str, object] = {"name": layer.name, "title": title(layer, values),
                                        "shape": list(values.shape), "values": to_bytes(values)}
            if values.ndim == 3 and kernel is not None:
                entry["kernel"] = kernel
            layers.append(entry)
        probs = self.probabilities
        return {"digit": self.digit, "probability": round(float(probs[self.digit]), 6),
                "probabilities": [round(float(p), 6) for p in probs], "preprocessed": self.seen.tolist(),
                "layers": layers}


def explain(model: NumpyModel, pixels: np.ndarray, saliency: bool = True) -> Explanation:
    """Everything the figure and `--json` show for one image array."""
    return explain_seen(model, preprocess(pixels), saliency)


def explain_seen(model: NumpyModel, seen: np.ndarray, saliency: bool = True) -> Explanation:
    """The same for an image already prepared (28x28, white on black)."""
    layers = layer_outputs(model, seen)
    probs = softmax(layers[-1][1].astype(np.float64) / model.config.temperature)
    order = np.argsort(-probs)
    maps = occlusion(model, seen) if saliency else None
    return Explanation(int(order[0]), int(order[1]), probs, seen, layers,
                       {int(c): maps[c] for c in order[:2]} if maps is not None else {})


def title(layer, values: np.ndarray) -> str:
    """'C1 6@28x28', 'F6 84': the text's way of naming a layer and its shape."""
    if values.ndim == 3:
        c, h, w = values.shape
        return f"{layer.name.upper() if layer.name != 'output' else 'output'} {c}@{h}x{w}"
    return f"{layer.name.upper() if layer.name != 'output' else 'output'} {values.shape[0]}"


def to_bytes(values: np.ndarray) -> str:
    """Values as base64 of uint8, each map (or a whole vector) stretched to its own 0..255:
    what the drawing page draws, about a tenth of the size of the same numbers as JSON."""
    import base64

    v = values.astype(np.float32)
    maps = v.reshape(len(v), -1) if v.ndim == 3 and v[0].size > 1 else v.reshape(1, -1)  # C5's 1x1 maps: a vector
    lo, hi = maps.min(1, keepdims=True), maps.max(1, keepdims=True)
    scaled = np.where(hi > lo, (maps - lo) / np.where(hi > lo, hi - lo, 1), 0.5)
    return base64.b64encode(np.round(scaled * 255).astype(np.uint8).tobytes()).decode()


def mosaic(maps: np.ndarray, gap: int = 1) -> np.ndarray:
    """(C, H, W) -> one (H, C*(W+gap)) image, each map stretched to its own 0..1, NaN between them
    (drawn as the background) so each tile reads on its own."""
    c, h, w = maps.shape
    out = np.full((h, c * (w + gap) - gap), np.nan, np.float32)
    for i, m in enumerate(maps):
        lo, hi = float(m.min()), float(m.max())
        out[:, i * (w + gap):i * (w + gap) + w] = (m - lo) / (hi - lo) if hi > lo else 0.5
    return out


def kernel_mosaic(kernels: np.ndarray) -> np.ndarray:
    """(C, k, k) kernels side by side, NaN between them, values kept (signed, unlike `mosaic`)."""
    c, h, w = kernels.shape
    out = np.full((h, c * (w + 1) - 1), np.nan, np.float32)
    for i, k in enumerate(kernels):
        out[:, i * (w + 1):i * (w + 1) + w] = k
    return out


def draw_figure(result: Explanation, model: NumpyModel, pixels: np.ndarray, path: str | Path) -> Path:
    """One PNG that reads top to bottom like the text's figure (`explain_figure`)."""
    from lenet.files import write_atomic

    fig = explain_figure(result, model, pixels)
    path = Path(path)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    return path


def draw_images(top, result: Explanation, pixels: np.ndarray) -> None:
    """The figure's top row: the image as given, the 28x28 the network saw, and the saliency maps."""
    probs = result.probabilities
    given = np.asarray(pixels)
    given = given[..., 0] if given.ndim == 3 and given.shape[2] == 2 else given
    top.axis("off")
    panels: list[tuple[np.ndarray, str, str, tuple[float, float] | None]]
    panels = [(given, "the image as given", "gray", None),
              (result.seen, "what the network saw, 28x28", "gray", None)]
    for cls, sal in result.saliency.items():
        bound = float(np.abs(sal).max()) or 1.0
        panels.append((sal, f"what spoke for {cls} ({probs[cls]:.2f})", "bwr", (-bound, bound)))
    for i, (image, label, cmap, lim) in enumerate(panels):
        ax = top.inset_axes([i * 0.25, 0, 0.22, 1])
        ax.imshow(image, cmap=cmap, vmin=lim[0] if lim else None, vmax=lim[1] if lim else None)
        ax.set_title(label, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])


def explain_figure(result: Explanation, model: NumpyModel, pixels: np.ndarray):
    """The matplotlib Figure: the input, what the network saw, every layer by its name and shape,
    the learned C1 and C3 kernels, and the saliency maps. Each layer's maps are one row of tiles
    (one image, so the figure draws in about a second)."""
    from lenet.figures import figure

    maps = [(layer, v) for layer, v in result.layers if v.ndim == 3 and v.shape[1] > 1]
    vectors = [(layer, v.reshape(-1)) for layer, v in result.layers if v.ndim == 1 or v.shape[1] == 1]
    kernels = []
    for name in ("c1", "c3"):
        k = model.w[f"{name}.weight"]  # (out, in, k, k); fast's batch norm is folded in
        kernels.append((f"{name.upper()} kernels" + (", mean over its inputs" if k.shape[1] > 1 else ""),
                        k[:, 0] if k.shape[1] == 1 else k.mean(1)))
    rows = 1 + len(maps) + len(vectors) + len(kernels)
    # Constrained layout makes room for every row's title and tick labels, so none overlaps the row above.
    fig = figure(figsize=(10, 1.3 * rows + 1.2), layout="constrained")
    axes = fig.subplots(rows, 1, gridspec_kw={"height_ratios": [2.2] + [1] * (rows - 1)})
    digit, runner, probs = result.digit, result.runner_up, result.probabilities
    draw_images(axes[0], result, pixels)
    row = 1
    for layer, v in maps:
        axes[row].imshow(mosaic(v), cmap="gray", aspect="equal")
        axes[row].set_title(title(layer, v), fontsize=8, loc="left")
        row += 1
    for layer, v in vectors:
        ax = axes[row]
        if layer.name == "output":
            ax.bar(range(len(probs)), probs, color=["#d2691e" if i == digit else "#3a6ea5" for i in range(len(probs))])
            ax.set_xticks(range(len(probs)))
            ax.set_ylim(0, 1)
            ax.set_title(f"output {len(probs)}: probabilities (answer {digit}, runner-up {runner})", fontsize=8,
                         loc="left")
        else:
            ax.imshow(v[None, :], cmap="gray", aspect="auto")
            ax.set_yticks([])
            ax.set_title(f"{layer.name.upper()} {len(v)}", fontsize=8, loc="left")
        ax.tick_params(labelsize=6)
        row += 1
    for label, k in kernels:
        bound = float(np.abs(k).max()) or 1.0
        axes[row].imshow(kernel_mosaic(k), cmap="bwr", vmin=-bound, vmax=bound, aspect="equal")
        axes[row].set_title(label + " (red +, blue -)", fontsize=8, loc="left")
        row += 1
    for ax in axes[1:]:
        if not ax.get_title(loc="left").startswith("output"):  # the output row keeps its digits
            ax.set_xticks([])
            ax.set_yticks([])
    return fig
