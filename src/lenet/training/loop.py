"""Training: batches from in-memory uint8 tensors, the loop, scoring, checkpoints.

The data never leaves memory and never passes through per-sample Python: an
epoch is a seeded permutation of indices, each batch is a slice converted to
float and normalised on the spot (`Batches`). Every epoch's order comes from
(seed, epoch), and the random state mid-epoch is saved with the checkpoint, so
a resumed run ends with the same weights as an uninterrupted one.

Read top-down: `fit` is the driver (set up, epochs, finish), `Trainer` holds
what it carries between epochs, `train_one_epoch` is the loop over `Batches`,
`Watch` is what happens between two steps, `score` is evaluation, and
`train_on` is what `lenet train` and `lenet.train()` call.
"""

from __future__ import annotations

import csv
import io
import math
import os
import platform
import shlex
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lenet import __version__
from lenet.config import ModelConfig, Recipe, check_int, flag
from lenet.data.mnist import Dataset
from lenet.evaluation.scoring import Split, held_out_scores, resolve_device, score
from lenet.files import FolderLock, clean_stale_temps, write_text_atomic
from lenet.nn.model_file import MODEL_FILE, save_model
from lenet.nn.network import check_image_size
from lenet.nn.torch_model import build_model, count_parameters, init_weights, normalize
from lenet.training.augment import distort, roughen
from lenet.training.checkpoint import (
    CHECKPOINT_FILE,
    Checkpoint,
    check_checkpoint_fits,
    load_checkpoint,
    save_checkpoint,
)
from lenet.training.distributed import Dist


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
# Under torchrun, steps between the collective by which every rank agrees to stop or to write a
# mid-epoch checkpoint at the same step; one tiny all-reduce per 10 steps costs next to nothing.
SYNC_EVERY = 10
CHECKPOINT_SECONDS = 60.0  # mid-epoch checkpoints by default: at most this much work is lost
SNAPSHOTS_IN_FIRST_EPOCH = 8  # --snapshots: where most of the change happens


class _Stopped(Exception):
    """Where an epoch stopped on request: the next step, the sums so far, the generator's state."""

    def __init__(self, step, sums, generator):
        super().__init__(step)
        self.step, self.sums, self.generator = step, sums, generator


def make_splits(ds: Dataset, device: torch.device, subset: int | None = None,
                holdout: int = 0) -> tuple[Split, Split]:
    """(train, validation). Validation is the whole test set, as in the tutorial, or with
    `holdout` > 0 the last `holdout` training images (for choosing hyperparameters honestly)."""
    x, y = ds.train_images, ds.train_labels
    if holdout:
        if not 0 < holdout < len(y):
            raise ValueError(f"--holdout {holdout}: must be between 1 and {len(y) - 1}")
        val = Split.of(x[-holdout:], y[-holdout:], f"holdout (last {holdout:,} training images)", device)
        x, y = x[:-holdout], y[:-holdout]
    else:
        val = Split.of(ds.test_images, ds.test_labels, "test", device)
    if subset:
        x, y = x[:subset], y[:subset]
    return Split.of(x, y, "train", device), val


def with_printed(train: Split, fraction: float, log=print) -> Split:
    """`train` with printed digits added (fonts.py): `fraction` of its size, the rendered set
    repeated; each copy is distorted differently by the batch augmentation."""
    from lenet.training.fonts import matplotlib_fonts, printed_digits

    t0 = time.perf_counter()
    fonts = matplotlib_fonts()
    images, labels = printed_digits(fonts)
    n = int(fraction * len(train))
    pick = np.resize(np.arange(len(labels)), n)
    log(f"added {n:,} printed digits ({len(labels):,} renderings from {len(fonts)} fonts, "
        f"{time.perf_counter() - t0:.1f} s)")
    device = train.labels.device
    return Split(torch.cat([train.images, torch.from_numpy(images[pick]).to(device)]),
                 torch.cat([train.labels, torch.from_numpy(labels[pick].astype(np.int64)).to(device)]), train.name)


def lr_at(step: int, total: int, recipe: Recipe) -> float:
    """Learning rate for a global step: constant, or one-cycle (linear warm-up over the recipe's
    `warmup` fraction of the steps, then cosine to 0)."""
    if recipe.schedule == "constant":
        return recipe.lr
    warm = max(1, int(recipe.warmup * total))
    if step < warm:
        return recipe.lr * (step + 1) / warm
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def make_optimizer(model, recipe: Recipe):
    # Weight decay on weights only: decaying biases and batch-norm scales only hurts.
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if recipe.optimizer == "sgd":
        return SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov and recipe.momentum > 0)
    # One fused kernel for all parameters instead of a loop over them.
    fused = all(p.device.type in ("cpu", "cuda") for p in model.parameters())
    if recipe.optimizer == "adam":
        return torch.optim.Adam(groups, lr=recipe.lr, fused=fused)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr, fused=fused)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")


class SGD:
    """Stochastic gradient descent with momentum (Nesterov's or not) and weight decay: torch.optim.SGD's
    update, dampening 0, written here because constructing any torch.optim optimizer imports
    torch._dynamo, 2 s of a 20 s training run's start-up (`python -X importtime`). The state_dict
    has torch.optim.SGD's layout, so checkpoints of either kind resume with the other;
    tests/test_train.py checks both take the same steps.

    Each step is a handful of multi-tensor (_foreach) operations per parameter group, not a loop
    over parameters: for the buffer b, gradient g, weight w, decay d, momentum m and rate lr,
        g += d w;  b = m b + g (b = g at the first step);  g = g + m b (Nesterov) or b;  w -= lr g."""

    def __init__(self, groups: list[dict], lr: float, momentum: float = 0.0, nesterov: bool = False):
        defaults = {"lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": 0.0, "dampening": 0.0}
        self.param_groups = [{**defaults, **group, "params": list(group["params"])} for group in groups]
        self.state: dict = {}  # parameter -> {"momentum_buffer": tensor}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            momentum = group["momentum"]
            if momentum:
                buffers, old, old_grads = [], [], []
                for p, g in zip(params, grads):
                    slots = self.state.get(p)  # keyed by the tensor itself (hashed by identity)
                    if slots is None:
                        slots = self.state[p] = {"momentum_buffer": g.detach().clone()}
                    else:
                        old.append(slots["momentum_buffer"])
                        old_grads.append(g)
                    buffers.append(slots["momentum_buffer"])
                if old:
                    torch._foreach_mul_(old, momentum)
                    torch._foreach_add_(old, old_grads)
                grads = torch._foreach_add(grads, buffers, alpha=momentum) if group["nesterov"] else buffers
            torch._foreach_add_(params, grads, alpha=-group["lr"])

    def state_dict(self) -> dict:
        """torch.optim.SGD's layout: parameters by their index across the groups."""
        index, groups, state = 0, [], {}
        for group in self.param_groups:
            ids = list(range(index, index + len(group["params"])))
            for i, p in zip(ids, group["params"]):
                if p in self.state:
                    state[i] = dict(self.state[p])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
            index += len(ids)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        saved = state_dict["param_groups"]
        if [len(g["params"]) for g in saved] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError("the checkpoint's optimizer holds other parameters than this model's")
        self.state = {}
        for group, old in zip(self.param_groups, saved):
            for key in ("lr", "momentum", "nesterov", "weight_decay", "dampening"):
                if key in old:
                    group[key] = old[key]
            for p, i in zip(group["params"], old["params"]):
                slots = state_dict["state"].get(i, state_dict["state"].get(str(i)))
                if slots and slots.get("momentum_buffer") is not None:
                    self.state[p] = {"momentum_buffer": slots["momentum_buffer"].to(p.device, p.dtype)}


def match_parameter_layouts(optimizer) -> None:
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
class EpochSums:
    """Sums over the batches of an epoch so far, kept as tensors on the device: no sync per batch."""
    loss: torch.Tensor      # float64, sum of per-image losses
    correct: torch.Tensor   # int64
    seen: int = 0

    @classmethod
    def zeros(cls, device) -> "EpochSums":
        return cls(torch.zeros((), dtype=torch.float64, device=device),
                   torch.zeros((), dtype=torch.int64, device=device))

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.loss += loss.detach().double() * len(labels)
        self.correct += (logits.detach().argmax(1) == labels).sum()
        self.seen += len(labels)

    def finite(self) -> bool:
        return bool(torch.isfinite(self.loss))

    def reduced(self, dist: Dist) -> tuple[float, int, int]:
        """(loss sum, correct, seen) over all ranks."""
        t = torch.stack([self.loss, self.correct.double(),
                         torch.tensor(float(self.seen), dtype=torch.float64, device=self.loss.device)])
        dist.all_reduce(t)
        return float(t[0]), int(t[1]), int(t[2])

    def to_dict(self) -> dict:
        return {"loss": float(self.loss), "correct": int(self.correct), "seen": self.seen}

    @classmethod
    def from_dict(cls, d: dict, device) -> "EpochSums":
        return cls(torch.tensor(d["loss"], dtype=torch.float64, device=device),
                   torch.tensor(d["correct"], dtype=torch.int64, device=device), d["seen"])


class Batches:
    """One epoch of training batches: (step, x, y), x normalised (and distorted) on the spot.

    The order is a permutation drawn from (seed, epoch); the same generator then draws the
    augmentation, so a checkpoint that stores its state mid-epoch resumes exactly. Under
    torchrun every rank draws the same order and takes every world-th image of each global
    batch of `recipe.batch_size`: distinct shards that together make the same global batches
    as one process would see."""

    def __init__(self, split: Split, config: ModelConfig, recipe: Recipe, *, seed: int, epoch: int,
                 dist: Dist, start_step: int = 0, generator_state: torch.Tensor | None = None,
                 channels_last: bool = False):
        self.split, self.config, self.recipe, self.dist = split, config, recipe, dist
        self.epoch, self.start_step = epoch, start_step
        self.generator = epoch_generator(seed, epoch)
        self.order = torch.randperm(len(split), generator=self.generator).to(split.labels.device)
        if generator_state is not None:
            self.generator.set_state(generator_state)
        self.n = batches_per_epoch(len(split), recipe.batch_size, dist.world)
        self.first_global_step, self.total_steps = epoch * self.n, self.n * recipe.epochs
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        mine, size = slice(self.dist.rank, None, self.dist.world), self.recipe.batch_size
        background = self.config.normalize(0.0)  # an empty pixel after normalisation
        for step in range(self.start_step, self.n):
            # The last batch runs to the end: it holds any remainder too small to be a batch.
            batch = self.order[step * size:len(self.order) if step == self.n - 1 else (step + 1) * size]
            idx = batch[mine]
            x = normalize(self.split.images[idx], self.config).contiguous(memory_format=self.memory_format)
            if self.recipe.augment:
                # Draws for the whole global batch, so every rank's stream stays the same.
                x = distort(x, self.generator, background, draws=len(batch), select=mine)
            if self.recipe.roughen:
                x = roughen(x, self.generator, background, self.config.normalize(255.0), draws=len(batch), select=mine)
            yield step, x, self.split.labels[idx]


def train_one_epoch(model, optimizer, batches: Batches, recipe: Recipe, sums: EpochSums,
                    watch=lambda step, sums: None) -> EpochSums:
    """One pass over `batches`, adding to `sums`; `watch(step, sums)` runs after every step."""
    model.train()
    for step, x, y in batches:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(batches.first_global_step + step, batches.total_steps, recipe)
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sums.add(loss, logits, y)
        watch(step, sums)
    return sums


class Watch:
    """What happens between two training steps: the progress bar, the log line every
    `log_every` batches, the check that the loss is still finite, a mid-epoch checkpoint every
    `checkpoint_every` batches (0: every CHECKPOINT_SECONDS), and a stop request, which raises
    _Stopped where the next batch would begin (so a checkpoint never holds half a step). Under
    torchrun the ranks agree on both at the same step."""

    def __init__(self, batches: Batches, dist: Dist, optimizer, *, log, log_every: int, progress: bool,
                 stop: StopRequest | None, checkpoint_every: int = 0, save=None, snapshot=None):
        self.batches, self.dist, self.optimizer = batches, dist, optimizer
        n, k = len(batches), SNAPSHOTS_IN_FIRST_EPOCH
        self.snapshot, self.snapshot_at = snapshot, {round(i * n / (k + 1)) for i in range(1, k + 1)} - {0, n}
        self.log, self.log_every, self.stop = log, log_every, stop
        self.checkpoint_every, self.save, self.saved_at = checkpoint_every, save, time.monotonic()
        self.bar = None
        if progress and dist.is_main:
            from tqdm.auto import tqdm  # a widget in a notebook, text on a terminal
            self.bar = tqdm(total=len(batches), initial=batches.start_step, desc=f"epoch {batches.epoch + 1}",
                            unit="batch", leave=False, dynamic_ncols=True)
            self.log = self.bar.write

    def __call__(self, step: int, sums: EpochSums) -> None:
        if self.bar is not None:
            self.bar.update(1)
        if (step + 1) % CHECK_EVERY == 0 and not sums.finite():
            raise Diverged(f"training diverged: the loss became NaN or infinite in epoch {self.batches.epoch + 1} "
                           f"by batch {step + 1} (learning rate {self.optimizer.param_groups[0]['lr']:g})")
        if self.log_every and (step + 1) % self.log_every == 0:
            loss_sum, correct, seen = sums.reduced(self.dist)
            if self.dist.is_main:
                self.log(f"epoch {self.batches.epoch + 1} batch {step + 1}/{len(self.batches)}  "
                         f"loss {loss_sum / seen:.4f}  acc {correct / seen:.4f}")
        if step + 1 == len(self.batches):
            return  # the epoch's end writes its own checkpoint and honours a stop request
        if self.snapshot is not None and step + 1 in self.snapshot_at:
            self.snapshot(f"epoch {self.batches.epoch + 1}, batch {step + 1}")
        stop, due = self.agree(step + 1)
        if stop:
            raise _Stopped(step + 1, sums, self.batches.generator.get_state())
        if due:
            self.save(step + 1, sums, self.batches.generator.get_state())
            self.saved_at = time.monotonic()

    def agree(self, done: int) -> tuple[bool, bool]:
        """(stop here, checkpoint here) after `done` steps of the epoch, the same on every rank."""
        every = self.checkpoint_every
        stop = self.stop is not None and self.stop.requested
        due = self.save is not None and (done % every == 0 if every
                                         else time.monotonic() - self.saved_at >= CHECKPOINT_SECONDS)
        if not self.dist.active:
            return stop, due
        if done % SYNC_EVERY and not (every and done % every == 0):
            return False, False  # only at steps every rank reaches with the same count
        return tuple(self.dist.any(stop, due))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def batches_per_epoch(n: int, batch_size: int, world: int = 1) -> int:
    """Every image once. A last batch that would leave a rank fewer than two images joins the batch
    before it (batch norm cannot train on one image), so no image is ever dropped."""
    full, rest = divmod(n, batch_size)
    return full if full and rest < 2 * world else full + (1 if rest else 0)


def check_trainable(n: int, world: int = 1) -> None:
    """A ValueError, before any work, when there are too few images to give each process two."""
    if n < 2 * world:
        raise ValueError(f"{n} training image{'' if n == 1 else 's'}: training needs at least {2 * world} "
                         f"({'two per process' if world > 1 else 'batch norm cannot learn from one'}); "
                         f"give a larger --subset")



def all_finite(model) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


def versions() -> dict:
    return {"lenet": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads"}


def write_metrics_csv(path: Path, history: list[dict]) -> None:
    buf = io.StringIO()
    cols = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "images_per_second", "lr"]
    if history and "test_accuracy" in history[0]:
        cols.append("test_accuracy")
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
    checkpoint_every: int = 0   # batches between mid-epoch checkpoints; 0: every CHECKPOINT_SECONDS
    snapshots: bool = False     # record how C1 learns: learning.png and learning.gif (snapshots.py)
    command: str = ""
    meta: dict = field(default_factory=dict)  # dataset, split and anything else to record
    test: Split | None = None   # scored once at the end when validation is a holdout
    test_each_epoch: bool = False  # with a holdout, also score `test` after every epoch (recorded only)


def fit(recipe: Recipe, config: ModelConfig, train: Split, val: Split, run: Run, *,
        resume: Checkpoint | None = None, log=print, dist: Dist | None = None) -> dict:
    """Train from scratch (or from the checkpoint `resume`), writing a checkpoint every epoch and
    the final model, metrics and plots into `run.out`. Returns the saved model's info.

    Under torchrun (`dist.active`) every rank trains its shard through DistributedDataParallel;
    rank 0 alone logs and writes files, holding the output folder's lock."""
    dist = dist or Dist(device=train.labels.device)
    with output_folder(run.out, dist):
        trainer = Trainer(recipe, config, run, dist, train.labels.device, resume, log)
        trainer.log(f"{trainer.summary}; {len(train):,} training images, validation on {val.name} ({len(val):,})")
        if run.snapshots and dist.is_main:
            trainer.start_snapshots(val)
        with StopRequest() as stop:
            for epoch in range(trainer.epoch, recipe.epochs):
                sums, seconds = trainer.train_epoch(train, epoch, stop)
                trainer.end_epoch(epoch, sums, seconds, val, stop)
        return trainer.finish(val)


@contextmanager
def output_folder(out: Path, dist: Dist):
    """Rank 0 holds `out`'s lock for the whole run and first removes what a killed run left."""
    if not dist.is_main:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    with FolderLock(out):
        clean_stale_temps(out)  # the lock says no writer is alive
        yield


class Trainer:
    """The state `fit` carries from epoch to epoch: the model, its optimizer, the history, and
    where training stands (a resumed run starts mid-epoch, with that epoch's sums and RNG)."""

    def __init__(self, recipe: Recipe, config: ModelConfig, run: Run, dist: Dist, device: torch.device,
                 resume: Checkpoint | None, log):
        self.recipe, self.config, self.run, self.dist, self.device = recipe, config, run, dist, device
        self.log = log if dist.is_main else (lambda *a, **k: None)  # rank 0 speaks for the job
        torch.manual_seed(run.seed)
        self.model = build_model(config)
        init_weights(self.model, recipe.init, recipe.activation)
        self.model.to(device)
        if run.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = make_optimizer(self.model, recipe)
        self.net = self.model
        if dist.active:
            from torch.nn.parallel import DistributedDataParallel
            self.net = DistributedDataParallel(self.model, device_ids=[device] if device.type == "cuda" else None)
        self.history, self.epoch, self.step, self.sums, self.generator = [], 0, 0, None, None
        self.already = 0  # images of the current epoch trained before a resume (not counted in images/s)
        self.snapshots = None
        if resume is not None:
            self.restore(resume)

    def start_snapshots(self, val: Split) -> None:
        """Record how C1 learns, on the first validation image, from where training stands."""
        from lenet.training.snapshots import Snapshots

        self.snapshots = Snapshots(self.model, val.images[0].cpu(), self.config)
        resumed = not (self.epoch == 0 and self.step == 0)
        if resumed:  # the frames before the interruption were in the killed process's memory
            self.log(f"note: --snapshots on a resumed run: learning.png and learning.gif start at the resume point "
                     f"(epoch {self.epoch + 1}, batch {self.step}); the frames before it were not kept")
        self.snapshots.take(f"resumed, epoch {self.epoch + 1}" if resumed else "start")

    @property
    def summary(self) -> str:
        c, dist = self.config, self.dist
        return (f"{c.arch} ({c.activation}), {count_parameters(self.model):,} parameters, recipe {self.recipe.name}; "
                f"device {self.device}" + (f"; {dist.world} processes, global batch {self.recipe.batch_size}"
                                            if dist.active else ""))

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue exactly where `ckpt` stopped: weights, optimizer, history, position, RNG."""
        if ckpt.info["meta"].get("dataset_sha256") != self.run.meta.get("dataset_sha256"):
            raise ValueError(f"{ckpt.path}: the checkpoint was trained on other data "
                             f"(dataset checksum differs); point --data-dir at the same files")
        self.model.load_state_dict(ckpt.model)
        self.optimizer.load_state_dict(ckpt.optimizer)
        match_parameter_layouts(self.optimizer)
        info = ckpt.info
        self.history, self.epoch, self.step = info["history"], info["epoch"], info["step"]
        if self.step:
            self.sums = EpochSums.from_dict(info["running"], self.device)
            self.generator = ckpt.extra["generator"]
        torch.set_rng_state(ckpt.extra["torch_rng"])
        self.log(f"resuming from {ckpt.path}: epoch {self.epoch + 1}, batch {self.step}")

    def train_epoch(self, train: Split, epoch: int, stop: StopRequest) -> tuple[EpochSums, float]:
        """One epoch (or the rest of a resumed one); (its sums, seconds). On a stop request,
        writes a checkpoint where it stopped and raises Interrupted."""
        t0 = time.perf_counter()
        # A resumed epoch's partial sums count once, on rank 0; the images/s count only this run's.
        sums = self.sums if self.sums is not None and self.dist.is_main else EpochSums.zeros(self.device)
        self.already = self.sums.seen if self.sums is not None else 0
        batches = Batches(train, self.config, self.recipe, seed=self.run.seed, epoch=epoch, dist=self.dist,
                          start_step=self.step, generator_state=self.generator,
                          channels_last=self.run.channels_last)
        watch = Watch(batches, self.dist, self.optimizer, log=self.log, log_every=self.run.log_every,
                      progress=self.run.progress, stop=stop, checkpoint_every=self.run.checkpoint_every,
                      save=lambda step, sums, generator: self.checkpoint(epoch, step, self.global_sums(sums),
                                                                          generator),
                      snapshot=self.snapshots.take if self.snapshots and epoch == 0 else None)
        try:
            train_one_epoch(self.net, self.optimizer, batches, self.recipe, sums, watch)
        except _Stopped as where:
            self.checkpoint(epoch, where.step, self.global_sums(where.sums), where.generator)
            raise Interrupted(f"interrupted in epoch {epoch + 1} at batch {where.step}; checkpoint written to "
                              f"{self.checkpoint_path}; continue with: {resume_command(self.run)}")
        except Diverged as e:
            raise Diverged(f"{e}. Nothing from this epoch was saved"
                           + (f"; {self.checkpoint_path} holds the last good epoch"
                              if self.checkpoint_path.is_file() else "") + "; try a lower --lr") from None
        finally:
            watch.close()
        self.step, self.sums, self.generator = 0, None, None
        return sums, time.perf_counter() - t0

    def end_epoch(self, epoch: int, sums: EpochSums, seconds: float, val: Split, stop: StopRequest) -> None:
        """Validate, record, checkpoint; stop here if asked (every rank agrees)."""
        loss_sum, correct, seen = sums.reduced(self.dist)
        self.dist.broadcast_buffers(self.model)
        metrics = score(self.model, val, self.config, dist=self.dist)
        row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
               "val_loss": metrics["loss"], "val_accuracy": metrics["accuracy"], "seconds": round(seconds, 3),
               "images_per_second": round((seen - self.already) / seconds),
               "lr": self.optimizer.param_groups[0]["lr"]}
        if self.run.test_each_epoch and self.run.test is not None:
            # Recorded only, never read by any choice: the evidence of what picking an epoch on the
            # test set would flatter (benchmarks/accuracy.py).
            row["test_accuracy"] = score(self.model, self.run.test, self.config, dist=self.dist)["accuracy"]
        self.history.append(row)
        self.log(f"epoch {epoch + 1}/{self.recipe.epochs}  train loss {row['train_loss']:.4f} "
                 f"acc {row['train_accuracy']:.4f}  val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.4f}  "
                 f"{seconds:.1f} s  {row['images_per_second']:,} img/s")
        self.checkpoint(epoch + 1, 0, None, None)
        if self.snapshots:
            self.snapshots.take(f"epoch {epoch + 1}")
        if self.dist.is_main:
            write_metrics_csv(self.run.out / "metrics.csv", self.history)
        if self.dist.any(stop.requested)[0] and epoch + 1 < self.recipe.epochs:
            raise Interrupted(f"interrupted after epoch {epoch + 1}; checkpoint written to {self.checkpoint_path}; "
                              f"continue with: {resume_command(self.run)}")

    def global_sums(self, sums: EpochSums) -> EpochSums:
        """The epoch's sums over all ranks, as a mid-epoch checkpoint records them (on resume,
        rank 0 carries them and the others start from zero, so the epoch's total is right)."""
        if not self.dist.active:
            return sums
        loss, correct, seen = sums.reduced(self.dist)
        return EpochSums(torch.tensor(loss, dtype=torch.float64), torch.tensor(correct), seen)

    @property
    def checkpoint_path(self) -> Path:
        return self.run.out / CHECKPOINT_FILE

    def checkpoint(self, epoch: int, step: int, sums: EpochSums | None, generator: torch.Tensor | None) -> None:
        """Write where training stands (rank 0), never a diverged state."""
        if not all_finite(self.model) or (sums is not None and not sums.finite()):
            raise Diverged(f"training diverged in epoch {epoch + 1}: the weights or the loss are NaN or infinite; "
                           f"nothing was saved from this epoch; try a lower --lr")
        if not self.dist.is_main:
            return
        state = {"epoch": epoch, "step": step, "history": self.history, "recipe": self.recipe.to_dict(),
                 "model": self.config.to_dict(), "seed": self.run.seed, "meta": self.run.meta,
                 "running": sums.to_dict() if sums else None}
        extra = {"torch_rng": torch.get_rng_state()}
        if generator is not None:
            extra["generator"] = generator
        save_checkpoint(self.checkpoint_path, self.model, self.optimizer, state, extra)

    def finish(self, val: Split) -> dict:
        """Save the model, metrics and plots (rank 0); return the model's info."""
        run, history = self.run, self.history
        info = {"model": self.config.to_dict(), "parameters": count_parameters(self.model),
                "recipe": self.recipe.to_dict(), "seed": run.seed, "command": run.command, **run.meta,
                "validation": val.name, "metrics": history[-1] if history else {}, "history": history,
                "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if self.dist.active:
            digests = self.dist.all_gather_object(weights_digest(self.model))
            if len(set(digests)) != 1:
                raise ValueError(f"ranks ended with different weights: {digests}")
            info["distributed"] = {"world_size": self.dist.world, "backend": self.dist.backend,
                                   "weights_sha256": digests[0], "weights_identical_across_ranks": True}
        if not self.dist.is_main:
            return info
        if val.name.startswith("holdout"):
            # Held-out training images: fit the temperature and the unsure threshold on them.
            from lenet.evaluation.calibration import calibrate

            info["calibration"] = calibrate(*held_out_scores(self.model, val, self.config))
            self.config = replace(self.config, temperature=info["calibration"]["temperature"],
                                  unsure_below=info["calibration"]["unsure_below"])
            info["model"] = self.config.to_dict()
            if self.run.test is not None:  # validation was a holdout: the test set still gets its say
                info["test_accuracy"] = score(self.model, self.run.test, self.config)["accuracy"]
            self.log(f"calibration on {val.name}: temperature {self.config.temperature:.3f}, unsure below "
                     f"{self.config.unsure_below:.3f}; expected calibration error "
                     f"{info['calibration']['ece_before']:.4f} -> {info['calibration']['ece_after']:.4f}")
        save_model(run.out / MODEL_FILE, self.model, info)
        write_metrics_csv(run.out / "metrics.csv", history)
        if run.plots and history:
            from lenet.figures import plot_history
            plot_history(history, run.out)
        if self.snapshots:
            self.snapshots.write(run.out)
        return info


def train_on(ds: Dataset, recipe: Recipe | None, out: str | Path, *, resume: bool = False, seed: int = 0,
             subset: int | None = None, holdout: int = 0, epochs: int | None = None, log_every: int = 50,
             progress: bool = False, plots: bool = True, checkpoint_every: int = 0, snapshots: bool = False,
             command: str = "", test_each_epoch: bool = False,
             dist: Dist | None = None, log=print) -> dict:
    """Everything `lenet train` does once its arguments are parsed: the settings (from `recipe`, or
    from the checkpoint in `out` when resuming: read once, here), the splits, then `fit`.

    When torchrun has restarted the workers (an elastic restart) and `out` holds this run's
    checkpoint, training resumes from it by itself; a checkpoint of another run is an error."""
    for name, value, low in (("seed", seed, 0), ("holdout", holdout, 0), ("log_every", log_every, 0),
                             ("checkpoint_every", checkpoint_every, 0), ("subset", 1 if subset is None else subset, 1)):
        check_int(flag(name), value, low, 2**31 - 1)  # the same bounds and words as the command's
    dist = dist or Dist(device=resolve_device("auto"))
    out, ckpt = Path(out), None
    restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if not resume and restart > 0 and (out / CHECKPOINT_FILE).is_file():
        ckpt = load_checkpoint(out / CHECKPOINT_FILE)
        check_same_run(ckpt, recipe, ds, seed, subset, holdout)
        resume = True
        if dist.is_main:
            log(f"elastic restart {restart}: resuming from {out / CHECKPOINT_FILE}")
    if resume:
        ckpt = ckpt or load_checkpoint(out / CHECKPOINT_FILE)
        recipe = Recipe(**ckpt.info["recipe"]).override(epochs=epochs)
        config = ModelConfig.from_dict(ckpt.info["model"])
        # The data this run loaded, which Trainer.restore checks against the checkpoint's.
        seed, meta = ckpt.info["seed"], {**ckpt.info["meta"], "dataset": ds.root.name, "dataset_sha256": ds.sha256,
                                         "data_dir": str(ds.root.resolve())}
        subset, holdout, command = meta["subset"], meta["holdout"], meta.get("command", command)
    else:
        try:
            check_image_size(recipe.arch, *ds.image_shape)
        except ValueError as e:
            raise ValueError(f"{ds.root}: {e}") from None
        config = recipe.model_config(ds.num_classes, ds.image_shape[0])
        # data_dir: where --resume finds the data again without --data-dir (recorded_data_dir)
        meta = {"dataset": ds.root.name, "dataset_sha256": ds.sha256, "data_dir": str(ds.root.resolve()),
                "subset": subset, "holdout": holdout, "command": command}
    if dist.active and recipe.batch_size % dist.world:
        raise ValueError(f"--batch-size {recipe.batch_size} is the global batch: it must divide evenly "
                         f"among {dist.world} processes")
    train, val = make_splits(ds, dist.device, subset, holdout)
    check_trainable(len(train), dist.world)
    test = Split.of(ds.test_images, ds.test_labels, "test", dist.device) if holdout else None
    if recipe.printed:
        train = with_printed(train, recipe.printed, log if dist.is_main else (lambda *a, **k: None))
    if ckpt is not None:
        check_checkpoint_fits(ckpt, ds.num_classes, ds.image_shape, batches_per_epoch(len(train), recipe.batch_size,
                                                                                       dist.world))
    run = Run(out=out, seed=seed, log_every=log_every, progress=progress, plots=plots, test=test,
              test_each_epoch=test_each_epoch, checkpoint_every=checkpoint_every, snapshots=snapshots,
              command=command, meta=meta)
    return fit(recipe, config, train, val, run, resume=ckpt, log=log, dist=dist)


def resume_command(run: Run) -> str:
    """The command that continues `run` from its checkpoint, quoted for a shell: with --data-dir,
    so it works offline and from any folder."""
    args = ["lenet", "train", "--resume", "--out", str(run.out)]
    if run.meta.get("data_dir"):
        args += ["--data-dir", run.meta["data_dir"]]
    return shlex.join(args)


def check_same_run(ckpt: Checkpoint, recipe: Recipe, ds: Dataset, seed: int, subset: int | None,
                   holdout: int) -> None:
    """A ValueError unless `ckpt` was written by a run with these settings, on this data."""
    info, meta = ckpt.info, ckpt.info["meta"]
    theirs = {"recipe": info["recipe"], "seed": info["seed"], "dataset": meta.get("dataset_sha256"),
              "subset": meta.get("subset"), "holdout": meta.get("holdout")}
    ours = {"recipe": recipe.to_dict(), "seed": seed, "dataset": ds.sha256, "subset": subset, "holdout": holdout}
    differ = [k for k in ours if theirs[k] != ours[k]]
    if differ:
        raise ValueError(f"{ckpt.path} is the checkpoint of another run ({', '.join(differ)} differ); "
                         f"an elastic restart resumes only its own run: remove it or choose another --out")
