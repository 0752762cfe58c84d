"""Collapse: every image predicted as one class after the network had learned (seen with mixed bfloat16 on AMX CPUs,
docs/results/amx-bf16.md). An epoch whose validation accuracy falls to the largest class's share is undone during
training (its weights go back to where the epoch began, as large-model training restarts before a loss spike:
Chowdhery et al. 2022); a run whose training accuracy stayed there to the end is reported as collapsed rather than
passed off as an ordinary finished run."""
import math

MARGIN = 0.02  # accuracy within this of the largest class's share counts as "one class for everything"
LEARNED = 0.1  # ... after some epoch had beaten that share by at least this much (0.2 missed a real collapse
# whose best epoch had beaten it by 0.199: docs/results/amx-bf16.md)
ROLLBACKS = 3  # collapses undone in one run; at the next one the run stops


def collapsed_at(history, largest_share):
    """The first epoch (1-based) of a collapse that lasted to the end of `history` (history.csv's rows), or None."""
    if "accuracy" not in history:
        return None
    accuracy = history["accuracy"].to_numpy()
    low = accuracy <= largest_share + MARGIN
    if not len(accuracy) or not low[-1] or accuracy.max() < largest_share + LEARNED:
        return None
    start = len(low) - 1
    while start > 0 and low[start - 1]:
        start -= 1
    return int(history["epoch"].iloc[start]) + 1


def collapse_warning(epoch, share, best_epoch, precision):
    """The report's line for a run that collapsed at `epoch`, naming the way out."""
    fix = ("train again with --precision float32" if precision == "mixed_bfloat16"
           else "train again with a lower --lr")
    return (f"warning: training collapsed at epoch {epoch}: from there on every training image was predicted as "
            f"one class (training accuracy at the largest class's share, {share:.3f}); model.keras is epoch "
            f"{best_epoch}, from before it; {fix}")


def rolls_back(options):
    """Whether a run with these TrainOptions rolls collapses back: not with --ema (its swapped weights would be mixed
    up) nor in TensorFlow's own multiworker loop (which has no per-epoch weight edits)."""
    return not options.ema and not options.tensorflow_loop


def fell_to_share(val_accuracy, best_before, val_share):
    """Whether an epoch's validation accuracy fell to the val split's largest class share after an earlier epoch's
    (best_before) had beaten it by LEARNED: the weights stopped telling the classes apart."""
    return val_accuracy <= val_share + MARGIN and best_before >= val_share + LEARNED


def collapse_epochs(history, val_share):
    """The epochs (1-based) of history.csv's rows whose validation accuracy fell to the share (fell_to_share)."""
    best, epochs = -math.inf, []
    for epoch, accuracy in zip(history.get("epoch", ()), history.get("val_accuracy", ())):
        if fell_to_share(accuracy, best, val_share):
            epochs.append(int(epoch) + 1)
        best = max(best, accuracy)
    return epochs


def rollback_callback(val_share, history):
    """A Keras callback that keeps the weights and optimizer state each epoch starts from and, when the epoch's
    validation accuracy fell to `val_share`, puts them back (the step count, and with it the schedule's rate and the
    data, go on) and logs it; at the (ROLLBACKS + 1)-th collapse of the run (`history`: its earlier epochs) it
    stops training."""
    import keras

    from cnn.training import log

    class Rollback(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
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
            if not fell_to_share(accuracy, self.best, val_share):
                self.best = max(self.best, accuracy)
                return
            self.collapses += 1
            fell = (f"epoch {epoch + 1}: validation accuracy fell to {accuracy:.3f}, the largest class's share "
                    f"({val_share:.3f}) after {self.best:.3f}")
            if self.collapses > ROLLBACKS:
                log(f"warning: {fell}, collapse {self.collapses} of this run: training stops here")
                self.model.stop_training = True
                return
            for variable, value in zip(self.state(), self.kept):
                variable.assign(value)
            log(f"warning: {fell}; its weights went back to where the epoch began and training goes on "
                f"(rollback {self.collapses} of at most {ROLLBACKS})")

    return Rollback()
