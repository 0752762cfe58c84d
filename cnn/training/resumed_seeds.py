"""A resumed run draws the dropout masks the uninterrupted run would have drawn.

Keras's layers draw their random numbers (dropout masks) from SeedGenerators whose state, [seed, counter], moves
one step per training step; BackupAndRestore saves the weights and the optimizer but not those states (they are in
`model.variables`, not `model.weights`), so a resumed process replayed the first epoch's masks. The counter of a
generator drawn once per step equals the optimizer's step count, which the backup does restore. The state's name and
layout are Keras internals, named in common.keras_private (tests/test_keras_private.py and tests/test_run_states.py
fail if they change).
"""
import keras

from common.keras_private import SEED_STATE


class ResumedSeeds(keras.callbacks.Callback):
    """After BackupAndRestore has restored a run (put it after that callback): every seed generator's counter is set
    to the restored optimizer step count, as the uninterrupted run's would be."""

    def on_train_begin(self, logs=None):
        steps = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        for variable in self.model.variables:
            if variable.name == SEED_STATE:
                seed = keras.ops.convert_to_numpy(variable.value)[0]
                variable.assign(keras.ops.convert_to_tensor([seed, steps], dtype=variable.dtype))
