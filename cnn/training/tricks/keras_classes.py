"""The tricks' Keras classes (and the Keras-side helpers they share with their trick), as ordinary classes so they can
be named, subclassed and tested. This module imports Keras at once; the tricks import it only when a run uses them."""
import keras
import numpy as np

from common import keras_private

EPS = 1e-7  # the smallest probability log_soften takes the log of


def bias_variables(model):
    """The model's trainable BatchNormalization biases (Keras names them beta)."""
    return [v for v in model.trainable_variables if v.path.split("/")[-1] == "beta"]


def log_soften(probs, temperature):
    """log softmax(log p / T) as a Keras op: the log-probabilities at temperature T."""
    return keras.ops.log_softmax(keras.ops.log(keras.ops.clip(probs, EPS, 1.0)) / temperature, axis=-1)


class BiasRate(keras.callbacks.Callback):
    """--bias-lr: each optimizer step of the BatchNormalization biases stretched by `factor`."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def on_train_begin(self, logs=None):
        self.biases = bias_variables(self.model)

    def on_train_batch_begin(self, batch, logs=None):
        self.before = [np.asarray(v) for v in self.biases]

    def on_train_batch_end(self, batch, logs=None):
        for variable, before in zip(self.biases, self.before):
            variable.assign(before + self.factor * (np.asarray(variable) - before))


class SlowWeights(keras.callbacks.Callback):
    """--lookahead K:ALPHA: every `k` steps the slow weights move `alpha` of the way to the fitted model's
    trainable variables, which restart from them; also before each validation (the epoch's last step)."""

    def __init__(self, k, alpha):
        super().__init__()
        self.k, self.alpha = k, alpha

    def on_epoch_begin(self, epoch, logs=None):
        self.slow = [np.array(v, dtype=np.float64) for v in self.model.trainable_variables]
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps % self.k == 0:
            self.synchronise()

    def on_test_begin(self, logs=None):  # validation inside fit: the slow weights, the epoch's last step
        if self.steps % self.k:
            self.synchronise()

    def synchronise(self):
        for slow, variable in zip(self.slow, self.model.trainable_variables):
            slow += self.alpha * (np.asarray(variable, dtype=np.float64) - slow)
            variable.assign(slow.astype(variable.dtype))


class AveragedWeights(keras.callbacks.SwapEMAWeights):
    """--ema: the optimizer's moving average is in the model for validation and from each epoch's end to the next
    epoch's start, so the best model, the early-stopping snapshot and the backup all hold the average.

    A backup therefore holds the average in the model and the raw weights in the optimizer's slots; a run resumed
    from one (`resumed`) starts in that swapped state, and the next epoch's start swaps them back. It uses two
    private members of Keras's SwapEMAWeights, named in cnn.training.keras_private.
    """

    def __init__(self, resumed):
        super().__init__(swap_on_epoch=True)
        self.resumed = resumed

    def on_train_begin(self, logs=None):
        setattr(self, keras_private.EMA_IN_MODEL, self.resumed)

    def on_epoch_end(self, epoch, logs=None):
        # Keras's own also copies the average over the raw weights at the fit's last epoch; that would lose the raw
        # weights a later fit of the same run (a --progressive stage, --resume) continues from.
        if not getattr(self, keras_private.EMA_IN_MODEL):
            getattr(self, keras_private.EMA_SWAP)()
            setattr(self, keras_private.EMA_IN_MODEL, True)


class Distiller(keras.Model):
    """--teacher: calls the student; its training loss adds the teacher's term (validation: the labels' loss alone):
    (1 - A) * CE(labels, student) + A * T^2 * KL(teacher_T || student_T)."""

    def __init__(self, student, teacher, weight, temperature):
        super().__init__(name="distiller")
        self.student, self.teacher = student, teacher
        self.weight, self.temperature = weight, temperature

    def call(self, images, training=False):
        return self.student(images, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        hard = super().compute_loss(x, y, y_pred, sample_weight, training)
        if not training:
            return hard
        t = self.temperature
        target, student = log_soften(self.teacher(x, training=False), t), log_soften(y_pred, t)
        kl = keras.ops.mean(keras.ops.sum(keras.ops.exp(target) * (target - student), axis=-1))
        return (1 - self.weight) * hard + self.weight * t * t * kl
