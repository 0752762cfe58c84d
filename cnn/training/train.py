"""train-cnn's front door: pick the trainer for the run from a table and hand it the typed options.

A new kind of run (distillation, another backend, ...) adds a trainer module beside flat.py and hierarchical.py
and one row to TRAINERS; trainers import the engine, never this module.
"""
from pathlib import Path

from cnn import runfolder as rf
from cnn.data.hierarchy import wants_hierarchy
from cnn.training.flat import train_flat
from cnn.training.hierarchical import train_hierarchy
from common.errors import UsageError

TRAINERS = {"flat": train_flat, "hierarchical": train_hierarchy}


def train(*, out=None, resume=False, callbacks=(), **typed):
    """Train per TrainOptions(**typed) into `out`, write the run folder; return (run folder, metrics).

    Rerunning with the same `out` after an interruption continues from the last finished epoch
    (Keras's BackupAndRestore in out/backup/) with the recorded options; `typed` may change only
    RESUMABLE ones, and a different labels CSV is refused. `resume=True` insists on continuing
    (without `out`: the newest interrupted run under runs/). Extra Keras `callbacks` run last.
    With `hierarchy` (typed or recorded in `out`) it trains the sub-models of a hierarchical run instead.
    Under --strategy multiworker only the chief writes `out` and returns metrics; other workers return None.
    """
    if out is None and typed.get("strategy") == "multiworker":
        raise UsageError("--strategy multiworker needs --out, the same folder on every worker")
    run_dir = Path(out) if out is not None else (rf.latest_interrupted_run() if resume else None)
    kind = "hierarchical" if wants_hierarchy(run_dir, typed) else "flat"
    return TRAINERS[kind](run_dir, resume=resume, callbacks=list(callbacks), typed=typed)
