"""The run folder's Keras callbacks, which survive a kill: history and best model written atomically, the backup,
resumable stopping, the collapse rollback and the schedule. Ordinary classes, so they can be named, subclassed and
tested; this module imports Keras at once, and the engine imports it only when it fits."""
import math
from pathlib import Path

import keras
import pandas as pd

from cnn.runfolder import BACKUP, HISTORY, MODEL, backup_epoch
from cnn.training import log
from cnn.training.collapse import ROLLBACKS, collapse_epochs, fell_to_share
from cnn.training.resumed_seeds import ResumedSeeds
from cnn.training.schedule import rate_at
from common.atomic import atomic_path, write_csv
from common.interrupts import pressed


def resumed_history(run_dir, done):
    """The first `done` rows of history.csv (a kill may land after the history write, before the backup's)."""
    path = Path(run_dir) / HISTORY
    if done is None or not path.is_file():
        return pd.DataFrame()
    history = pd.read_csv(path)
    return history[history["epoch"] < done]


def stopping_state(history, done):
    """The early-stopping state a resumed run's history implies: (best val_loss, its epoch, epochs waited)."""
    if history.empty or "val_loss" not in history:
        return None
    best_row = int(history["val_loss"].to_numpy().argmin())
    best_epoch = int(history["epoch"].iloc[best_row])
    return float(history["val_loss"].iloc[best_row]), best_epoch, done - 1 - best_epoch


class HistoryFile(keras.callbacks.Callback):
    """history.csv rewritten whole, atomically, after every epoch: never a half-written row."""

    def __init__(self, path, previous, columns):
        super().__init__()
        self.path, self.rows = Path(path), previous.to_dict("records")
        self.extra = columns  # e.g. fine-tuning's phase, --progressive's image size

    def on_epoch_end(self, epoch, logs=None):
        rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))  # at the epoch's end
        self.rows.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}, "learning_rate": rate,
                          **self.extra})
        write_csv(self.path, pd.DataFrame(self.rows), index=False)


class BestModel(keras.callbacks.Callback):
    """model.keras: saved (to a temporary file, then renamed) whenever val_loss reaches a new finite low."""

    def __init__(self, path, best=math.inf, saved=None):
        super().__init__()
        self.path, self.best, self.saved = Path(path), best, saved

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get("val_loss")
        if current is None or not math.isfinite(current) or current >= self.best:
            return
        self.best = current
        with atomic_path(self.path) as tmp:
            (self.saved or self.model).save(tmp)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping on val_loss (best weights restored) whose best value and wait carry over a kill."""

    def __init__(self, patience, resumed=None):
        super().__init__(monitor="val_loss", patience=patience, restore_best_weights=True)
        self.resumed = resumed

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.resumed is not None:
            self.best, self.best_epoch, self.wait = self.resumed


class Rollback(keras.callbacks.Callback):
    """Keeps the weights and optimizer state each epoch starts from and, when the epoch's validation accuracy fell to
    `val_share` (cnn.training.collapse), puts them back (the step count, and with it the schedule's rate and the
    data, go on) and logs it; at the (ROLLBACKS + 1)-th collapse of the run (`history`: its earlier epochs) it stops
    training."""

    def __init__(self, val_share, history):
        super().__init__()
        self.val_share = val_share
        self.best = max(history.get("val_accuracy", ()), default=-math.inf)
        self.collapses = len(collapse_epochs(history, val_share))

    def state(self):
        optimizer = self.model.optimizer
        if not optimizer.built:  # its moments must come back too, so make them now
            optimizer.build(self.model.trainable_variables)
        going_on = (optimizer.iterations, optimizer.learning_rate)  # the step count and the schedule's rate
        return [v for v in self.model.weights + optimizer.variables if not any(v is w for w in going_on)]

    def on_epoch_begin(self, epoch, logs=None):
        self.kept = [keras.ops.convert_to_numpy(v.value) for v in self.state()]

    def on_epoch_end(self, epoch, logs=None):
        accuracy = (logs or {}).get("val_accuracy")
        if accuracy is None:  # no validation this epoch: nothing to judge
            return
        if not fell_to_share(accuracy, self.best, self.val_share):
            self.best = max(self.best, accuracy)
            return
        self.collapses += 1
        fell = (f"epoch {epoch + 1}: validation accuracy fell to {accuracy:.3f}, the largest class's share "
                f"({self.val_share:.3f}) after {self.best:.3f}")
        if self.collapses > ROLLBACKS:
            log(f"warning: {fell}, collapse {self.collapses} of this run: training stops here")
            self.model.stop_training = True
            return
        for variable, value in zip(self.state(), self.kept):
            variable.assign(value)
        log(f"warning: {fell}; its weights went back to where the epoch began and training goes on "
            f"(rollback {self.collapses} of at most {ROLLBACKS})")


class Schedule(keras.callbacks.Callback):
    """Sets the optimizer's rate before each batch (batch b of epoch e: e + (b+1)/steps; cnn.training.schedule),
    epochs counted from `first_epoch` (where a fine-tuning phase began)."""

    def __init__(self, options, steps_per_epoch, first_epoch=0):
        super().__init__()
        self.options, self.steps, self.first_epoch = options, steps_per_epoch, first_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch - self.first_epoch

    def on_train_batch_begin(self, batch, logs=None):
        # min(): Keras calls once more at the end of a dataset of unknown length, with no data left
        self.model.optimizer.learning_rate = rate_at(self.options, self.epoch + min(batch + 1, self.steps) / self.steps)


class StopOnCtrlC(keras.callbacks.Callback):
    """Raises KeyboardInterrupt before the next batch when Ctrl-C was pressed but its exception was swallowed on
    the way (common.interrupts): one press always stops training. Begin hooks: a finished epoch is saved first,
    the TensorFlow multiworker loop calls them every step, and Keras keeps its asynchronous batch ends on JAX."""

    def _check(self, *args, **kwargs):
        if pressed():
            raise KeyboardInterrupt

    on_train_batch_begin = on_test_batch_begin = on_epoch_begin = _check


def restores(run_dir):
    """Whether a fit in `run_dir` starts from the backup (what Keras's BackupAndRestore will load)."""
    return backup_epoch(Path(run_dir) / BACKUP) is not None


def training_callbacks(run_dir, patience, *, restored, done=None, phase=None, saved=None, first=(), image_size=None,
                       val_share=None):
    """The Ctrl-C guard, `first` (the tricks' callbacks whose work the run folder must hold: --ema's swap), the
    collapse rollback, history, best model, then the backup, then early stopping (so a stopped epoch is still saved).

    `restored` (restores(run_dir), computed once by the caller: it may repair the backup) says the fit starts from
    the backup. History is written before the backup: a kill between the two leaves an extra history row, which a
    resumed run drops, rather than a missing one. `done` is the number of epochs an interrupted attempt
    (or a finished first phase) completed (None for a fresh run). With `phase` (1 or 2, fine-tuning runs)
    history.csv gets a phase column and early stopping looks at this phase's epochs only, while model.keras
    stays the best of all. `saved` is the model to checkpoint when it is not the one being fit (the feature
    cache fits the head alone). `image_size` (--progressive) is the size this fit trains at, recorded in
    history.csv. `val_share` (the val split's largest class share) turns on
    cnn.training.collapse's rollback (never with --ema: cnn.training.collapse.rolls_back), which runs before the
    history and the backup so that they hold the weights it restores.
    """
    run_dir = Path(run_dir)
    history = resumed_history(run_dir, done)
    this_phase = history[history["phase"] == phase] if phase and "phase" in history else history
    resumed = stopping_state(this_phase, done) if done is not None else None
    best = float(history["val_loss"].min()) if "val_loss" in history and history["val_loss"].notna().any() else math.inf
    rollback = [Rollback(val_share, history)] if val_share is not None else []
    return [StopOnCtrlC(), *first] + rollback + [
        HistoryFile(run_dir / HISTORY, history, {k: v for k, v in (("phase", phase), ("image_size", image_size))
                                                 if v is not None}),
        BestModel(run_dir / MODEL, best, saved),
        # Kept when a phase ends (the trainer removes it once every phase is fitted): backup/ means "not over".
        keras.callbacks.BackupAndRestore(str(run_dir / BACKUP), double_checkpoint=True, delete_checkpoint=False),
        # A resumed first phase's dropout masks come back to the restored step (a second phase's optimizer counts
        # its own steps).
        *([ResumedSeeds()] if restored and not phase else []),
        ResumableEarlyStopping(patience, resumed),
    ]

