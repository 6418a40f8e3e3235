"""A training run: the options, the output folder, `fit` and the `Trainer` it drives, resuming
(what a run records is in record.py).

`fit` reads top-down: set up, then each epoch's visible exits (stopped mid-epoch, trained, stopped
after it), then finish. `train_on` is what `lenet train` and `lenet.train()` call.
"""

from __future__ import annotations

import os
import shlex
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lenet.config import ModelConfig, Recipe, check_int, flag
from lenet.data.mnist import Dataset
from lenet.errors import DataError, LenetError, UsageError
from lenet.evaluation.scoring import Split, held_out_scores, resolve_device, score
from lenet.files import FolderLock, clean_stale_temps
from lenet.nn.model_file import MODEL_FILE, save_model
from lenet.nn.network import check_image_size
from lenet.nn.torch_model import build_model, count_parameters, init_weights
from lenet.training.checkpoint import (
    CHECKPOINT_FILE,
    Checkpoint,
    check_checkpoint_fits,
    check_same_run,
    load_checkpoint,
    resumed_settings,
    save_checkpoint,
)
from lenet.training.distributed import Dist

if TYPE_CHECKING:
    from lenet.training.snapshots import Snapshots
from lenet.training.loop import Diverged, EpochSums, Watch, WeightAverage, all_finite, train_one_epoch
from lenet.training.optim import make_optimizer, match_parameter_layouts
from lenet.training.record import versions, weights_digest, write_metrics_csv
from lenet.training.signals import Interrupted, StopRequest
from lenet.training.splits import Batches, batches_per_epoch, check_trainable, make_splits, with_printed


@dataclass(frozen=True)
class RunOptions:
    """How a run trains and what it records, besides the recipe: what `lenet train` and
    `lenet.train()` build from their flags and arguments, and `train_on` takes."""
    resume: bool = False
    seed: int = 0
    subset: int | None = None    # train on the first N training images
    holdout: int = 0             # validate on the last N training images instead of the test set
    epochs: int | None = None    # with resume: train on to this many epochs
    log_every: int = 50          # batches between log lines; 0: none
    progress: bool = False
    plots: bool = True
    checkpoint_every: int = 0    # batches between mid-epoch checkpoints; 0: every CHECKPOINT_SECONDS
    snapshots: bool = False      # record how C1 learns: learning.png and learning.gif (snapshots.py)
    command: str = ""
    test_each_epoch: bool = False  # with a holdout, also score the test set after every epoch (recorded only)
    channels_last: bool = True   # NHWC activations: faster convolutions on CPU (see benchmarks/)

    def check(self) -> None:
        """The same bounds and words as the command's flags."""
        for name, value, low in (("seed", self.seed, 0), ("holdout", self.holdout, 0),
                                 ("log_every", self.log_every, 0), ("checkpoint_every", self.checkpoint_every, 0),
                                 ("subset", 1 if self.subset is None else self.subset, 1)):
            check_int(flag(name), value, low, 2**31 - 1)


@dataclass
class Run:
    """What `fit` needs besides the model: where to write, how, and what to record."""
    out: Path
    options: RunOptions = field(default_factory=RunOptions)
    meta: dict = field(default_factory=dict)  # dataset, split and anything else to record
    test: Split | None = None   # scored once at the end when validation is a holdout
    start_from: dict | None = None  # a state dict of the run's network to start from instead of fresh weights


def fit(recipe: Recipe, config: ModelConfig, train: Split, val: Split, run: Run, *,
        resume: Checkpoint | None = None, log=print, dist: Dist | None = None) -> dict:
    """Train from scratch (from the weights `run.start_from`, a state dict of `config`'s network,
    when given; or on from the checkpoint `resume`), writing a checkpoint every epoch and
    the final model, metrics and plots into `run.out`. Returns the saved model's info; raises
    Interrupted, with a checkpoint written, when Ctrl-C or SIGTERM stopped it.

    Under torchrun (`dist.active`) every rank trains its shard through DistributedDataParallel;
    rank 0 alone logs and writes files, holding the output folder's lock."""
    dist = dist or Dist(device=train.labels.device)
    with output_folder(run.out, dist):
        trainer = Trainer(recipe, config, run, dist, train.labels.device, resume, log)
        trainer.log(f"{trainer.summary}; {len(train):,} training images, validation on {val.name} ({len(val):,})")
        if run.options.snapshots and dist.is_main:
            trainer.start_snapshots(val)
        with StopRequest() as stop:
            for epoch in range(trainer.epoch, recipe.epochs):
                sums, seconds, stopped_at = trainer.train_epoch(train, epoch, stop)
                if stopped_at is not None:
                    raise Interrupted(f"interrupted in epoch {epoch + 1} at batch {stopped_at}; checkpoint written "
                                      f"to {trainer.checkpoint_path}; continue with: {resume_command(run)}")
                trainer.end_epoch(epoch, sums, seconds, val)
                if dist.any(stop.requested)[0] and epoch + 1 < recipe.epochs:  # every rank agrees
                    raise Interrupted(f"interrupted after epoch {epoch + 1}; checkpoint written to "
                                      f"{trainer.checkpoint_path}; continue with: {resume_command(run)}")
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
        torch.manual_seed(run.options.seed)
        self.model = build_model(config)
        init_weights(self.model, recipe.init, recipe.activation)
        if run.start_from is not None:
            self.model.load_state_dict(run.start_from)
        self.model.to(device)
        if run.options.channels_last:
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit memory_format
        self.optimizer = make_optimizer(self.model, recipe)
        self.average = WeightAverage(self.model, recipe.ema) if recipe.ema else None
        self.net: torch.nn.Module = self.model
        if dist.active:
            from torch.nn.parallel import DistributedDataParallel
            self.net = DistributedDataParallel(self.model, device_ids=[device] if device.type == "cuda" else None)
        self.history: list[dict] = []
        self.epoch, self.step = 0, 0
        self.sums: EpochSums | None = None
        self.generator = None
        self.already = 0  # images of the current epoch trained before a resume (not counted in images/s)
        self.snapshots: Snapshots | None = None
        if resume is not None:
            self.restore(resume)

    def start_snapshots(self, val: Split) -> None:
        """Record how C1 learns, on the first validation image, from where training stands."""
        from lenet.training.snapshots import Snapshots

        snapshots = self.snapshots = Snapshots(self.model, val.images[0].cpu(), self.config)
        resumed = not (self.epoch == 0 and self.step == 0)
        if resumed:  # the frames before the interruption were in the killed process's memory
            self.log(f"note: --snapshots on a resumed run: learning.png and learning.gif start at the resume point "
                     f"(epoch {self.epoch + 1}, batch {self.step}); the frames before it were not kept")
        snapshots.take(f"resumed, epoch {self.epoch + 1}" if resumed else "start")

    @property
    def kept(self) -> torch.nn.Module:
        """The network each epoch's validation scores and the run saves: the weights' moving
        average when the recipe keeps one, else the weights themselves."""
        return self.average.model if self.average is not None else self.model

    @property
    def summary(self) -> str:
        c, dist = self.config, self.dist
        return (f"{c.arch} ({c.activation}), {count_parameters(self.model):,} parameters, recipe {self.recipe.name}; "
                f"device {self.device}" + (f"; {dist.world} processes, global batch {self.recipe.batch_size}"
                                            if dist.active else ""))

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue exactly where `ckpt` stopped: weights, optimizer, history, position, RNG."""
        if ckpt.info["meta"].get("dataset_sha256") != self.run.meta.get("dataset_sha256"):
            raise UsageError(f"{ckpt.path}: the checkpoint was trained on other data "
                             f"(dataset checksum differs); point --data-dir at the same files")
        self.model.load_state_dict(ckpt.model)
        if self.average is not None:
            if ckpt.average is None:  # load_checkpoint refuses such a file; a hand-built Checkpoint may not
                raise UsageError(f"{ckpt.path}: the recipe keeps a moving average of the weights (ema); "
                                 f"the checkpoint holds none")
            self.average.load_state_dict(ckpt.average)
        self.optimizer.load_state_dict(ckpt.optimizer)
        match_parameter_layouts(self.optimizer)
        info = ckpt.info
        self.history, self.epoch, self.step = info["history"], info["epoch"], info["step"]
        if self.step:
            self.sums = EpochSums.from_dict(info["running"], self.device)
            self.generator = ckpt.extra["generator"]
        torch.set_rng_state(ckpt.extra["torch_rng"])
        self.log(f"resuming from {ckpt.path}: epoch {self.epoch + 1}, batch {self.step}")

    def train_epoch(self, train: Split, epoch: int, stop: StopRequest) -> tuple[EpochSums, float, int | None]:
        """One epoch (or the rest of a resumed one): (its sums, seconds, None), or on a stop request
        (sums, seconds, the step it stopped before) with a checkpoint written there."""
        t0 = time.perf_counter()
        # A resumed epoch's partial sums count once, on rank 0; the images/s count only this run's.
        sums = self.sums if self.sums is not None and self.dist.is_main else EpochSums.zeros(self.device)
        self.already = self.sums.seen if self.sums is not None else 0
        options = self.run.options
        batches = Batches(train, self.config, self.recipe, seed=options.seed, epoch=epoch, dist=self.dist,
                          resume_at=(self.step, self.generator),
                          channels_last=options.channels_last)
        watch = Watch(batches, stop,
                      lambda step, sums, generator: self.checkpoint(epoch, step, self.global_sums(sums), generator),
                      log=self.log, log_every=options.log_every, checkpoint_every=options.checkpoint_every,
                      snapshot=self.snapshots.take if self.snapshots and epoch == 0 else None)
        if options.progress:
            watch.show_progress()
        try:
            stopped_at = train_one_epoch(self.net, self.optimizer, batches, self.recipe, sums, watch, self.average)
        except Diverged as e:
            raise Diverged(f"{e}. Nothing from this epoch was saved"
                           + (f"; {self.checkpoint_path} holds the last good epoch"
                              if self.checkpoint_path.is_file() else "") + "; try a lower --lr") from None
        finally:
            watch.close()
        if stopped_at < len(batches):
            return sums, time.perf_counter() - t0, stopped_at
        self.step, self.sums, self.generator = 0, None, None
        return sums, time.perf_counter() - t0, None

    def end_epoch(self, epoch: int, sums: EpochSums, seconds: float, val: Split) -> None:
        """Validate, record, checkpoint."""
        loss_sum, correct, seen = sums.reduced(self.dist)
        self.dist.broadcast_buffers(self.model)
        if self.average is not None:
            self.dist.broadcast_buffers(self.average.model)
        metrics = score(self.kept, val, self.config, dist=self.dist)
        row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
               "val_loss": metrics.loss, "val_accuracy": metrics.accuracy, "seconds": round(seconds, 3),
               "images_per_second": round((seen - self.already) / seconds),
               "lr": self.optimizer.param_groups[0]["lr"]}
        if self.average is not None:
            # The weights themselves on the same holdout: what the average adds, without the test set.
            row["raw_val_accuracy"] = score(self.model, val, self.config, dist=self.dist).accuracy
        if self.run.options.test_each_epoch and self.run.test is not None:
            # Recorded only, never read by any choice: the evidence of what picking an epoch on the
            # test set would flatter (benchmarks/accuracy.py).
            row["test_accuracy"] = score(self.kept, self.run.test, self.config, dist=self.dist).accuracy
            if self.average is not None:
                row["raw_test_accuracy"] = score(self.model, self.run.test, self.config, dist=self.dist).accuracy
        self.history.append(row)
        self.log(f"epoch {epoch + 1}/{self.recipe.epochs}  train loss {row['train_loss']:.4f} "
                 f"acc {row['train_accuracy']:.4f}  val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.4f}  "
                 f"{seconds:.1f} s  {row['images_per_second']:,} img/s")
        self.checkpoint(epoch + 1, 0, None, None)
        if self.snapshots:
            self.snapshots.take(f"epoch {epoch + 1}")
        if self.dist.is_main:
            write_metrics_csv(self.run.out / "metrics.csv", self.history)

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
        average_finite = self.average is None or all_finite(self.average.model)
        if not all_finite(self.model) or not average_finite or (sums is not None and not sums.finite()):
            raise Diverged(f"training diverged in epoch {epoch + 1}: the weights or the loss are NaN or infinite; "
                           f"nothing was saved from this epoch; try a lower --lr")
        if not self.dist.is_main:
            return
        state = {"epoch": epoch, "step": step, "history": self.history, "recipe": self.recipe.to_dict(),
                 "model": self.config.to_dict(), "seed": self.run.options.seed, "meta": self.run.meta,
                 "running": sums.to_dict() if sums else None}
        extra = {"torch_rng": torch.get_rng_state()}
        if generator is not None:
            extra["generator"] = generator
        save_checkpoint(self.checkpoint_path, self.model, self.optimizer, state, extra,
                        average=self.average.state_dict() if self.average is not None else None)

    def finish(self, val: Split) -> dict:
        """Save the model, metrics and plots (rank 0); return the model's info."""
        run, history = self.run, self.history
        info = {"model": self.config.to_dict(), "parameters": count_parameters(self.model),
                "recipe": self.recipe.to_dict(), "seed": run.options.seed, "command": run.options.command, **run.meta,
                "validation": val.name, "metrics": history[-1] if history else {}, "history": history,
                "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if self.dist.active:
            digests = self.dist.all_gather_object(weights_digest(self.kept))
            if len(set(digests)) != 1:
                raise LenetError(f"ranks ended with different weights: {digests}")
            info["distributed"] = {"world_size": self.dist.world, "backend": self.dist.backend,
                                   "weights_sha256": digests[0], "weights_identical_across_ranks": True}
        if not self.dist.is_main:
            return info
        if val.name.startswith("holdout"):
            # Held-out training images: fit the temperature and the unsure threshold on them.
            from lenet.evaluation.calibration import calibrate

            info["calibration"] = calibrate(*held_out_scores(self.kept, val, self.config))
            self.config = replace(self.config, temperature=info["calibration"]["temperature"],
                                  unsure_below=info["calibration"]["unsure_below"])
            info["model"] = self.config.to_dict()
            if self.run.test is not None:  # validation was a holdout: the test set still gets its say
                info["test_accuracy"] = score(self.kept, self.run.test, self.config).accuracy
            self.log(f"calibration on {val.name}: temperature {self.config.temperature:.3f}, unsure below "
                     f"{self.config.unsure_below:.3f}; expected calibration error "
                     f"{info['calibration']['ece_before']:.4f} -> {info['calibration']['ece_after']:.4f}")
        save_model(run.out / MODEL_FILE, self.kept, info)
        write_metrics_csv(run.out / "metrics.csv", history)
        if run.options.plots and history:
            from lenet.figures import plot_history
            plot_history(history, run.out)
        if self.snapshots:
            self.snapshots.write(run.out)
        return info


def train_on(ds: Dataset, recipe: Recipe | None, out: str | Path, options: RunOptions | None = None, *,
             dist: Dist | None = None, log=print) -> dict:
    """Everything `lenet train` does once its arguments are parsed: the settings (from `recipe`, or
    from the checkpoint in `out` when resuming: read once, here), the splits, then `fit`.

    When torchrun has restarted the workers (an elastic restart) and `out` holds this run's
    checkpoint, training resumes from it by itself; a checkpoint of another run is an error."""
    options = options or RunOptions()
    options.check()
    dist = dist or Dist(device=resolve_device("auto"))
    out, ckpt = Path(out), None
    restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if not options.resume and restart > 0 and (out / CHECKPOINT_FILE).is_file():
        ckpt = load_checkpoint(out / CHECKPOINT_FILE)
        check_same_run(ckpt, recipe, ds, options)
        options = replace(options, resume=True)
        if dist.is_main:
            log(f"elastic restart {restart}: resuming from {out / CHECKPOINT_FILE}")
    if options.resume:
        ckpt = ckpt or load_checkpoint(out / CHECKPOINT_FILE)
        recipe, config, options, meta = resumed_settings(ckpt, ds, options)
    else:
        if recipe is None:
            raise UsageError("a recipe is needed to start a run (none only with --resume)")
        try:
            check_image_size(recipe.arch, *ds.image_shape)
        except ValueError as e:
            raise DataError(f"{ds.root}: {e}") from None
        config = recipe.model_config(ds.num_classes, ds.image_shape[0])
        # data_dir: where --resume finds the data again without --data-dir (recorded_data_dir)
        meta = {"dataset": ds.root.name, "dataset_sha256": ds.sha256, "data_dir": str(ds.root.resolve()),
                "subset": options.subset, "holdout": options.holdout, "command": options.command}
    if dist.active and recipe.batch_size % dist.world:
        raise UsageError(f"--batch-size {recipe.batch_size} is the global batch: it must divide evenly "
                         f"among {dist.world} processes")
    train, val = make_splits(ds, dist.device, options.subset, options.holdout)
    check_trainable(len(train), dist.world)
    test = Split.of(ds.test_images, ds.test_labels, "test", dist.device) if options.holdout else None
    if recipe.printed:
        train = with_printed(train, recipe.printed, log if dist.is_main else (lambda *a, **k: None))
    if ckpt is not None:
        check_checkpoint_fits(ckpt, ds.num_classes, ds.image_shape, batches_per_epoch(len(train), recipe.batch_size,
                                                                                       dist.world))
    run = Run(out=out, options=options, meta=meta, test=test)
    return fit(recipe, config, train, val, run, resume=ckpt, log=log, dist=dist)


def resume_command(run: Run) -> str:
    """The command that continues `run` from its checkpoint, quoted for a shell: with --data-dir,
    so it works offline and from any folder."""
    args = ["lenet", "train", "--resume", "--out", str(run.out)]
    if run.meta.get("data_dir"):
        args += ["--data-dir", run.meta["data_dir"]]
    return shlex.join(args)
