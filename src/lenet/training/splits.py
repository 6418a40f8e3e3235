"""The training data in memory: the splits, printed digits added, and an epoch's batches.

The data never leaves memory and never passes through per-sample Python: an
epoch is a seeded permutation of indices, each batch is a slice converted to
float and normalised on the spot (`Batches`). Every epoch's order comes from
(seed, epoch), and the random state mid-epoch is saved with the checkpoint, so
a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from lenet.config import ModelConfig, Recipe
from lenet.data.mnist import Dataset
from lenet.errors import DataError, UsageError
from lenet.evaluation.scoring import Split
from lenet.nn.torch_model import normalize
from lenet.training.augment import distort, roughen
from lenet.training.distributed import Dist


def make_splits(ds: Dataset, device: torch.device, subset: int | None = None,
                holdout: int = 0) -> tuple[Split, Split]:
    """(train, validation). Validation is the whole test set, as in the tutorial, or with
    `holdout` > 0 the last `holdout` training images (for choosing hyperparameters honestly)."""
    x, y = ds.train_images, ds.train_labels
    if holdout:
        if not 0 < holdout < len(y):
            raise UsageError(f"--holdout {holdout}: must be between 1 and {len(y) - 1}")
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


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class Batches:
    """One epoch of training batches: (step, x, y), x normalised (and distorted) on the spot.

    The order is a permutation drawn from (seed, epoch); the same generator then draws the
    augmentation, so a checkpoint that stores its state mid-epoch resumes exactly. Under
    torchrun every rank draws the same order and takes every world-th image of each global
    batch of `recipe.batch_size`: distinct shards that together make the same global batches
    as one process would see."""

    def __init__(self, split: Split, config: ModelConfig, recipe: Recipe, *, seed: int, epoch: int,
                 dist: Dist, resume_at: tuple[int, torch.Tensor | None] = (0, None), channels_last: bool = False):
        """`resume_at`: (the step a resumed epoch starts at, the epoch generator's state there)."""
        self.split, self.config, self.recipe, self.dist = split, config, recipe, dist
        (self.start_step, generator_state), self.epoch = resume_at, epoch
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


def batches_per_epoch(n: int, batch_size: int, world: int = 1) -> int:
    """Every image once. A last batch that would leave a rank fewer than two images joins the batch
    before it (batch norm cannot train on one image), so no image is ever dropped."""
    full, rest = divmod(n, batch_size)
    return full if full and rest < 2 * world else full + (1 if rest else 0)


def check_trainable(n: int, world: int = 1) -> None:
    """A ValueError, before any work, when there are too few images to give each process two."""
    if n < 2 * world:
        raise DataError(f"{n} training image{'' if n == 1 else 's'}: training needs at least {2 * world} "
                         f"({'two per process' if world > 1 else 'batch norm cannot learn from one'}); "
                         f"give a larger --subset")
