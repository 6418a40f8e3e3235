"""The training loop: one epoch of steps, and what it checks between two of them.

`train_one_epoch` says every exit itself, as nanoGPT's train.py does: it logs, raises Diverged when
the loss is no longer finite, and on a stop request writes a checkpoint and returns the step it
stopped before; otherwise it writes the periodic checkpoints and snapshots and runs to the end.
`Watch` holds only what those branches read: the bar, the log, the schedules, the ranks' agreement.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from lenet.config import Recipe
from lenet.errors import LenetError
from lenet.training.distributed import Dist
from lenet.training.optim import lr_at
from lenet.training.signals import StopRequest
from lenet.training.splits import Batches

if TYPE_CHECKING:
    from collections.abc import Callable


class Diverged(LenetError):
    """The loss became NaN or infinite: nothing from that point on is saved."""


CHECK_EVERY = 50  # batches between checks that the loss is still finite (each check waits for the device)
# Under torchrun, steps between the collective by which every rank agrees to stop or to write a
# mid-epoch checkpoint at the same step; a tiny all-reduce every few steps costs next to nothing.
SYNC_EVERY = 10
CHECKPOINT_SECONDS = 60.0  # mid-epoch checkpoints by default: at most this much work is lost
SNAPSHOTS_IN_FIRST_EPOCH = 8  # --snapshots: where most of the change happens


@dataclass
class EpochSums:
    """Sums over the batches of an epoch so far, kept as tensors on the device: no sync per batch."""
    loss: torch.Tensor      # float64, sum of per-image losses
    correct: torch.Tensor   # int64
    seen: int = 0

    @classmethod
    def zeros(cls, device) -> EpochSums:
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
    def from_dict(cls, d: dict, device) -> EpochSums:
        return cls(torch.tensor(d["loss"], dtype=torch.float64, device=device),
                   torch.tensor(d["correct"], dtype=torch.int64, device=device), d["seen"])


class WeightAverage:
    """An exponential moving average of a model's weights, updated after every step (Polyak &
    Juditsky 1992): `average = decay * average + (1 - decay) * weights`, starting at the weights
    it is made from. Batch norm's running statistics are averaged the same way, so the averaged
    network carries statistics of the same span; its step counts are copied."""

    def __init__(self, source: torch.nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"the average's decay must be between 0 and 1 (both excluded); got {decay!r}")
        self.decay = decay
        self.model = copy.deepcopy(source).eval()
        self.model.requires_grad_(False)
        # Training changes the tensors in place (the optimizer, load_state_dict), so the pairs hold.
        self.pairs = list(zip(self.model.state_dict().values(), source.state_dict().values(), strict=True))

    @torch.no_grad()
    def update(self) -> None:
        for mine, theirs in self.pairs:
            if mine.is_floating_point():
                mine.lerp_(theirs, 1 - self.decay)
            else:
                mine.copy_(theirs)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)


def train_step(model, optimizer, x: torch.Tensor, y: torch.Tensor, lr: float,
               recipe: Recipe) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step at learning rate `lr`; (loss, logits)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    logits = model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, logits


def train_one_epoch(model, optimizer, batches: Batches, recipe: Recipe, sums: EpochSums,
                    watch: Watch | None = None, average: WeightAverage | None = None) -> int:
    """One pass over `batches`, adding to `sums` (and to `average` after each step, when given).
    Returns the step it stopped before: len(batches) at the epoch's end, earlier when a stop was
    requested (after writing a checkpoint there)."""
    model.train()
    for step, x, y in batches:
        loss, logits = train_step(model, optimizer, x, y,
                                  lr_at(batches.first_global_step + step, batches.total_steps, recipe), recipe)
        if average is not None:
            average.update()
        sums.add(loss, logits, y)
        done = step + 1
        if watch is None:
            continue
        watch.advance()
        if done % CHECK_EVERY == 0 and not sums.finite():
            raise Diverged(f"training diverged: the loss became NaN or infinite in epoch {batches.epoch + 1} "
                           f"by batch {done} (learning rate {optimizer.param_groups[0]['lr']:g})")
        if watch.log_every and done % watch.log_every == 0:
            watch.log_progress(done, sums)
        if done == len(batches):
            break  # the epoch's end writes its own checkpoint and honours a stop request
        if watch.snapshot is not None and done in watch.snapshot_at:
            watch.snapshot(f"epoch {batches.epoch + 1}, batch {done}")
        stop, due = watch.agree(done)
        if stop:  # a checkpoint where the next batch would begin, so it never holds half a step
            watch.save(done, sums, batches.generator.get_state())
            return done
        if due:
            watch.save(done, sums, batches.generator.get_state())
    return len(batches)


class Watch:
    """What the loop's branches read between two steps: the progress bar, the log line every
    `log_every` batches, the snapshots' steps, and when a mid-epoch checkpoint is due
    (every `checkpoint_every` batches; 0: every CHECKPOINT_SECONDS). Under torchrun the ranks
    agree on stopping and checkpointing at the same step."""

    def __init__(self, batches: Batches, stop: StopRequest | None, save: Callable, *, log, log_every: int,
                 checkpoint_every: int = 0, snapshot: Callable | None = None):
        self.batches, self.dist, self.stop, self._save = batches, batches.dist, stop, save
        n, k = len(batches), SNAPSHOTS_IN_FIRST_EPOCH
        self.snapshot, self.snapshot_at = snapshot, {round(i * n / (k + 1)) for i in range(1, k + 1)} - {0, n}
        self.log, self.log_every = log, log_every
        self.checkpoint_every, self.saved_at = checkpoint_every, time.monotonic()
        self.bar = None

    def show_progress(self) -> None:
        """A progress bar for the epoch (rank 0), through which the log lines then print."""
        if self.dist.is_main:
            from tqdm.auto import tqdm  # a widget in a notebook, text on a terminal
            bar = tqdm(total=len(self.batches), initial=self.batches.start_step,
                       desc=f"epoch {self.batches.epoch + 1}", unit="batch", leave=False, dynamic_ncols=True)
            self.bar, self.log = bar, bar.write

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def log_progress(self, done: int, sums: EpochSums) -> None:
        loss_sum, correct, seen = sums.reduced(self.dist)
        if self.dist.is_main:
            self.log(f"epoch {self.batches.epoch + 1} batch {done}/{len(self.batches)}  "
                     f"loss {loss_sum / seen:.4f}  acc {correct / seen:.4f}")

    def save(self, done: int, sums: EpochSums, generator: torch.Tensor) -> None:
        self._save(done, sums, generator)
        self.saved_at = time.monotonic()

    def agree(self, done: int) -> tuple[bool, bool]:
        """(stop here, checkpoint here) after `done` steps of the epoch, the same on every rank."""
        every = self.checkpoint_every
        stop = self.stop is not None and self.stop.requested
        due = done % every == 0 if every else time.monotonic() - self.saved_at >= CHECKPOINT_SECONDS
        if not self.dist.active:
            return stop, due
        if done % SYNC_EVERY and not (every and done % every == 0):
            return False, False  # only at steps every rank reaches with the same count
        stop, due = self.dist.any(stop, due)
        return stop, due

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def all_finite(model) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())
