"""Classification metrics: top-k, the confusion matrix and per-class precision/recall/F1 (scikit-learn's), ROC AUC
and calibration (cnn.evaluation.calibration)."""
import numpy as np

from cnn.evaluation.calibration import expected_calibration_error, per_class_auc, reliability


def confusion_matrix(y_true, y_pred, num_classes):
    """Counts[i, j] = how many images of true class i were predicted as class j (every class a row and column)."""
    from sklearn.metrics import confusion_matrix as counted

    return counted(np.asarray(y_true), np.asarray(y_pred), labels=np.arange(num_classes)).astype(np.int64)


def normalize_rows(counts):
    """Each row divided by its total (the class's recall on the diagonal); empty rows stay zero."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)


def top_k_accuracy(y_true, probs, k):
    """Share of images whose true class is among the k highest probabilities (k capped at #classes)."""
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == np.asarray(y_true)[:, None], axis=1)))


def per_class(y_true, y_pred, num_classes):
    """Precision, recall, F1 and support per class (scikit-learn's; an undefined precision or recall counts as 0)."""
    from sklearn.metrics import precision_recall_fscore_support

    return precision_recall_fscore_support(y_true, y_pred, labels=np.arange(num_classes), zero_division=0)


def classification_metrics(y_true, probs, class_names):
    """All the report's figures for integer labels `y_true` and softmax `probs` (n, classes).

    Balanced accuracy averages recall over classes present in y_true; macro F1 averages F1 over
    classes present in y_true or the predictions (both as scikit-learn defines them).
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    y_pred = probs.argmax(axis=1)
    counts = confusion_matrix(y_true, y_pred, len(class_names))
    precision, recall, f1, support = per_class(y_true, y_pred, len(class_names))
    present = support > 0
    seen = present | (counts.sum(axis=0) > 0)
    auc = per_class_auc(y_true, probs)
    return {
        "images": int(len(y_true)),
        "top1": float(np.mean(y_pred == y_true)),
        "top3": top_k_accuracy(y_true, probs, 3),
        "top5": top_k_accuracy(y_true, probs, 5),
        "balanced_accuracy": float(recall[present].mean()),
        "macro_f1": float(f1[seen].mean()),
        "ece": expected_calibration_error(y_true, probs),
        "per_class": [
            {"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s),
             "roc_auc": a} for name, p, r, f, s, a in zip(class_names, precision, recall, f1, support, auc)
        ],
        "confusion": counts.tolist(),
        "reliability": reliability(y_true, probs),
    }
