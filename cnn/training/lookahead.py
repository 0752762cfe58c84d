"""--lookahead K:ALPHA (Zhang et al. 2019; one of airbench's steps): slow weights that every K optimizer steps move
ALPHA of the way to the fast weights, which then restart from them. The slow weights are also taken before every
validation, so what is validated, checkpointed and backed up is one set of weights and a resumed run continues
exactly where it stopped."""
import numpy as np

NONE = "none"


def parse_lookahead(spec):
    """(K, ALPHA) from 'K:ALPHA' (K a whole number >= 1, ALPHA in (0, 1]), or None for 'none'; ValueError
    otherwise."""
    if spec == NONE:
        return None
    try:
        k, alpha = spec.split(":")
        k, alpha = int(k), float(alpha)
    except ValueError:
        raise ValueError("must be K:ALPHA, e.g. 5:0.5, or none") from None
    if k < 1 or not 0 < alpha <= 1:
        raise ValueError("needs K >= 1 steps and ALPHA in (0, 1], e.g. 5:0.5")
    return k, alpha


def lookahead_callback(k, alpha):
    """A Keras callback doing Lookahead's slow-weight steps on the fitted model's trainable variables."""
    import keras

    class Lookahead(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.slow = [np.array(v, dtype=np.float64) for v in self.model.trainable_variables]
            self.steps = 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.steps % k == 0:
                self.synchronise()

        def on_test_begin(self, logs=None):  # validation inside fit: the slow weights, the epoch's last step
            if self.steps % k:
                self.synchronise()

        def synchronise(self):
            for slow, variable in zip(self.slow, self.model.trainable_variables):
                slow += alpha * (np.asarray(variable, dtype=np.float64) - slow)
                variable.assign(slow.astype(variable.dtype))

    return Lookahead()
