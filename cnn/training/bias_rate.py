"""--bias-lr F: the BatchNormalization biases (beta) learn F times faster than every other weight (airbench's 64x, one
of its steps to fewer epochs). Keras 3's optimizers have one learning rate for all variables; Adam's and AdamW's
step (decay included) is proportional to the rate, so scaling each step of the biases by F after the optimizer
took it is exactly a per-variable rate of F x the schedule's."""
import numpy as np


def bias_variables(model):
    """The model's trainable BatchNormalization biases (Keras names them beta)."""
    return [v for v in model.trainable_variables if v.path.split("/")[-1] == "beta"]


def bias_rate_callback(factor):
    """A Keras callback that stretches each optimizer step of the BatchNormalization biases by `factor`."""
    import keras

    class BiasRate(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.biases = bias_variables(self.model)

        def on_train_batch_begin(self, batch, logs=None):
            self.before = [np.asarray(v) for v in self.biases]

        def on_train_batch_end(self, batch, logs=None):
            for variable, before in zip(self.biases, self.before):
                variable.assign(before + factor * (np.asarray(variable) - before))

    return BiasRate()
