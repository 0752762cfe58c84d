"""The fit engine every trainer shares: compile a model with the recipe, and fit it with the run folder's callbacks.

A trainer describes its run once (RunContext: folder, options, class weights, extra callbacks, strategy, train
rows) and each phase it fits (FitPlan: model, datasets, where it starts); `fit(context, plan)` does the rest.
Variants (flat, fine-tuning, feature cache, hierarchical) import this module, never the front door.
"""
import contextlib
import dataclasses
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from cnn.training.distribute.multiworker import fit_multiworker
from cnn.training.tricks import trick_callbacks
from cnn.training.tricks.progressive import NONE as PROGRESSIVE_OFF, stages


@dataclass(frozen=True)
class RunContext:
    """What stays the same across a run's phases."""

    run_dir: Path
    options: object  # the run's TrainOptions
    class_weight: dict = None  # class index -> weight (--class-weight balanced), or None
    callbacks: tuple = ()  # extra Keras callbacks, run last
    dist: object = None  # cnn.training.distribute.strategy's Distribution
    rows: int = 0  # the train split's size: an epoch is ceil(rows / --batch-size) steps on every worker
    val_share: float = None  # the val split's largest class share: a collapse to it is rolled back (None: never)


@dataclass(frozen=True)
class FitPlan:
    """One phase to fit: the model, its data, and where it starts."""

    model: object  # the Keras model to fit
    train_data: object  # cnn.data.loader.Loaded
    val_data: object
    options: object  # the phase's TrainOptions (fine-tuning lowers the learning rate)
    done: int = None  # epochs already finished (the backup's), None for a fresh phase
    saved: object = None  # the model model.keras holds when it is not `model` (the feature cache fits the head)
    phase: int = None  # history.csv's phase column (--fine-tune), or None
    first_epoch: int = 0  # the phase's first epoch in history.csv
    start: int = None  # this fit's epochs, start (inclusive) to stop: the phase's, unless --progressive splits it
    stop: int = None
    image_size: int = None  # --progressive: the stage's training image size (history.csv's image_size column)

    @property
    def epoch_range(self):
        """(initial_epoch, epochs) for Keras's fit: this fit's epochs, by default the whole phase."""
        start = self.first_epoch if self.start is None else self.start
        return start, self.first_epoch + self.options.epochs if self.stop is None else self.stop


def compile_model(model, options):
    """Compile with the recipe's optimizer, schedule and (smoothed) cross-entropy; returns the model."""
    import keras

    from cnn.training.schedule import make_optimizer

    model.compile(optimizer=make_optimizer(options),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=options.label_smoothing),
                  metrics=["accuracy"])
    return model


def train_rows(df):
    """The number of training rows: an epoch is ceil(rows / --batch-size) steps on every worker."""
    return int((df.split == "train").sum())


def largest_share(df, split):
    """The share of `split`'s rows that its most common label has: the accuracy of "one class for everything"."""
    return float(df[df.split == split]["label"].value_counts(normalize=True).max())


def plan_callbacks(context, plan, steps):
    """NaN stop, the schedule, the run folder's callbacks (after the tricks' that they must see: --ema's swap;
    collapse rollback, history, best model, backup, early stop), the tricks' step edits, TensorBoard on request,
    then the caller's."""
    import keras

    from cnn.training.callbacks import Schedule, restores, training_callbacks
    from cnn.training.collapse import rolls_back

    options, restored = plan.options, restores(context.run_dir)
    extra = trick_callbacks(options, restored, first=False) + list(context.callbacks)
    if options.tensorboard:
        from cnn.training.tensorboard import tensorboard_callbacks

        extra += tensorboard_callbacks(context.run_dir, plan.val_data, plan.train_data.class_names)
    return ([keras.callbacks.TerminateOnNaN(), Schedule(options, steps, plan.first_epoch)]
            + training_callbacks(context.run_dir, options.patience, restored=restored, done=plan.done,
                                 phase=plan.phase, saved=plan.saved,
                                 first=trick_callbacks(options, restored, first=True), image_size=plan.image_size,
                                 val_share=context.val_share if rolls_back(options) else None) + extra)


def fit(context, plan):
    """model.fit (or cnn.training.distribute.multiworker's loop) with the run folder's callbacks and progress on stderr;
    returns the seconds it took. A split none of whose images decodes is a user error (Keras would fail on the
    empty dataset)."""
    # An epoch is ceil(rows / --batch-size) steps. Multiworker: every worker runs that many (the collectives must
    # match), each from its own share of the rows, repeated, so a worker's pass may end inside an epoch.
    steps = math.ceil(context.rows / plan.options.batch_size)
    callbacks = plan_callbacks(context, plan, steps)
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        # The loader's length is unknown until its first pass (undecodable images are skipped), which
        # Keras reports as running out of data at the end of epoch 1: expected, not a problem.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        try:
            if context.dist.name == "multiworker" and context.dist.backend == "tensorflow":
                fit_multiworker(context, plan, callbacks, steps)
            elif context.dist.name == "multiworker":
                from cnn.training.distribute.keras_distribution import stop_when_a_process_fails

                with stop_when_a_process_fails():
                    keras_fit(context, plan, callbacks, steps)
            else:
                keras_fit(context, plan, callbacks)
        finally:
            plan.train_data.check_decodable("of the 'train' split")
            plan.val_data.check_decodable("of the 'val' split")
    return time.perf_counter() - started


def fit_stages(context, plan, df, classes):
    """Fit the first phase stage by stage (or in one fit without --progressive); returns the seconds it took.
    A stage a resumed run already finished is skipped, and early stopping in one stage ends the run."""
    from cnn.data.datasets import make_datasets

    options = context.options
    if options.progressive == PROGRESSIVE_OFF:
        return fit(context, plan)
    seconds = 0.0
    for start, stop, size in stages(options):
        if plan.done is not None and plan.done >= stop:
            continue
        train_data = plan.train_data if size == options.image_size else make_datasets(
            df, classes, dataclasses.replace(options, image_size=size, progressive=PROGRESSIVE_OFF), context.dist)[0]
        done = None if plan.done is None and start == 0 else max(plan.done or 0, start)
        seconds += fit(context, dataclasses.replace(plan, train_data=train_data, done=done, start=start, stop=stop,
                                                    image_size=size))
        if plan.model.stop_training:
            break
    return seconds


def keras_fit(context, plan, callbacks, steps=None):
    """model.fit over the plan's epochs; with `steps` (JAX's processes, each feeding its own share of the rows),
    the training data repeated and every epoch that many steps, so that all processes take the same steps."""
    start, stop = plan.epoch_range
    data = plan.train_data.dataset
    if steps is None:
        replay_epochs(data, (plan.done or start) - start)
    plan.model.fit(data if steps is None else data.repeat(), steps_per_epoch=steps,
                   validation_data=plan.val_data.dataset, initial_epoch=start, epochs=stop,
                   class_weight=context.class_weight, shuffle=False, verbose=1 if sys.stderr.isatty() else 2,
                   callbacks=callbacks)


def replay_epochs(dataset, epochs):
    """Advance the training data's random streams past the `epochs` epochs a resumed fit skips. Keras makes one
    iterator per epoch, and making one draws that epoch's seeds (the shuffle order, the augmentation's and the
    mix's seed pairs: tf.data's reshuffle/rerandomize_each_iteration), so dropping as many iterators as epochs
    were done brings a resumed process to the batches the uninterrupted run would have drawn next."""
    for _ in range(max(0, epochs)):
        iter(dataset)  # made and dropped at once: only its seeds are drawn (a few batches may be prefetched)


