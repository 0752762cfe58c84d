"""--fine-tune N: the second phase of a run, in the same run folder, after the frozen first phase.

It starts from the first phase's best checkpoint (model.keras), unfreezes the top N backbone layers that
hold weights (BatchNormalization stays frozen, so in inference mode), and trains up to --epochs more epochs at
a tenth of the learning rate, on the full model with the run's augmentation. RUN/phase.json records where it
began; history.csv's `phase` column and curves.png mark it. A kill in either phase resumes where it stopped.
"""
import dataclasses

from cnn import runfolder as rf
from cnn.training import log
from cnn.training.engine import FitPlan, compile_model, fit
from common.atomic import write_json

LR_FACTOR = 0.1  # the second phase's learning rate, relative to --lr


def second_phase(context, done, df, classes):
    """Run (or resume) the fine-tuning phase of the run `context` (cnn.training.engine.RunContext); returns the
    seconds it took."""
    import keras
    import pandas as pd

    from cnn.data.datasets import make_datasets
    from cnn.models.transfer import backbone_layers, unfreeze_top
    from common.keras_model import load_keras_model

    run_dir, options, dist = context.run_dir, context.options, context.dist
    phase_file = run_dir / rf.PHASE
    if phase_file.is_file():  # resuming it: `done` came from its backup (or is where it began)
        start = int(rf.read_json(phase_file)["start_epoch"])
    else:
        start = done = int(pd.read_csv(run_dir / rf.HISTORY)["epoch"].max()) + 1
        write_json(phase_file, {"start_epoch": start, "fine_tune": options.fine_tune, "lr": options.lr * LR_FACTOR})
        rf.clear_backup(run_dir)  # the first phase's backup: the second starts from model.keras, not from it
    keras.utils.set_random_seed(options.seed + 1)  # the same draws whether or not the first phase ran in this process
    tuned = dataclasses.replace(options, lr=options.lr * LR_FACTOR, warmup_epochs=0)
    with dist.strategy.scope():
        model = load_keras_model(run_dir / rf.MODEL)  # the first phase's best checkpoint
        for layer in backbone_layers(model):
            layer.trainable = False
        names = unfreeze_top(model, options.fine_tune)
        compile_model(model, tuned)
    train_data, val_data = make_datasets(df, classes, options, dist)
    log(f"fine-tuning from epoch {start + 1}: {len(names)} backbone layers unfrozen "
        f"({names[0]} to {names[-1]}), learning rate {tuned.lr:g}")
    return fit(context, FitPlan(model, train_data, val_data, tuned, done=done, phase=2, first_epoch=start))
