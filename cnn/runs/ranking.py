"""A prediction as users read it: each image's top classes with their probabilities, and the JSON record that
predict-cnn --format json prints and serve-cnn's /predict returns (one shape for both)."""
import numpy as np


def top_classes(probs, classes, top):
    """[[(class, probability), ...top], ...] per row of `probs` [N, C], most likely first (ties: class order)."""
    order = np.argsort(-np.asarray(probs), axis=1, kind="stable")[:, :min(top, len(classes))]
    return [[(classes[j], float(p[j])) for j in best] for p, best in zip(probs, order)]


def prediction_record(path, preds):
    """{"path": ..., "predictions": [{"class": ..., "probability": ...}, ...]} for one image."""
    return {"path": path, "predictions": [{"class": name, "probability": p} for name, p in preds]}
