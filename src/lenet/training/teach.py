"""Fine-tune a model on a user's own samples, replaying MNIST so nothing else is forgotten.

Only the layers from `Teaching.train_from` on learn; the ones before (the
convolutions that find strokes) keep the base model's weights, so their output
is computed without gradients, once for the model and the base alike. Each
step's batch is a share of samples, the rest MNIST training digits; every
sample is distorted anew each time (augment.py), so a handful is seen in many
small variants, while the replayed digits come from a pool run through the kept
layers once, half of it distorted once and half as MNIST gives it (the clean
digits that look like a taught glyph are the ones lost). Four things keep what
the model knew: half the pool is of the classes the samples are mistaken for (a
Devanagari 1 read as a 9: the 9s are what it must not lose), the replayed
digits are also fitted
to the base model's own probabilities, softened by a temperature (distillation,
Hinton et al. 2015; "learning without forgetting", Li & Hoiem 2016), batch norm keeps the
statistics it learned on MNIST (its layers stay in evaluation mode), and the
kept layers do not move at all. MNIST's test set is scored before and after
(through the kept layers' output, computed once), and both figures go into the
new model's card.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lenet.config import check_int
from lenet.data.mnist import Dataset
from lenet.data.samples import MODEL, Folder, read_folder
from lenet.errors import DataError, LenetError, UsageError
from lenet.evaluation.scoring import Split
from lenet.files import FolderLock, check_writable_file
from lenet.nn.model_file import resolve_model_path, save_model
from lenet.nn.torch_model import Described, count_parameters, load_model, normalize
from lenet.training.augment import distort, roughen
from lenet.training.optim import SGD, lr_at
from lenet.training.record import versions


@dataclass(frozen=True)
class Teaching:
    """How a model is taught: few, small, gentle steps from where it stands."""
    steps: int = 900          # optimizer steps in all
    batch_size: int = 128     # images per step, samples and MNIST together
    sample_share: float = 0.1875  # of each batch drawn from the samples (with replacement)
    conflict_share: float = 0.5  # of the replay pool drawn from the classes the samples are mistaken for
    distill: float = 4.0      # weight of the replayed digits' KL divergence to the base model's probabilities
    temperature: float = 2.0  # of that distillation (Hinton et al. 2015), its loss scaled by the square: above 1 it
    # holds how far each digit is from the other classes too, which is what a taught glyph erodes
    train_from: str = "c5"    # the first layer trained (network.describe's name); the ones before keep their weights
    clean_replay: float = 0.5  # of the replay pool left undistorted: clean digits near a taught glyph are what is lost
    replay_pool: int = 16384  # MNIST digits replayed, distorted once or not (the samples are distorted anew each step)
    lr: float = 0.02          # peak rate, warmed up then cosine to 0 (optim.lr_at's one-cycle)
    momentum: float = 0.9     # SGD, Nesterov
    weight_decay: float = 5e-4  # on weights only, as the recipes train
    schedule: str = "onecycle"
    warmup: float = 0.1       # fraction of the steps

    def __post_init__(self):
        check_int("--steps", self.steps, 1, 10_000)
        check_int("--batch-size", self.batch_size, 2, 4096)
        check_int("replay_pool", self.replay_pool, 1, 1_000_000)
        if not self.temperature > 0:
            raise UsageError(f"temperature must be above 0; got {self.temperature}")
        if not 0.0 <= self.clean_replay <= 1.0:
            raise UsageError(f"clean_replay is a share of the replay pool, from 0 to 1; got {self.clean_replay}")

    @property
    def samples_per_step(self) -> int:
        return min(self.batch_size - 1, max(1, round(self.batch_size * self.sample_share)))


def freeze_batch_norm(model: nn.Module) -> None:
    """Train every weight, but keep batch norm's running statistics (MNIST's) as they are."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def split(model: Described, first_trained: str) -> tuple[slice, slice]:
    """(kept, trained): the stretches of the model's description before `first_trained` and from it."""
    names = [layer.name for layer in model.description]
    if first_trained not in names:
        raise UsageError(f"train_from {first_trained!r}: not a layer of this network ({', '.join(names)})")
    at = names.index(first_trained)
    return slice(0, at), slice(at, None)


def kept_modules(model: Described, kept: slice) -> list[nn.Module]:
    return [getattr(model, name) for layer in model.description[kept]
            for name in (layer.name, layer.batch_norm) if name]


def run(model: Described, x: torch.Tensor, part: slice) -> torch.Tensor:
    """The output of the stretch `part` of the model's layers, given the output of the layer before it."""
    for _, y in model.layers(x, part):
        x = y
    return x


def features(model: Described, config, images: torch.Tensor, kept: slice, batch_size: int = 2000) -> torch.Tensor:
    """What the kept layers make of uint8 `images`, in batches: computed once, as they never change."""
    with torch.no_grad():
        return torch.cat([run(model, normalize(images[i:i + batch_size], config), kept)
                          for i in range(0, len(images), batch_size)]) if len(images) else images[:0].float()


def accuracy(model: Described, feats: torch.Tensor, labels: torch.Tensor, trained: slice) -> float:
    """The share of `labels` the trained layers read right from the kept layers' `feats`."""
    model.eval()
    with torch.no_grad():
        return int((run(model, feats, trained).argmax(1) == labels).sum()) / max(1, len(labels))


class Replay:
    """Which MNIST digits to replay: any, and those of the classes the samples are mistaken for."""

    def __init__(self, model: Described, config, samples: Split, mnist: Split):
        with torch.no_grad():
            read = model(normalize(samples.images, config)).argmax(1)
        mistaken_for = read[read != samples.labels]
        self.weights = torch.bincount(mistaken_for, minlength=config.num_classes).float()
        order = torch.argsort(mnist.labels, stable=True)  # each class's indices, one slice of it
        counts = torch.bincount(mnist.labels, minlength=config.num_classes)
        self.order, self.starts, self.counts = order, torch.cumsum(counts, 0) - counts, counts

    def draw(self, n: int, share: float, total: int, gen: torch.Generator) -> torch.Tensor:
        k = round(n * share) if self.weights.sum() > 0 else 0
        anywhere = torch.randint(total, (n - k,), generator=gen)
        if not k:
            return anywhere
        classes = torch.multinomial(self.weights, k, replacement=True, generator=gen)
        within = (torch.rand(k, generator=gen) * self.counts[classes]).long()
        return torch.cat([anywhere, self.order[self.starts[classes] + within]])


def distorted(images: torch.Tensor, config, gen: torch.Generator) -> torch.Tensor:
    """uint8 images (N, H, W), normalised and each distorted anew (augment.py): (N, 1, H, W)."""
    background, ink = config.normalize(0.0), config.normalize(255.0)
    return roughen(distort(normalize(images, config), gen, background), gen, background, ink)


def replay_pool(base: Described, config, mnist: Split, replay: Replay, teaching: Teaching, gen: torch.Generator,
                batch_size: int = 1024):
    """(x, y, held): `teaching.replay_pool` MNIST digits, distorted once and run through the kept
    layers, with the base model's log-probabilities for them; every step draws its replay from it."""
    kept, trained = split(base, teaching.train_from)
    wanted = teaching.steps * (teaching.batch_size - teaching.samples_per_step)  # never more than the steps draw
    pick = replay.draw(min(teaching.replay_pool, wanted), teaching.conflict_share, len(mnist), gen)
    xs, held = [], []
    with torch.no_grad():
        clean = (torch.rand(len(pick), generator=gen) < teaching.clean_replay if teaching.clean_replay
                 else torch.zeros(len(pick), dtype=torch.bool))
        for i in range(0, len(pick), batch_size):
            images = mnist.images[pick[i:i + batch_size]]
            x = torch.where(clean[i:i + batch_size, None, None, None], normalize(images, config),
                            distorted(images, config, gen))
            x = run(base, x, kept)
            xs.append(x)
            held.append(F.log_softmax(run(base, x, trained) / teaching.temperature, 1))
    return torch.cat(xs), mnist.labels[pick], torch.cat(held)


def fine_tune(model: Described, config, samples: Split, mnist: Split, teaching: Teaching, seed: int = 0) -> list[float]:
    """Teach `model` in place; returns the loss of each step."""
    gen = torch.Generator().manual_seed(seed)
    base = copy.deepcopy(model).eval()  # what the replayed digits are held to
    kept, trained = split(model, teaching.train_from)
    replay = Replay(model, config, samples, mnist)
    pool_x, pool_y, pool_held = replay_pool(base, config, mnist, replay, teaching, gen)
    frozen = {id(p) for m in kept_modules(model, kept) for p in m.parameters()}
    learning = [p for p in model.parameters() if id(p) not in frozen]
    decay = [p for p in learning if p.ndim > 1]
    rest = [p for p in learning if p.ndim <= 1]
    optimizer = SGD([{"params": decay, "weight_decay": teaching.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                    lr=teaching.lr, momentum=teaching.momentum, nesterov=True)
    freeze_batch_norm(model)
    k = teaching.samples_per_step
    losses = []
    for step in range(teaching.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, teaching.steps, teaching)
        pick_s = torch.randint(len(samples), (k,), generator=gen)
        pick_r = torch.randint(len(pool_y), (teaching.batch_size - k,), generator=gen)
        with torch.no_grad():  # the kept layers do not learn: no gradient through them
            own = run(model, distorted(samples.images[pick_s], config, gen), kept)
        scores = run(model, torch.cat([own, pool_x[pick_r]]), trained)
        loss = F.cross_entropy(scores, torch.cat([samples.labels[pick_s], pool_y[pick_r]]))
        if teaching.distill:
            t = teaching.temperature
            loss = loss + teaching.distill * t * t * F.kl_div(F.log_softmax(scores[k:] / t, 1), pool_held[pick_r],
                                                              log_target=True, reduction="batchmean")
        if not torch.isfinite(loss):
            raise LenetError(f"teaching diverged at step {step + 1} (the loss is not finite); nothing was written")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def check_samples(folder: Folder, directory: Path) -> None:
    """Refuse, in one line, a samples folder that leaves nothing to learn from."""
    if len(folder) == 0:
        why = f" ({folder.skipped_line()})" if folder.skipped else ""
        raise DataError(f"{directory}: no samples to learn from: put images in label folders "
                         f"({directory}/7/a.png, ...){why}")


def teaching_paths(samples_dir: str | Path, model_path: str | Path, out: str | Path | None) -> tuple[Path, Path, Path]:
    """The samples folder (which must exist), the base model's file and the file to write (default:
    the samples folder's model file; a folder means the model file inside it)."""
    samples_dir = Path(samples_dir).expanduser()
    if not samples_dir.is_dir():
        raise DataError(f"{samples_dir}: no such folder (a samples folder holds DIR/0, DIR/1, ... of images)")
    out = Path(out) if out is not None else samples_dir / MODEL
    if out.is_dir():
        out = out / MODEL
    check_writable_file(out, "--out")
    return samples_dir, resolve_model_path(model_path), out


def teach(samples_dir: str | Path, ds: Dataset, model_path: str | Path, out: str | Path | None = None, *,
          teaching: Teaching = Teaching(), seed: int = 0, command: str = "", log=print) -> dict:
    """Fine-tune the model at `model_path` on the samples in `samples_dir`, with `ds`'s training
    digits replayed; write the new model to `out` (default: the samples folder's model file) and
    return its card (the info it records)."""
    t0 = time.perf_counter()
    samples_dir, model_path, out = teaching_paths(samples_dir, model_path, out)
    model, config, base_info = load_model(model_path)
    if config.image_size != 28:
        raise UsageError(f"{model_path}: takes {config.image_size}x{config.image_size} images; samples are 28x28")
    folder = read_folder(samples_dir, config.num_classes)
    check_samples(folder, samples_dir)
    if folder.skipped:
        log(folder.skipped_line())
    if int(ds.train_labels.max()) >= config.num_classes:
        raise DataError(f"{ds.root}: its labels go beyond the model's {config.num_classes} classes")
    mnist_train = Split.of(ds.train_images, ds.train_labels, "train")
    own = Split.of(folder.images, folder.labels, "samples")
    kept, trained = split(model, teaching.train_from)
    # Scored before and after through the kept layers' output, computed once: they do not change.
    test = Split.of(ds.test_images, ds.test_labels, "test")
    test_feats = features(model, config, test.images, kept)
    own_feats = features(model, config, own.images, kept)
    before, own_before = accuracy(model, test_feats, test.labels, trained), accuracy(model, own_feats, own.labels,
                                                                                     trained)
    t1 = time.perf_counter()
    losses = fine_tune(model, config, own, mnist_train, teaching, seed)
    seconds = time.perf_counter() - t1
    after, own_after = accuracy(model, test_feats, test.labels, trained), accuracy(model, own_feats, own.labels,
                                                                                   trained)
    card = {"samples": len(folder), "per_label": folder.per_label(), "samples_dir": str(samples_dir),
            "skipped": folder.skipped[:100], "base_model": str(model_path),
            "base_recipe": base_info.get("recipe", {}).get("name"), "teaching": asdict(teaching), "seed": seed,
            "mnist_test_before": before, "mnist_test_after": after,
            "samples_accuracy_before": own_before, "samples_accuracy_after": own_after,
            "final_loss": float(np.mean(losses[-10:])), "seconds_teaching": round(seconds, 3)}
    info = {"model": config.to_dict(), "parameters": count_parameters(model),
            "recipe": base_info.get("recipe", {}), "command": command, "dataset": ds.root.name,
            "validation": "test", "test_accuracy": after,
            "metrics": {"val_accuracy": after}, "history": [{"step": teaching.steps, "val_accuracy": after,
                                                              "train_loss": card["final_loss"]}],
            "teach": card, "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if "calibration" in base_info:
        info["calibration"] = base_info["calibration"]
    with FolderLock(out.parent):  # two teachings never write one model at once
        save_model(out, model, info)
    per_label = ", ".join(f"{n} of {label}" for label, n in card["per_label"].items())
    k = teaching.samples_per_step
    log(f"taught {model_path.name} {len(folder)} samples ({per_label}) in {teaching.steps} steps of "
        f"{teaching.batch_size} ({k} samples, the rest MNIST), "
        f"{seconds:.1f} s; {time.perf_counter() - t0:.1f} s in all")
    log(f"samples read right: {own_before:.1%} before, {own_after:.1%} after")
    log(f"MNIST test accuracy: {before:.4f} before, {after:.4f} after")
    log(f"saved {out}")
    return info
