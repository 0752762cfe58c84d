"""The cascade's bookkeeping on hand-made probabilities: soft and hard cascade, top-k, coarse accuracy, error shares."""
import numpy as np
import pytest

from cnn.evaluation.cascade import cascade_lines, cascade_metrics, hard_predictions
from cnn.runs.tree import Tree, soft_probabilities

# Parents A (labels a1, a2), B (b1 alone: no model), C (c1, c2, c3). Classes in order: a1 a2 b1 c1 c2 c3.
MAPPING = {"c2": "C", "a1": "A", "b1": "B", "a2": "A", "c3": "C", "c1": "C"}
COARSE = np.array([[0.50, 0.28, 0.22],   # p(A), p(B), p(C) per image
                   [0.20, 0.50, 0.30],
                   [0.40, 0.10, 0.50]])
FINE = {"A": np.array([[0.6, 0.4], [0.9, 0.1], [0.7, 0.3]]),  # p(a1 | A), p(a2 | A)
        "C": np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])}  # p(c1 | C), p(c2 | C), p(c3 | C)
TRUTH = np.array([1, 2, 5])  # a2, b1, c3


def test_tree_orders_every_model_as_training_does():
    tree = Tree.from_mapping(MAPPING)
    assert tree.parents == ("A", "B", "C") and tree.classes == ("a1", "a2", "b1", "c1", "c2", "c3")
    assert tree.children == {"A": ("a1", "a2"), "B": ("b1",), "C": ("c1", "c2", "c3")}
    assert tree.modelled == ("A", "C")  # B has one label: no model
    assert tree.parent_of().tolist() == [0, 0, 1, 2, 2, 2]


def test_soft_cascade_by_hand():
    soft = soft_probabilities(Tree.from_mapping(MAPPING), COARSE, FINE)
    expected = [[0.50 * 0.6, 0.50 * 0.4, 0.28, 0.22 * 0.2, 0.22 * 0.3, 0.22 * 0.5],
                [0.20 * 0.9, 0.20 * 0.1, 0.50, 0.30 * 0.1, 0.30 * 0.1, 0.30 * 0.8],
                [0.40 * 0.7, 0.40 * 0.3, 0.10, 0.50 * 0.3, 0.50 * 0.3, 0.50 * 0.4]]
    np.testing.assert_allclose(soft, expected)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0)  # a distribution over the labels


def test_hard_cascade_by_hand():
    # image 0: A (0.50), then a1 (0.6); image 1: B (0.50), its only label b1; image 2: C (0.50), then c3 (0.4).
    assert hard_predictions(Tree.from_mapping(MAPPING), COARSE, FINE).tolist() == [0, 2, 5]


def test_metrics_of_both_cascades_by_hand():
    m = cascade_metrics(Tree.from_mapping(MAPPING), TRUTH, COARSE, FINE)
    # soft argmax: image 0 a1 (0.30 > b1 0.28 > a2 0.20): wrong, right parent; image 1 b1: right;
    # image 2 a1 (0.28 > c3 0.20): wrong, and of the wrong parent, though the coarse model chose C.
    assert m["top1"] == pytest.approx(1 / 3)
    assert m["top3"] == pytest.approx(1.0)  # a2 ranks 3rd on image 0, c3 2nd on image 2
    assert (m["soft_errors"], m["soft_errors_wrong_parent"]) == (2, pytest.approx(1 / 2))
    # hard: a1 (wrong, within A), b1 (right), c3 (right); the coarse model is right on all three.
    assert m["hard_top1"] == pytest.approx(2 / 3) and m["coarse_top1"] == 1.0
    assert (m["hard_errors"], m["hard_errors_wrong_parent"]) == (1, 0.0)
    assert m["hard_balanced_accuracy"] == pytest.approx((0 + 1 + 1) / 3)  # recall of a2, b1, c3
    assert m["top_k"] == "soft cascade" and m["parents"] == 3
    assert [c["class"] for c in m["per_class"]] == list(Tree.from_mapping(MAPPING).classes)


def test_error_shares_when_the_coarse_model_is_wrong():
    coarse = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])  # image 0 (truth a1) sent to C, image 1 (truth b1) to A
    m = cascade_metrics(Tree.from_mapping(MAPPING), np.array([0, 2]), coarse, {p: f[:2] for p, f in FINE.items()})
    assert m["hard_top1"] == 0.0 and m["coarse_top1"] == 0.0
    assert (m["hard_errors"], m["hard_errors_wrong_parent"]) == (2, 1.0)


def test_no_errors_leaves_the_share_undefined_and_the_report_says_so():
    m = cascade_metrics(Tree.from_mapping(MAPPING), np.array([1]), np.array([[0.9, 0.05, 0.05]]),
                        {"A": np.array([[0.1, 0.9]]), "C": FINE["C"][:1]})  # a2: A, then a2
    assert m["hard_top1"] == 1.0 and m["hard_errors_wrong_parent"] is None
    lines = cascade_lines(m)
    assert lines[0].startswith("soft cascade, p(parent) x p(label | parent): the top-1/3/5")
    assert lines[1].startswith("hard top-1:        1.0000  (the coarse model's parent")
    assert lines[-1] == "fine errors already wrong at the coarse level: hard no errors, soft no errors"
    assert cascade_lines({"top1": 0.5}) == []  # a flat run's report has no cascade lines
