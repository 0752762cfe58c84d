"""The Keras internals the project relies on, named in one place (checked against Keras 3.15.1):
tests/test_keras_private.py fails when an upgrade moves one, so the code that uses them is found at once."""

# keras.callbacks.SwapEMAWeights (keras/src/callbacks/swap_ema_weights.py): whether the average is in the model, and
# the method that swaps the model's weights with the optimizer's average (cnn.training.tricks.keras_classes).
EMA_IN_MODEL = "_ema_weights_in_model"
EMA_SWAP = "_swap_variables"

# keras.callbacks.BackupAndRestore(double_checkpoint=True) (keras/src/callbacks/backup_and_restore.py): the files of
# its folder, each with a ".bkp" copy of the previous one (cnn.runfolder.backup_epoch repairs a broken pair).
BACKUP_METADATA = "training_metadata.json"  # {"epoch": ..., "batch": ...}
BACKUP_WEIGHTS = "latest.weights.h5"
BACKUP_COPY = ".bkp"

# keras.random.SeedGenerator (keras/src/random/seed_generator.py): its state variable's name; the state is
# [seed, counter] and each draw adds [0, 1] (cnn.training.resumed_seeds).
SEED_STATE = "seed_generator_state"
