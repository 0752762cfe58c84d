"""Scoring primitives: a model's probabilities on labelled rows (from image files or shards) and their metrics."""
from cnn.evaluation.calibration import expected_calibration_error, fit_temperature, nll, temperature_doubts
from cnn.evaluation.cascade import cascade_metrics
from cnn.evaluation.metrics import classification_metrics
from cnn.runs.temperature import scaled
from cnn.runfolder import CALIBRATION
from common.atomic import write_json
from common.errors import UsageError

WORST = 12  # the most confident mistakes a report lists (and report.html shows)


def predict_dataset(model, dataset):
    """Softmax outputs and true class indices for every image the dataset yields (skipped files excluded)."""
    import numpy as np

    probs, truth = [], []
    for images, onehot in dataset:
        probs.append(np.asarray(model.predict_on_batch(np.asarray(images)), dtype=np.float64))  # any backend
        truth.append(np.argmax(np.asarray(onehot), axis=1))
    if not probs:
        raise UsageError("no image could be read, so there is nothing to score")
    return np.concatenate(truth), np.concatenate(probs)


def predict_rows(model, rows, classes, image_size, batch_size=32, skip_missing=False, data="none"):
    """(true class indices, `model`'s outputs, paths of the images skipped) on the labelled `rows`, read by the
    loader from the image files, or from the shards of those rows' splits in the `data` folder."""
    from cnn.data.batching import Batching
    from cnn.data.loader import flow_from_dataframe
    from cnn.data.shards import flow_from_shards

    batching = Batching(batch_size=batch_size)
    loaded = (flow_from_shards(data, sorted(set(rows["split"])), classes, batching=batching) if data != "none" else
              flow_from_dataframe(rows, classes=classes, target_size=(image_size, image_size), batching=batching,
                                  skip_missing=skip_missing))
    truth, probs = predict_dataset(model, loaded.dataset)
    return truth, probs, list(loaded.skipped.paths)


def score(predictor, rows, batch_size=32, skip_missing=False, data="none", shift=None):
    """(true class indices, calibrated probabilities, metrics) of an open run (cnn.runs.Predictor: flat,
    hierarchical, ensemble or export, with its TTA) on labelled rows; `shift` changes each image first."""
    truth, outputs, skipped = predict_rows(predictor.viewed(shift), rows, predictor.classes, predictor.image_size,
                                           batch_size, skip_missing, data)
    probs = predictor.probabilities(outputs)
    return truth, probs, {**kind_metrics(predictor, truth, outputs, probs),
                          **scoring_record(rows, truth, probs, predictor.classes, skipped, data, predictor.tta)}


def kind_metrics(predictor, truth, outputs, probs):
    """The classification metrics, with what each kind adds: a cascade's hard and coarse figures, an ensemble's
    members, a run's temperature."""
    if predictor.kind == "hierarchical":
        return cascade_metrics(predictor.loaded.tree, truth, *predictor.loaded.split(outputs))
    metrics = classification_metrics(truth, probs, predictor.classes)
    if predictor.kind == "ensemble":
        members = [str(r.path) for r in predictor.loaded.runs]
        return {**metrics, "ensemble": {"members": members, "n": len(members)}}
    return {**metrics, "temperature": predictor.temperature}


def scoring_record(rows, truth, probs, classes, skipped, data, tta):
    """What every scorer (flat, cascade, ensemble) adds to its metrics: the images skipped, the test-time
    augmentation, the most confident mistakes."""
    return {"skipped_images": len(skipped), "tta": tta,
            "worst_errors": worst_errors(rows, truth, probs, classes, skipped, data)}


def worst_errors(rows, truth, probs, classes, skipped, data="none", count=WORST):
    """The `count` most confident mistakes: [{path, label, predicted, confidence, p_true}], worst first (none
    when the images came from shards, whose order is not the rows')."""
    import numpy as np

    if data != "none":
        return []
    dropped = set(skipped)
    paths = [p for p in rows["path"] if p not in dropped]
    predicted, confidence = probs.argmax(axis=1), probs.max(axis=1)
    wrong = np.flatnonzero(predicted != truth)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:count]
    return [{"path": str(paths[i]), "label": classes[truth[i]], "predicted": classes[predicted[i]],
             "confidence": float(confidence[i]), "p_true": float(probs[i, truth[i]])} for i in order]


def fit_run_temperature(run, rows, batch_size=32, skip_missing=False, data="none"):
    """Fit the run's temperature on labelled `rows` (the val split) and write calibration.json: the temperature,
    the NLL and ECE it changed, before and after, and its doubts (cnn.evaluation.calibration.temperature_doubts)."""
    truth, probs, _ = predict_rows(run.model, rows, run.classes, run.image_size, batch_size, skip_missing, data)
    temperature = fit_temperature(truth, probs)
    calibrated = scaled(probs, temperature)
    write_json(run.path / CALIBRATION, {
        "method": "temperature scaling (softmax(log p / T)), fitted by NLL on the val split",
        "temperature": temperature, "split": "val", "images": int(len(truth)),
        "doubts": temperature_doubts(temperature, len(truth)),
        "nll_before": nll(truth, probs), "nll_after": nll(truth, calibrated),
        "ece_before": expected_calibration_error(truth, probs),
        "ece_after": expected_calibration_error(truth, calibrated)})
    return temperature, temperature_doubts(temperature, len(truth))
