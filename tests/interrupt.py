"""Callbacks that interrupt or watch a training, for the tests of resuming."""
import keras


class StopAfterEpoch(keras.callbacks.Callback):
    """Interrupt training (like Ctrl-C) at the end of one epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


class EpochRecorder(keras.callbacks.Callback):
    """The epoch indices that training actually ran."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)
