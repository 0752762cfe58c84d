"""A resumed run draws the dropout masks the uninterrupted run would have drawn.

Keras's layers draw their random numbers (dropout masks) from SeedGenerators whose state, [seed, counter], moves
one step per training step; BackupAndRestore saves the weights and the optimizer but not those states (they are in
`model.variables`, not `model.weights`), so a resumed process replayed the first epoch's masks. The counter of a
generator drawn once per step equals the optimizer's step count, which the backup does restore. Checked against
Keras 3.15.1 (keras/src/random/seed_generator.py: state [seed, counter], `next()` adds [0, 1]);
tests/test_run_states.py fails if that changes.
"""
import keras

STATE = "seed_generator_state"  # the variable name of a SeedGenerator's state in Keras 3


class ResumedSeeds(keras.callbacks.Callback):
    """After BackupAndRestore has restored a run (put it after that callback): every seed generator's counter is set
    to the restored optimizer step count, as the uninterrupted run's would be."""

    def on_train_begin(self, logs=None):
        steps = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        for variable in self.model.variables:
            if variable.name == STATE:
                seed = keras.ops.convert_to_numpy(variable.value)[0]
                variable.assign(keras.ops.convert_to_tensor([seed, steps], dtype=variable.dtype))
