"""Training callbacks that survive a kill: history and best model written atomically, backup, resumable stopping."""
import math
from pathlib import Path

from cnn.runfolder import BACKUP, HISTORY, MODEL, backup_epoch
from common.atomic import atomic_path, write_csv


def resumed_history(run_dir, done):
    """The first `done` rows of history.csv (a kill may land after the history write, before the backup's)."""
    import pandas as pd

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


def make_callbacks_classes():
    """The callback classes (defined on first use, so importing this module does not import Keras)."""
    import keras

    class HistoryFile(keras.callbacks.Callback):
        """history.csv rewritten whole, atomically, after every epoch: never a half-written row."""

        def __init__(self, path, previous, columns):
            super().__init__()
            self.path, self.rows = Path(path), previous.to_dict("records")
            self.extra = columns  # e.g. fine-tuning's phase, --progressive's image size

        def on_epoch_end(self, epoch, logs=None):
            import pandas as pd

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

    class AveragedWeights(keras.callbacks.SwapEMAWeights):
        """--ema: the optimizer's moving average is in the model for validation and from each epoch's end to the
        next epoch's start, so the best model, the early-stopping snapshot and the backup all hold the average.

        A backup therefore holds the average in the model and the raw weights in the optimizer's slots; a run
        resumed from one (`resumed`) starts in that swapped state, and the next epoch's start swaps them back.
        """

        def __init__(self, resumed):
            super().__init__(swap_on_epoch=True)
            self.resumed = resumed

        def on_train_begin(self, logs=None):
            self._ema_weights_in_model = self.resumed

        def on_epoch_end(self, epoch, logs=None):
            # Keras's own also copies the average over the raw weights at the fit's last epoch; that would lose
            # the raw weights a later fit of the same run (a --progressive stage, --resume) continues from.
            if not self._ema_weights_in_model:
                self._swap_variables()
                self._ema_weights_in_model = True

    return HistoryFile, BestModel, ResumableEarlyStopping, AveragedWeights


def training_callbacks(run_dir, patience, done=None, phase=None, saved=None, ema=False, image_size=None,
                       val_share=None):
    """The moving average's swap (--ema) or the collapse rollback, history, best model, then the backup, then early
    stopping (so a stopped epoch is still saved).

    History is written before the backup: a kill between the two leaves an extra history row, which a
    resumed run drops, rather than a missing one. `done` is the number of epochs an interrupted attempt
    (or a finished first phase) completed (None for a fresh run). With `phase` (1 or 2, fine-tuning runs)
    history.csv gets a phase column and early stopping looks at this phase's epochs only, while model.keras
    stays the best of all. `saved` is the model to checkpoint when it is not the one being fit (the feature
    cache fits the head alone). `ema`: the optimizer keeps a moving average of the weights (Keras's use_ema), and
    it, not the raw weights, is validated, checkpointed and backed up. `image_size` (--progressive) is the size this
    fit trains at, recorded in history.csv. `val_share` (the val split's largest class share) turns on
    cnn.training.collapse's rollback (never with `ema`: cnn.training.collapse.rolls_back), which runs before the
    history and the backup so that they hold the weights it restores.
    """
    import keras

    HistoryFile, BestModel, ResumableEarlyStopping, AveragedWeights = make_callbacks_classes()
    run_dir = Path(run_dir)
    history = resumed_history(run_dir, done)
    this_phase = history[history["phase"] == phase] if phase and "phase" in history else history
    resumed = stopping_state(this_phase, done) if done is not None else None
    best = float(history["val_loss"].min()) if "val_loss" in history and history["val_loss"].notna().any() else math.inf
    restored = backup_epoch(run_dir / BACKUP) is not None  # what Keras's BackupAndRestore will load
    first = [AveragedWeights(resumed=restored)] if ema else []
    if val_share is not None:
        from cnn.training.collapse import rollback_callback

        first.append(rollback_callback(val_share, history))
    return first + [
        HistoryFile(run_dir / HISTORY, history, {k: v for k, v in (("phase", phase), ("image_size", image_size))
                                                 if v is not None}),
        BestModel(run_dir / MODEL, best, saved),
        # Kept when a phase ends (the trainer removes it once every phase is fitted): backup/ means "not over".
        keras.callbacks.BackupAndRestore(str(run_dir / BACKUP), double_checkpoint=True, delete_checkpoint=False),
        *resumed_seeds(restored and not phase),
        ResumableEarlyStopping(patience, resumed),
    ]


def resumed_seeds(restored):
    """[the callback that brings the dropout masks' seeds to the restored step] for a resumed first phase (a second
    phase's optimizer counts its own steps), else []."""
    if not restored:
        return []
    from cnn.training.resumed_seeds import ResumedSeeds

    return [ResumedSeeds()]
