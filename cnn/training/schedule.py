"""The recipe's optimizer and learning-rate schedule: a linear warm-up, then cosine decay to 0 over --epochs.

The rate is set before every batch from the epoch and batch indices alone (not the optimizer's step
counter, which Keras advances once more per epoch on datasets of unknown length and which a resumed
run would have to restore), so a resumed run continues on exactly the same curve.
"""
import math


def rate_at(options, progress):
    """The learning rate after `progress` epochs (a float) of a run with these options."""
    if options.schedule == "none":
        return options.lr
    warm = options.warmup_epochs
    if progress < warm:
        return options.lr * progress / warm
    done = (progress - warm) / max(options.epochs - warm, 1)
    return options.lr * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))


def make_optimizer(options):
    """Adam, or AdamW with decoupled weight decay, starting at the schedule's first rate; with --ema, Keras's own
    moving average of the weights (`use_ema`), which BackupAndRestore saves with the optimizer's other state."""
    import keras

    average = dict(use_ema=True, ema_momentum=options.ema) if options.ema else {}
    rate = rate_at(options, 0.0)
    if options.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=options.weight_decay, **average)
    return keras.optimizers.Adam(rate, **average)

