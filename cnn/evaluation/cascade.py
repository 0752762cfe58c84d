"""The cascade's arithmetic on probabilities, in plain numpy: hard and soft cascade, and their metrics.

Hard cascade: the coarse model's most likely parent, then that parent's model's most likely label (a parent
with one label maps straight to it). Soft cascade: p(label) = p(parent) x p(label | parent), a distribution
over all labels, so its top-k is well defined. A hierarchical run's top-1/3/5, balanced accuracy, macro F1,
per-class table and confusion matrix are the soft cascade's; the hard cascade's figures stand beside them.
"""
import numpy as np

from cnn.evaluation.metrics import classification_metrics
from cnn.runs.tree import given, soft_probabilities


def hard_predictions(tree, coarse, fine):
    """Class index per image: the coarse model's argmax parent, then that parent's model's argmax label."""
    picked = np.asarray(coarse).argmax(axis=1)
    index = {label: i for i, label in enumerate(tree.classes)}
    predicted = np.empty(len(picked), dtype=int)
    for j, parent in enumerate(tree.parents):
        rows = picked == j
        choice = given(tree, fine, parent, len(picked))[rows].argmax(axis=1)
        predicted[rows] = [index[tree.children[parent][c]] for c in choice]
    return predicted


def wrong_parent_share(errors, wrong_parent):
    """(count, share) of the errors that already had the wrong parent; share None when there is no error."""
    count = int(np.sum(errors))
    return count, (float(np.sum(errors & wrong_parent)) / count if count else None)


def cascade_metrics(tree, truth, coarse, fine):
    """The soft cascade's classification metrics plus the hard cascade's, the coarse model's accuracy, and
    the share of fine errors whose parent was already wrong."""
    truth = np.asarray(truth)
    classes = list(tree.classes)
    soft = soft_probabilities(tree, coarse, fine)
    hard = hard_predictions(tree, coarse, fine)
    metrics = classification_metrics(truth, soft, classes)
    hard_metrics = classification_metrics(truth, np.eye(len(classes))[hard], classes)
    parent_of = tree.parent_of()
    true_parent = parent_of[truth]
    coarse_right = np.asarray(coarse).argmax(axis=1) == true_parent
    hard_errors, hard_share = wrong_parent_share(hard != truth, ~coarse_right)
    soft_pred = soft.argmax(axis=1)
    soft_errors, soft_share = wrong_parent_share(soft_pred != truth, parent_of[soft_pred] != true_parent)
    metrics.update(top_k="soft cascade", parents=len(tree.parents), hard_top1=hard_metrics["top1"],
                   hard_balanced_accuracy=hard_metrics["balanced_accuracy"], hard_macro_f1=hard_metrics["macro_f1"],
                   coarse_top1=float(np.mean(coarse_right)), hard_errors=hard_errors,
                   hard_errors_wrong_parent=hard_share, soft_errors=soft_errors, soft_errors_wrong_parent=soft_share)
    return metrics


def _share(count, share):
    """`k of n (0.xx)` for a share of n errors, or `no errors`."""
    return f"{round(share * count)} of {count} ({share:.2f})" if share is not None else "no errors"


def cascade_lines(metrics):
    """The report's lines about the cascade (none for a flat run's metrics)."""
    if "hard_top1" not in metrics:
        return []
    hard = _share(metrics["hard_errors"], metrics["hard_errors_wrong_parent"])
    soft = _share(metrics["soft_errors"], metrics["soft_errors_wrong_parent"])
    return [
        "soft cascade, p(parent) x p(label | parent): the top-1/3/5, balanced accuracy and macro F1 above",
        f"hard top-1:        {metrics['hard_top1']:.4f}  (the coarse model's parent, then that parent's model's label)",
        f"hard balanced acc: {metrics['hard_balanced_accuracy']:.4f}",
        f"hard macro F1:     {metrics['hard_macro_f1']:.4f}",
        f"coarse accuracy:   {metrics['coarse_top1']:.4f}  ({metrics['parents']} parents)",
        f"fine errors already wrong at the coarse level: hard {hard}, soft {soft}",
    ]
