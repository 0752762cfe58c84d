"""Are the probabilities honest? Expected calibration error and the reliability table (numpy), one-vs-rest ROC AUC
(scikit-learn's), and temperature scaling (Guo et al. 2017) fitted on the validation split (scipy's minimiser).

Temperature scaling divides the logits by one number T before the softmax. A model's outputs here are
softmax probabilities, whose logarithms are the logits up to a per-image constant that the softmax cancels,
so p_T = softmax(log p / T). T > 1 softens an over-confident model; the arg-max, so top-1, never changes.
"""
import numpy as np

from cnn.runs.temperature import EPS, scaled

BINS = 15  # the usual ECE binning: 15 equal-width confidence bins


def reliability(truth, probs, bins=BINS):
    """Per equal-width bin of top-1 confidence: [{low, high, count, confidence, accuracy}] (empty bins kept)."""
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == np.asarray(truth)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": int(inside.sum()),
                     "confidence": float(confidence[inside].mean()) if inside.any() else None,
                     "accuracy": float(correct[inside].mean()) if inside.any() else None})
    return rows


def expected_calibration_error(truth, probs, bins=BINS):
    """ECE: the count-weighted mean gap |accuracy - confidence| over the confidence bins (0 = calibrated)."""
    rows = reliability(truth, probs, bins)
    n = sum(row["count"] for row in rows)
    return float(sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in rows if row["count"]) / n)


def roc_auc(scores, positive):
    """Area under the ROC curve of `scores` for the boolean `positive` (scikit-learn's roc_auc_score); None when one
    of the two groups is empty."""
    from sklearn.metrics import roc_auc_score

    positive = np.asarray(positive, bool)
    if positive.all() or not positive.any():
        return None
    return float(roc_auc_score(positive, scores))


def per_class_auc(truth, probs):
    """One-vs-rest ROC AUC of each class's probability column (None for a class absent from `truth`)."""
    truth = np.asarray(truth)
    return [roc_auc(probs[:, c], truth == c) for c in range(probs.shape[1])]


def nll(truth, probs):
    """Mean negative log-likelihood of the true classes."""
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(truth)), np.asarray(truth)], EPS, 1.0))))


TEMPERATURE_BOUNDS = (0.05, 20.0)  # the search range of T; a fit at either end says the val split cannot place it
FEW_VAL_IMAGES = 50  # below this many val images a fitted temperature is noise more than calibration


def fit_temperature(truth, probs, bounds=TEMPERATURE_BOUNDS):
    """The T minimising the validation NLL of softmax(log p / T), by scipy's bounded scalar minimiser over log T
    (NLL has a single minimum in T)."""
    from scipy.optimize import minimize_scalar

    result = minimize_scalar(lambda log_t: nll(truth, scaled(probs, np.exp(log_t))), bounds=np.log(bounds),
                             method="bounded", options={"xatol": 1e-5})
    return float(np.exp(result.x))


def temperature_doubts(temperature, images, bounds=TEMPERATURE_BOUNDS):
    """Why a fitted temperature should not be trusted (an empty list when none): it hit a bound of the search, or
    the val split was too small to fit it."""
    doubts = []
    if min(abs(np.log(temperature) - np.log(b)) for b in bounds) < 1e-3:
        doubts.append(f"T = {temperature:.3g} is at the search bound ({bounds[0]:g}..{bounds[1]:g}): the val split "
                      f"cannot place it")
    if images < FEW_VAL_IMAGES:
        doubts.append(f"it was fitted on {images} val images (fewer than {FEW_VAL_IMAGES})")
    return doubts


def calibration_metrics(truth, probs):
    """metrics.json's calibration figures: ECE (15 bins), the reliability table, per-class ROC AUC."""
    return {"ece": expected_calibration_error(truth, probs), "reliability": reliability(truth, probs),
            "roc_auc": per_class_auc(truth, probs)}
