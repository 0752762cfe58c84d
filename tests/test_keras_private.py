"""The Keras internals named in common.keras_private are still where the project expects them: an upgrade that moves
one fails here, naming it, instead of silently breaking --ema, --resume or a resumed run's dropout masks."""
import inspect

import numpy as np
import pytest

from common import keras_private


def test_swap_ema_weights_keeps_its_state_flag_and_swap_method():
    import keras

    callback = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    assert hasattr(callback, keras_private.EMA_IN_MODEL)
    assert callable(getattr(callback, keras_private.EMA_SWAP))
    assert list(inspect.signature(getattr(callback, keras_private.EMA_SWAP)).parameters) == []


def test_seed_generator_state_has_the_expected_name_and_layout():
    import keras

    generator = keras.random.SeedGenerator(7)
    state = keras.ops.convert_to_numpy(generator.state.value)
    assert generator.state.name == keras_private.SEED_STATE
    generator.next()
    assert keras.ops.convert_to_numpy(generator.state.value)[1] - state[1] == 1  # [seed, counter]: a draw adds 1


@pytest.mark.train
def test_backup_and_restore_writes_the_files_runfolder_reads(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((4, 2), np.float32)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), double_checkpoint=True, delete_checkpoint=False)
    model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[backup])
    names = {p.name for p in tmp_path.iterdir()}
    suffix = keras_private.BACKUP_COPY
    assert {keras_private.BACKUP_METADATA, keras_private.BACKUP_WEIGHTS} <= names
    assert {keras_private.BACKUP_METADATA + suffix, keras_private.BACKUP_WEIGHTS + suffix} <= names
