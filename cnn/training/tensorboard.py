"""train-cnn --tensorboard: Keras's TensorBoard callback (scalars, graph) plus, per epoch, the learning rate and
the validation confusion matrix as an image, written with tf.summary into RUN/tensorboard/."""
from pathlib import Path

LOGS = "tensorboard"  # the folder inside the run folder


def tensorboard_callbacks(run_dir, val_data, classes):
    """[keras.callbacks.TensorBoard, the per-epoch learning-rate and confusion-image writer]."""
    import keras

    log_dir = Path(run_dir) / LOGS
    return [keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=True),
            confusion_writer(log_dir / "validation", val_data, classes)]


def confusion_png(truth, probs, classes):
    """The row-normalised validation confusion matrix drawn as reports.plot_confusion draws it, as PNG bytes."""
    import tempfile

    from cnn.evaluation.metrics import confusion_matrix, normalize_rows
    from cnn.evaluation.reports import plot_confusion

    normalized = normalize_rows(confusion_matrix(truth, probs.argmax(axis=1), len(classes)))
    with tempfile.TemporaryDirectory() as folder:
        plot_confusion(normalized, classes, Path(folder) / "confusion.png")
        return (Path(folder) / "confusion.png").read_bytes()


def confusion_writer(log_dir, val_data, classes):
    """A callback writing `learning_rate` and the `confusion_matrix` image at the end of every epoch."""
    import keras

    from cnn.evaluation.scoring import predict_dataset
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()

    class ConfusionWriter(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.writer = tf.summary.create_file_writer(str(log_dir))

        def on_epoch_end(self, epoch, logs=None):
            truth, probs = predict_dataset(self.model, val_data.dataset)
            image = tf.io.decode_png(confusion_png(truth, probs, classes), channels=4)[None]
            rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            with self.writer.as_default():
                tf.summary.scalar("learning_rate", rate, step=epoch)
                tf.summary.image("confusion_matrix", image, step=epoch)
            self.writer.flush()

    return ConfusionWriter()
