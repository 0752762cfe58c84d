"""Scoring primitives: a model's probabilities on labelled rows (from image files or shards) and their metrics."""
from cnn.evaluation.metrics import classification_metrics
from common.errors import UsageError


def predict_dataset(model, dataset):
    """Softmax outputs and true class indices for every image the dataset yields (skipped files excluded)."""
    import numpy as np

    probs, truth = [], []
    for images, onehot in dataset:
        probs.append(np.asarray(model.predict_on_batch(images), dtype=np.float64))
        truth.append(np.argmax(onehot.numpy(), axis=1))
    if not probs:
        raise UsageError("no image could be read, so there is nothing to score")
    return np.concatenate(truth), np.concatenate(probs)


def predict_rows(model, rows, classes, image_size, batch_size=32, skip_missing=False, data="none"):
    """(true class indices, `model`'s outputs, images skipped) on the labelled `rows`, read by the loader from the
    image files, or from the shards of those rows' splits in the `data` folder."""
    from cnn.data.loader import flow_from_dataframe
    from cnn.data.shards import flow_from_shards

    loaded = (flow_from_shards(data, sorted(set(rows["split"])), classes, batch_size) if data != "none" else
              flow_from_dataframe(rows, classes=classes, target_size=(image_size, image_size),
                                  batch_size=batch_size, shuffle=False, skip_missing=skip_missing))
    truth, probs = predict_dataset(model, loaded.dataset)
    return truth, probs, loaded.skipped.count


def score_model(run, rows, batch_size=32, skip_missing=False, data="none"):
    """(true class indices, probabilities, metrics) of a flat run (a loaded Run) on labelled rows."""
    truth, probs, skipped = predict_rows(run.model, rows, run.classes, run.image_size, batch_size, skip_missing,
                                         data)
    return truth, probs, {**classification_metrics(truth, probs, run.classes), "skipped_images": skipped}
