"""Calibration: ECE and the reliability table by hand, ROC AUC against a pairwise count, temperature scaling
that softens an over-confident model without moving top-1, and a run that reports and serves calibrated
probabilities."""
import json

import numpy as np
import pytest

from cnn.evaluation.calibration import (expected_calibration_error, fit_temperature, per_class_auc, reliability,
                                        roc_auc, scaled)


def test_ece_is_the_weighted_gap_between_accuracy_and_confidence():
    probs = np.array([[0.8, 0.2]] * 10)  # every image at confidence 0.8, in one bin
    assert expected_calibration_error(np.array([0] * 8 + [1] * 2), probs) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([0] * 5 + [1] * 5), probs) == pytest.approx(0.3)
    # two bins: 4 images at 0.95 all right (gap 0.05), 6 at 0.6 half right... 3 of 6 right (gap 0.1)
    probs = np.array([[0.95, 0.05]] * 4 + [[0.6, 0.4]] * 6)
    truth = np.array([0] * 4 + [0, 0, 0, 1, 1, 1])
    assert expected_calibration_error(truth, probs) == pytest.approx((4 * 0.05 + 6 * 0.1) / 10)
    rows = reliability(truth, probs)
    assert len(rows) == 15 and sum(r["count"] for r in rows) == 10


def test_roc_auc_counts_the_pairs_ranked_right():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    positive = rng.random(60) < 0.4
    pairs = [(p, n) for p in scores[positive] for n in scores[~positive]]
    expected = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert roc_auc(scores, positive) == pytest.approx(expected)
    assert roc_auc(scores, np.zeros(60, bool)) is None
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert per_class_auc(np.array([0, 1, 0]), probs) == [1.0, 1.0]


def test_temperature_softens_an_over_confident_model_and_keeps_top1():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 1.5, (4000, 5))
    true_p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    truth = np.array([rng.choice(5, p=p) for p in true_p])
    over = scaled(true_p, 1 / 3)  # the same logits times 3: over-confident
    temperature = fit_temperature(truth, over)
    assert temperature == pytest.approx(3.0, rel=0.1)
    calibrated = scaled(over, temperature)
    assert expected_calibration_error(truth, calibrated) < expected_calibration_error(truth, over) / 2
    assert (calibrated.argmax(1) == over.argmax(1)).all()  # top-1 unchanged by construction
    assert np.allclose(calibrated.sum(1), 1)


@pytest.mark.train
def test_a_run_fits_its_temperature_on_val_and_serves_calibrated_probabilities(small_run):
    from cnn.runs.predictor import open_run
    from cnn.runfolder import load_run

    run, table = small_run
    record = json.loads((run / "calibration.json").read_text())
    assert record["split"] == "val" and record["nll_after"] <= record["nll_before"] + 1e-9
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["temperature"] == pytest.approx(record["temperature"]) and 0 <= metrics["ece"] <= 1
    assert all("roc_auc" in c for c in metrics["per_class"]) and (run / "reliability.png").stat().st_size > 0
    loaded = load_run(run)
    images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    raw = np.asarray(loaded.model.predict_on_batch(images), np.float64)
    served = open_run(run).predict_on_batch(images)
    assert np.allclose(served, scaled(raw, record["temperature"]), atol=1e-6)


@pytest.mark.train
@pytest.mark.parametrize("temperature", [-1, 0, "NaN", "abc", None, 0.5])
def test_a_damaged_temperature_is_refused_before_scoring(small_run, tmp_path, temperature, capsys):
    """calibration.json's temperature must be a finite number > 0 and the one the run finished with: -1 would reverse
    the ranking, 0 or NaN give NaN probabilities, "abc" a traceback; a plausible 0.5 is a changed file."""
    import shutil

    from cnn.cli import evaluate_main

    run = shutil.copytree(small_run[0], tmp_path / "run")
    record = json.loads((run / "calibration.json").read_text())
    before = (run / "metrics.json").read_text()
    text = json.dumps({**record, "temperature": temperature}).replace('"NaN"', "NaN")
    (run / "calibration.json").write_text(text)
    capsys.readouterr()
    assert evaluate_main([str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "calibration.json" in err[0] and "temperature" in err[0], err
    assert (run / "metrics.json").read_text() == before  # nothing rewritten


def test_a_temperature_at_the_search_bound_or_from_few_images_is_doubted():
    from cnn.evaluation.calibration import TEMPERATURE_BOUNDS, temperature_doubts

    truth = np.array([0, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])  # every image right: the NLL falls as T -> 0
    temperature = fit_temperature(truth, probs)
    assert temperature == pytest.approx(TEMPERATURE_BOUNDS[0], rel=1e-2)
    doubts = temperature_doubts(temperature, len(truth))
    assert len(doubts) == 2 and "search bound" in doubts[0] and "3 val images" in doubts[1]
    assert temperature_doubts(1.3, 400) == []
