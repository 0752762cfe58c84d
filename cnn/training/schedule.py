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


def schedule_callback(options, steps_per_epoch, first_epoch=0):
    """A Keras callback that sets the optimizer's rate before each batch (batch b of epoch e: e + (b+1)/steps),
    epochs counted from `first_epoch` (where a fine-tuning phase began)."""
    import keras

    class Schedule(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch - first_epoch

        def on_train_batch_begin(self, batch, logs=None):
            # min(): Keras calls once more at the end of a dataset of unknown length, with no data left
            self.model.optimizer.learning_rate = rate_at(options, self.epoch + min(batch + 1, steps_per_epoch)
                                                         / steps_per_epoch)

    return Schedule()
