"""Training callbacks that survive an interruption: backup, history, checkpoint and early stopping resume together."""
import json
from pathlib import Path

from cnn.runfolder import write_csv

BACKUP = "backup"
HISTORY = "history.csv"
MODEL = "model.keras"


def finished_epochs(run_dir):
    """Epochs completed before an interruption (from the backup), or None when there is nothing to resume."""
    metadata = Path(run_dir) / BACKUP / "training_metadata.json"
    if not metadata.is_file():
        return None
    return int(json.loads(metadata.read_text())["epoch"])


def resumed_history(run_dir, done):
    """Trim history.csv to the `done` backed-up epochs (a kill may land between the two writes).

    Returns the early-stopping state those epochs imply: (best val_loss, its epoch, epochs waited).
    """
    import pandas as pd

    path = Path(run_dir) / HISTORY
    if not path.is_file():
        return None
    history = pd.read_csv(path)
    history = history[history["epoch"] < done]
    write_csv(path, history, index=False)
    if history.empty or "val_loss" not in history:
        return None
    best_row = int(history["val_loss"].to_numpy().argmin())
    best_epoch = int(history["epoch"].iloc[best_row])
    return float(history["val_loss"].iloc[best_row]), best_epoch, done - 1 - best_epoch


def make_early_stopping(patience, resumed=None):
    """EarlyStopping on val_loss (best weights restored) that starts from a resumed run's best and wait."""
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        """EarlyStopping whose best value and wait count carry over an interruption."""

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if resumed is not None:
                self.best, self.best_epoch, self.wait = resumed

    return ResumableEarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)


def training_callbacks(run_dir, patience, done=None):
    """History, best checkpoint, then the backup, then early stopping (so a stopped epoch is still saved).

    History is written before the backup: a kill between the two leaves an extra history row, which
    `resumed_history` trims, rather than a missing one. `done` is the number of epochs a previous,
    interrupted attempt finished (None for a fresh run).
    """
    import keras

    run_dir = Path(run_dir)
    resumed = resumed_history(run_dir, done) if done is not None else None
    return [
        keras.callbacks.CSVLogger(str(run_dir / HISTORY), append=done is not None),
        keras.callbacks.ModelCheckpoint(str(run_dir / MODEL), monitor="val_loss", save_best_only=True,
                                        initial_value_threshold=resumed[0] if resumed else None),
        keras.callbacks.BackupAndRestore(str(run_dir / BACKUP), double_checkpoint=True),
        make_early_stopping(patience, resumed),
    ]
