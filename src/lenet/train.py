"""Training: batches from in-memory uint8 tensors, the loop, evaluation, checkpoints.

The data never leaves memory and never passes through per-sample Python: an
epoch is a seeded permutation of indices, each batch is a slice converted to
float and normalised on the spot. Every epoch's order comes from (seed,
epoch), and the random state mid-epoch is saved with the checkpoint, so a
resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import math
import platform
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import __version__
from .checkpoint import CHECKPOINT_FILE, MODEL_FILE, load_checkpoint, save_checkpoint, save_model
from .files import FolderLock, clean_stale_temps, write_text_atomic
from .config import ModelConfig, Recipe
from .data import Dataset
from .distributed import Dist
from .model import build_model, count_parameters, init_weights, normalize

EVAL_BATCH = 256  # batches whose activations stay in cache: fast evaluates 1.6x faster than at 1000


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C or SIGTERM after a resumable checkpoint was written."""


class StopRequest:
    """Turns the first Ctrl-C (or SIGTERM) into a flag the loop checks between batches, so the
    checkpoint never holds half a step; a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Diverged(ValueError):
    """The loss became NaN or infinite: nothing from that point on is saved."""


CHECK_EVERY = 50  # batches between checks that the loss is still finite (each check waits for the device)


class _Stopped(Exception):
    def __init__(self, step, running, generator):
        super().__init__(step)
        self.step, self.running, self.generator = step, running, generator


@dataclass
class Split:
    images: torch.Tensor  # uint8 (N, H, W), on the training device
    labels: torch.Tensor  # int64 (N,)
    name: str

    def __len__(self) -> int:
        return len(self.labels)


def make_splits(ds: Dataset, device: torch.device, subset: int | None = None,
                holdout: int = 0) -> tuple[Split, Split]:
    """(train, validation). Validation is the whole test set, as in the tutorial, or with
    `holdout` > 0 the last `holdout` training images (for choosing hyperparameters honestly)."""
    x, y = ds.train_images, ds.train_labels
    if holdout:
        if not 0 < holdout < len(y):
            raise ValueError(f"--holdout {holdout}: must be between 1 and {len(y) - 1}")
        val = Split(torch.from_numpy(x[-holdout:].copy()), torch.from_numpy(y[-holdout:].astype(np.int64)),
                    f"holdout (last {holdout:,} training images)")
        x, y = x[:-holdout], y[:-holdout]
    else:
        val = Split(torch.from_numpy(ds.test_images.copy()), torch.from_numpy(ds.test_labels.astype(np.int64)),
                    "test")
    if subset:
        x, y = x[:subset], y[:subset]
    train = Split(torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64)), "train")
    for s in (train, val):
        s.images, s.labels = s.images.to(device), s.labels.to(device)
    return train, val


def lr_at(step: int, total: int, recipe: Recipe) -> float:
    """Learning rate for a global step: constant, or one-cycle (linear warm-up over 20%, cosine to 0)."""
    if recipe.schedule == "constant":
        return recipe.lr
    warm = max(1, int(0.2 * total))
    if step < warm:
        return recipe.lr * (step + 1) / warm
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def make_optimizer(model, recipe: Recipe) -> torch.optim.Optimizer:
    # Weight decay on weights only: decaying biases and batch-norm scales only hurts.
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    # One fused kernel for all parameters instead of a loop over them: the step costs
    # 75 instead of 200 us for lenet5 on CPU, a few % of a training step (benchmarks/).
    fused = all(p.device.type in ("cpu", "cuda") for p in model.parameters())
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum,
                               nesterov=recipe.nesterov and recipe.momentum > 0, fused=fused)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(groups, lr=recipe.lr, fused=fused)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr, fused=fused)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")


def match_parameter_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give each per-parameter state tensor (momentum, Adam's moments) its parameter's memory
    layout. A checkpoint stores them contiguous; a fused step walks parameter and state as
    flat memory, so a channels-last weight with a contiguous momentum would be updated wrongly."""
    for p, slots in optimizer.state.items():
        for name, value in slots.items():
            if torch.is_tensor(value) and value.shape == p.shape:
                slots[name] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


@dataclass
class Running:
    """Sums over the batches seen so far in an epoch, kept as tensors: no sync per batch."""
    loss: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.float64))
    correct: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.int64))
    seen: int = 0

    def to_dict(self) -> dict:
        return {"loss": float(self.loss), "correct": int(self.correct), "seen": self.seen}

    @classmethod
    def from_dict(cls, d: dict, device) -> "Running":
        return cls(torch.tensor(d["loss"], dtype=torch.float64, device=device),
                   torch.tensor(d["correct"], dtype=torch.int64, device=device), d["seen"])


def train_one_epoch(model, optimizer, train: Split, config: ModelConfig, recipe: Recipe, *,
                    epoch: int, seed: int, start_step: int = 0, running: Running | None = None,
                    generator_state: torch.Tensor | None = None, steps_before: int = 0, total_steps: int = 1,
                    log_every: int = 50, log=print, progress: bool = False,
                    stop: StopRequest | None = None, channels_last: bool = False,
                    dist: Dist | None = None) -> Running:
    """One pass over `train` in the order (seed, epoch) fixes; returns the epoch's sums.
    When `stop` is requested, raises _Stopped between two batches with where it stopped.

    Under torchrun (`dist.active`), every rank draws the same order and takes every
    world-th image of each global batch of `recipe.batch_size`: distinct shards that
    together make the same global batches as one process would see."""
    dist = dist or Dist(device=train.labels.device)
    model.train()
    device = train.labels.device
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    gen = epoch_generator(seed, epoch)
    order = torch.randperm(len(train), generator=gen).to(device)
    if generator_state is not None:
        gen.set_state(generator_state)
    n_batches = batches_per_epoch(len(train), recipe.batch_size, dist.world)
    mine = slice(dist.rank, None, dist.world)
    run = running or Running(torch.zeros((), dtype=torch.float64, device=device),
                             torch.zeros((), dtype=torch.int64, device=device), 0)
    augment = None
    if recipe.augment:
        from .augment import random_affine
        augment = random_affine
        background = (0 - config.mean) / config.std  # an empty pixel after normalisation
    bar = None
    if progress and dist.is_main:
        from tqdm import tqdm
        bar = tqdm(total=n_batches, initial=start_step, desc=f"epoch {epoch + 1}", unit="batch",
                   leave=False, dynamic_ncols=True)
        log = bar.write
    try:
        for step in range(start_step, n_batches):
            if stop is not None and stop.requested:
                raise _Stopped(step, run, gen.get_state())
            batch = order[step * recipe.batch_size:(step + 1) * recipe.batch_size]
            idx = batch[mine]
            x = normalize(train.images[idx], config).contiguous(memory_format=memory_format)
            y = train.labels[idx]
            if augment is not None:
                # Draws for the whole global batch, so every rank's stream stays the same.
                x = augment(x, gen, background, draws=len(batch), select=mine)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(steps_before + step, total_steps, recipe)
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            run.loss += loss.detach().double() * len(y)
            run.correct += (logits.detach().argmax(1) == y).sum()
            run.seen += len(y)
            if bar is not None:
                bar.update(1)
            if (step + 1) % CHECK_EVERY == 0 and not torch.isfinite(run.loss):
                raise Diverged(f"training diverged: the loss became NaN or infinite in epoch {epoch + 1} "
                               f"by batch {step + 1} (learning rate {optimizer.param_groups[0]['lr']:g})")
            if log_every and (step + 1) % log_every == 0:
                loss_sum, correct, seen = reduce_sums(run, dist)
                if dist.is_main:
                    log(f"epoch {epoch + 1} batch {step + 1}/{n_batches}  "
                        f"loss {loss_sum / seen:.4f}  acc {correct / seen:.4f}")
    finally:
        if bar is not None:
            bar.close()
    return run


def batches_per_epoch(n: int, batch_size: int, world: int = 1) -> int:
    """Every image once; under torchrun a last batch too small to give each rank an image is dropped."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= world else 0)


def reduce_sums(run: Running, dist: Dist) -> tuple[float, int, int]:
    """(loss sum, correct, seen) over all ranks."""
    t = torch.stack([run.loss, run.correct.double(), torch.tensor(float(run.seen), dtype=torch.float64,
                                                                 device=run.loss.device)])
    dist.all_reduce(t)
    return float(t[0]), int(t[1]), int(t[2])


@torch.inference_mode()
def evaluate(model, split: Split, config: ModelConfig, batch_size: int = EVAL_BATCH,
             return_probabilities: bool = False, dist: Dist | None = None) -> dict:
    """Loss, accuracy and per-class accuracy over every image of `split` (no batch is dropped).
    Under torchrun each rank scores every world-th image and the sums are reduced: each image
    is scored exactly once. Predictions and probabilities are single-process only."""
    model.eval()
    dist = dist or Dist(device=split.labels.device)
    images, labels = split.images[dist.rank::dist.world], split.labels[dist.rank::dist.world]
    n = len(split)
    num_classes = config.num_classes
    loss = torch.zeros((), dtype=torch.float64, device=split.labels.device)
    preds, probs = [], []
    for i in range(0, len(labels), batch_size):
        # Channels-last input (and model, see evaluate_models and fit): 2.4x faster on CPU for lenet5.
        x = normalize(images[i:i + batch_size], config).contiguous(memory_format=torch.channels_last)
        y = labels[i:i + batch_size]
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum").double()
        preds.append(logits.argmax(1))
        if return_probabilities:
            probs.append(torch.softmax(logits.float(), 1))
    pred = torch.cat(preds) if preds else labels[:0]
    hit = pred == labels
    sums = torch.cat([loss.view(1), torch.bincount(labels, minlength=num_classes).double(),
                      torch.bincount(labels[hit], minlength=num_classes).double()])
    dist.all_reduce(sums)
    per_class_total, per_class_hit = sums[1:1 + num_classes], sums[1 + num_classes:]
    correct = int(per_class_hit.sum())
    result = {
        "n": n,
        "loss": float(sums[0]) / n,
        "accuracy": correct / n,
        "correct": correct,
        "per_class_accuracy": (per_class_hit / per_class_total.clamp(min=1)).tolist(),
        "predictions": None if dist.active else pred.cpu().numpy(),
    }
    if return_probabilities and not dist.active:
        result["probabilities"] = torch.cat(probs).cpu().numpy()
    return result


def all_finite(model) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available (use --device auto or cpu)")
    return torch.device(name)


def versions() -> dict:
    return {"lenet": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads"}


def write_metrics_csv(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    cols = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "images_per_second", "lr"]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    write_text_atomic(path, buf.getvalue())


def weights_digest(model) -> str:
    import hashlib
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass
class Run:
    """What `fit` needs besides the model: where to write, and what to record."""
    out: Path
    seed: int = 0
    log_every: int = 50
    progress: bool = False
    plots: bool = True
    channels_last: bool = True  # NHWC activations: faster convolutions on CPU (see benchmarks/)
    command: str = ""
    meta: dict = field(default_factory=dict)  # dataset, split and anything else to record


def fit(recipe: Recipe, config: ModelConfig, train: Split, val: Split, run: Run, *,
        resume: bool = False, log=print, dist: Dist | None = None) -> dict:
    """Train from scratch (or from `run.out`'s checkpoint), writing checkpoints every epoch and
    the final model, metrics and plots. Returns the saved model's info.

    Under torchrun (`dist.active`) every rank trains its shard through DistributedDataParallel;
    rank 0 alone logs and writes files, holding the output folder's lock."""
    dist = dist or Dist(device=train.labels.device)
    if not dist.is_main:
        return _fit(recipe, config, train, val, run, resume, log, dist)
    run.out.mkdir(parents=True, exist_ok=True)
    with FolderLock(run.out):
        clean_stale_temps(run.out)  # what a killed run left; the lock says no writer is alive
        return _fit(recipe, config, train, val, run, resume, log, dist)


def _fit(recipe: Recipe, config: ModelConfig, train: Split, val: Split, run: Run,
         resume: bool, log, dist: Dist) -> dict:
    device = train.labels.device
    if not dist.is_main:
        log = lambda *a, **k: None  # noqa: E731 - rank 0 speaks for the job
    torch.manual_seed(run.seed)
    model = build_model(config)
    init_weights(model, recipe.init)
    model.to(device)
    if run.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, recipe)
    net = model
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    ckpt_path = run.out / CHECKPOINT_FILE
    history, start_epoch, start_step, running, gen_state = [], 0, 0, None, None
    if resume:
        model_sd, optim_sd, extra, info = load_checkpoint(ckpt_path)
        if info.get("meta", {}).get("dataset_sha256") != run.meta.get("dataset_sha256"):
            raise ValueError(f"{ckpt_path}: the checkpoint was trained on other data "
                             f"(dataset checksum differs); point --data-dir at the same files")
        model.load_state_dict(model_sd)
        optimizer.load_state_dict(optim_sd)
        match_parameter_layouts(optimizer)
        history, start_epoch, start_step = info["history"], info["epoch"], info["step"]
        if start_step:
            running = Running.from_dict(info["running"], device)
            gen_state = extra["generator"]
        torch.set_rng_state(extra["torch_rng"])
        log(f"resuming from {ckpt_path}: epoch {start_epoch + 1}, batch {start_step}")

    def checkpoint(epoch: int, step: int, running: Running | None, gen: torch.Tensor | None) -> None:
        if not all_finite(model) or (running is not None and not torch.isfinite(running.loss)):
            raise Diverged(f"training diverged in epoch {epoch + 1}: the weights or the loss are NaN or infinite; "
                           f"nothing was saved from this epoch; try a lower --lr")
        if not dist.is_main:
            return
        state = {"epoch": epoch, "step": step, "history": history, "recipe": recipe.to_dict(),
                 "model": config.to_dict(), "seed": run.seed, "meta": run.meta,
                 "running": running.to_dict() if running else None}
        extra = {"torch_rng": torch.get_rng_state()}
        if gen is not None:
            extra["generator"] = gen
        save_checkpoint(ckpt_path, model, optimizer, state, extra)

    n_batches = batches_per_epoch(len(train), recipe.batch_size, dist.world)
    total_steps = n_batches * recipe.epochs
    log(f"{config.arch} ({config.activation}), {count_parameters(model):,} parameters, recipe {recipe.name}; "
        f"{len(train):,} training images, validation on {val.name} ({len(val):,}); device {device}"
        + (f"; {dist.world} processes, global batch {recipe.batch_size}" if dist.active else ""))
    with StopRequest() as stop:
        for epoch in range(start_epoch, recipe.epochs):
            t0 = time.perf_counter()
            already = running.seen if running else 0  # images of this epoch trained before a resume
            if running and not dist.is_main:
                running = None  # a resumed epoch's partial sums count once, on rank 0
            try:
                result = train_one_epoch(
                    net, optimizer, train, config, recipe, epoch=epoch, seed=run.seed,
                    start_step=start_step, running=running, generator_state=gen_state,
                    steps_before=epoch * n_batches, total_steps=total_steps,
                    log_every=run.log_every, log=log, progress=run.progress,
                    stop=None if dist.active else stop,  # ranks must stop together: at epoch ends
                    channels_last=run.channels_last, dist=dist)
            except _Stopped as where:
                checkpoint(epoch, where.step, where.running, where.generator)
                raise Interrupted(f"interrupted in epoch {epoch + 1} at batch {where.step}; checkpoint "
                                  f"written to {ckpt_path}; continue with: lenet train --resume --out {run.out}")
            except Diverged as e:
                raise Diverged(f"{e}. Nothing from this epoch was saved"
                               + (f"; {ckpt_path} holds the last good epoch" if ckpt_path.is_file() else "")
                               + "; try a lower --lr") from None
            seconds = time.perf_counter() - t0
            loss_sum, correct, seen = reduce_sums(result, dist)
            trained = seen - already
            start_step, running, gen_state = 0, None, None
            dist.broadcast_buffers(model)
            metrics = evaluate(model, val, config, dist=dist)
            row = {"epoch": epoch + 1, "train_loss": loss_sum / seen,
                   "train_accuracy": correct / seen, "val_loss": metrics["loss"],
                   "val_accuracy": metrics["accuracy"], "seconds": round(seconds, 3),
                   "images_per_second": round(trained / seconds), "lr": optimizer.param_groups[0]["lr"]}
            history.append(row)
            log(f"epoch {epoch + 1}/{recipe.epochs}  train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f}  "
                f"val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.4f}  "
                f"{seconds:.1f} s  {row['images_per_second']:,} img/s")
            checkpoint(epoch + 1, 0, None, None)
            if dist.is_main:
                write_metrics_csv(run.out / "metrics.csv", history)
            stopping = dist.all_reduce(torch.tensor(float(stop.requested), device=device),
                                     torch.distributed.ReduceOp.MAX) > 0
            if stopping and epoch + 1 < recipe.epochs:
                raise Interrupted(f"interrupted after epoch {epoch + 1}; checkpoint written to {ckpt_path}; "
                                  f"continue with: lenet train --resume --out {run.out}")

    info = {
        "model": config.to_dict(),
        "parameters": count_parameters(model),
        "recipe": recipe.to_dict(),
        "seed": run.seed,
        "command": run.command,
        **run.meta,
        "validation": val.name,
        "metrics": history[-1] if history else {},
        "history": history,
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if dist.active:
        digests = dist.all_gather_object(weights_digest(model))
        if len(set(digests)) != 1:
            raise ValueError(f"ranks ended with different weights: {digests}")
        info["distributed"] = {"world_size": dist.world, "backend": torch.distributed.get_backend(),
                               "weights_sha256": digests[0], "weights_identical_across_ranks": True}
    if not dist.is_main:
        return info
    save_model(run.out / MODEL_FILE, model, info)
    write_metrics_csv(run.out / "metrics.csv", history)
    if run.plots and history:
        from .plots import plot_history
        plot_history(history, run.out)
    return info
