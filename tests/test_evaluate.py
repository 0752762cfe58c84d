"""Metrics against hand-computed values, the report files, and evaluate-cnn on a trained sample run."""
import json

import numpy as np
import pandas as pd
import pytest

from cnn.cli import evaluate_main
from cnn.evaluation.evaluate import evaluate_run
from cnn.evaluation.metrics import classification_metrics, confusion_matrix, normalize_rows, top_k_accuracy
from cnn.evaluation.reports import write_reports

# Four classes A-D, six images. True classes and predicted (argmax) classes:
#   img: 0  1  2  3  4  5
#   y:   A  A  A  B  B  C
#   arg: A  B  A  B  D  A
CLASSES = ["A", "B", "C", "D"]
Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
PROBS = np.array([
    [0.60, 0.20, 0.15, 0.05],  # A: rank 1
    [0.30, 0.40, 0.20, 0.10],  # A: rank 2
    [0.50, 0.15, 0.30, 0.05],  # A: rank 1
    [0.10, 0.60, 0.25, 0.05],  # B: rank 1
    [0.05, 0.10, 0.15, 0.70],  # B: rank 3 (D 0.70 > C 0.15 > B 0.10)
    [0.40, 0.30, 0.05, 0.25],  # C: rank 4
])


def test_confusion_matrix_counts_true_rows_predicted_columns():
    counts = confusion_matrix(Y_TRUE, PROBS.argmax(axis=1), 4)
    assert counts.tolist() == [[2, 1, 0, 0],
                               [0, 1, 0, 1],
                               [1, 0, 0, 0],
                               [0, 0, 0, 0]]


def test_normalize_rows_divides_by_row_total_and_keeps_empty_rows_zero():
    normalized = normalize_rows(np.array([[2, 1, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]]))
    np.testing.assert_allclose(normalized, [[2 / 3, 1 / 3, 0, 0], [0, 0.5, 0, 0.5], [1, 0, 0, 0], [0, 0, 0, 0]])


@pytest.mark.parametrize("k, expected", [
    (1, 3 / 6),  # images 0, 2, 3
    (2, 4 / 6),  # + image 1
    (3, 5 / 6),  # + image 4
    (4, 6 / 6),  # + image 5
    (5, 6 / 6),  # k capped at the 4 classes
])
def test_top_k_accuracy(k, expected):
    assert top_k_accuracy(Y_TRUE, PROBS, k) == pytest.approx(expected)


def test_classification_metrics_match_hand_computation():
    m = classification_metrics(Y_TRUE, PROBS, CLASSES)
    # precision = tp / predicted: A 2/3, B 1/2, C 0/0 -> 0, D 0/1; recall = tp / support: A 2/3, B 1/2, C 0/1, D none
    precision = [2 / 3, 1 / 2, 0, 0]
    recall = [2 / 3, 1 / 2, 0, 0]
    f1 = [2 * p * r / (p + r) if p + r else 0 for p, r in zip(precision, recall)]
    assert [c["precision"] for c in m["per_class"]] == pytest.approx(precision)
    assert [c["recall"] for c in m["per_class"]] == pytest.approx(recall)
    assert [c["f1"] for c in m["per_class"]] == pytest.approx(f1)
    assert [c["support"] for c in m["per_class"]] == [3, 2, 1, 0]
    assert m["top1"] == pytest.approx(0.5)
    assert m["top3"] == pytest.approx(5 / 6)
    assert m["top5"] == pytest.approx(1.0)
    # balanced accuracy: mean recall over classes with support (A, B, C) = (2/3 + 1/2 + 0) / 3 = 7/18
    assert m["balanced_accuracy"] == pytest.approx(7 / 18)
    # macro F1: over classes true or predicted (A, B, C, D) = (2/3 + 1/2 + 0 + 0) / 4 = 7/24
    assert m["macro_f1"] == pytest.approx(7 / 24)
    assert m["images"] == 6


def test_perfect_predictions_score_one_everywhere():
    y = np.array([0, 1, 2, 1])
    m = classification_metrics(y, np.eye(3)[y] * 0.9 + 0.1 / 3, ["x", "y", "z"])
    assert (m["top1"], m["balanced_accuracy"], m["macro_f1"]) == (1.0, 1.0, 1.0)


def test_write_reports_files(tmp_path):
    m = classification_metrics(Y_TRUE, PROBS, CLASSES)
    m.update(split="test", labels="labels.csv")
    history = tmp_path / "history.csv"
    pd.DataFrame({"epoch": [0, 1], "accuracy": [0.3, 0.5], "loss": [1.2, 1.0],
                  "val_accuracy": [0.25, 0.4], "val_loss": [1.3, 1.1]}).to_csv(history, index=False)
    write_reports(tmp_path, m, CLASSES, history)
    assert json.loads((tmp_path / "metrics.json").read_text())["macro_f1"] == pytest.approx(7 / 24)
    confusion = pd.read_csv(tmp_path / "confusion.csv", index_col=0)
    assert list(confusion.columns) == CLASSES and list(confusion.index) == CLASSES
    np.testing.assert_allclose(confusion.sum(axis=1), [1, 1, 1, 0], atol=1e-3)
    report = (tmp_path / "report.txt").read_text()
    assert "macro F1:          0.2917" in report
    rows = {line.split()[0]: line.split()[1:] for line in report.splitlines()[-4:]}
    assert rows["B"][:3] + rows["B"][4:] == ["0.500", "0.500", "0.500", "2"]
    assert rows["D"] == ["0.000", "0.000", "0.000", "-", "0"]  # no image of D: no ROC AUC
    assert float(rows["B"][3]) == pytest.approx(m["per_class"][1]["roc_auc"], abs=5e-4)
    for png in ("confusion.png", "curves.png", "reliability.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*")), "no temporary files left behind"


@pytest.mark.train
def test_evaluate_other_split_writes_its_own_folder(small_run, capsys):
    run, table = small_run
    training_report = (run / "metrics.json").read_text()
    assert evaluate_main([str(run), "--split", "val"]) == 0
    assert (run / "metrics.json").read_text() == training_report
    metrics = json.loads((run / "eval-val" / "metrics.json").read_text())
    assert metrics["split"] == "val" and metrics["images"] == (table.split == "val").sum()
    assert sorted(p.name for p in (run / "eval-val").iterdir()) == ["confusion.csv", "confusion.png",
                                                                    "metrics.json", "reliability.png", "report.txt",
                                                                    "worst_errors.png"]
    assert "split: val" in capsys.readouterr().out


@pytest.mark.train
def test_evaluate_another_csv_with_a_subset_of_classes(small_run, tmp_path):
    run, table = small_run
    subset = table[table.label.isin(["Tee", "Dress"])].assign(split="test")
    subset.to_csv(tmp_path / "other.csv", index=False)
    assert evaluate_main([str(run), "--labels", str(tmp_path / "other.csv")]) == 0
    metrics = json.loads((run / "eval-other-test" / "metrics.json").read_text())
    assert metrics["images"] == len(subset)
    supports = {c["class"]: c["support"] for c in metrics["per_class"]}
    assert supports == {c: int((subset.label == c).sum()) for c in supports}


@pytest.mark.train
def test_evaluate_unknown_labels_is_a_user_error(small_run, tmp_path, capsys):
    run, table = small_run
    table.assign(label=table.label.replace({"Tee": "Blouse", "Jeans": "Kimono"})).to_csv(tmp_path / "x.csv")
    assert evaluate_main([str(run), "--labels", str(tmp_path / "x.csv"), "--split", "all"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("has 2 label(s) the run never learned: Blouse, Kimono") and "\n" not in err


@pytest.mark.train
def test_also_score_scores_every_row_of_another_csv_and_refuses_unknown_classes(small_run, tmp_path, capsys):
    run, table = small_run
    outside = table[table.split != "train"].assign(split="")
    outside.to_csv(tmp_path / "outside.csv", index=False)
    metrics, out = evaluate_run(run, split="val", also_score=[str(tmp_path / "outside.csv")])
    alone, _ = evaluate_run(run, labels=str(tmp_path / "outside.csv"), split="all")
    assert metrics["also_scored"]["outside"]["top1"] == pytest.approx(alone["top1"])
    assert metrics["also_scored"]["outside"]["images"] == len(outside)
    outside.assign(label="Unknown").to_csv(tmp_path / "odd.csv", index=False)
    capsys.readouterr()
    assert evaluate_main([str(run), "--also-score", str(tmp_path / "odd.csv")]) == 2
    assert "Unknown" in capsys.readouterr().err
