"""report.html: every section present, every picture embedded, nothing fetched from the network; and a real
headless Chromium renders it (not blank, no console errors)."""
import json
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from cnn.evaluation.html_report import write_html_report
from cnn.evaluation.metrics import classification_metrics
from cnn.evaluation.reports import write_reports
from cnn.runfolder import REPORT_HTML

CLASSES = ["Dress", "Tee", "Jeans"]
SECTIONS = ("Test metrics", "Per class", "Learning curves", "Confusion matrix", "Calibration",
            "The most confident mistakes", "Configuration")


class Page(HTMLParser):
    """What the page refers to: every src/href, the images, the text."""

    def __init__(self):
        super().__init__()
        self.refs, self.images, self.text = [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.images += tag == "img"
        self.refs += [attrs[k] for k in ("src", "href") if k in attrs]

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def run_folder(tmp_path):
    """A run folder's report files from known predictions, with two image files among the mistakes."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 60)
    probs = rng.dirichlet([1, 1, 1], 60)
    paths = []
    for i in range(60):
        path = tmp_path / "images" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (40, 30), (i * 4, 100, 50)).save(path)
        paths.append(str(path))
    from cnn.evaluation.scoring import worst_errors
    import pandas as pd

    metrics = {**classification_metrics(truth, probs, CLASSES), "split": "test", "labels": "labels.csv",
               "temperature": 1.3, "worst_errors": worst_errors(pd.DataFrame({"path": paths}), truth, probs, CLASSES,
                                                                [])}
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.csv").write_text("epoch,loss,accuracy,val_loss,val_accuracy\n0,1.2,0.4,1.1,0.45\n"
                                     "1,0.9,0.6,1.0,0.5\n")
    write_reports(run, metrics, CLASSES, run / "history.csv")
    (run / "config.json").write_text(json.dumps({"options": {"epochs": 2, "arch": "cnn"}, "labels": {"path": "l.csv"},
                                                 "precision": "float32"}))
    (run / "calibration.json").write_text(json.dumps({"split": "val", "images": 20, "temperature": 1.3,
                                                      "nll_before": 1.1, "nll_after": 1.0, "ece_before": 0.2,
                                                      "ece_after": 0.1}))
    return run, metrics


def test_the_page_holds_every_section_and_refers_to_nothing_outside(run_folder):
    run, metrics = run_folder
    page = Page()
    page.feed(write_html_report(run).read_text())
    text = " ".join(page.text)
    assert all(section in text for section in SECTIONS)
    assert f"{metrics['top1']:.4f}" in text and f"{metrics['ece']:.4f}" in text
    # curves, confusion, reliability, and one thumbnail per listed mistake
    assert page.images == 3 + len(metrics["worst_errors"]) and len(metrics["worst_errors"]) > 0
    assert all(ref.startswith("data:image/") for ref in page.refs if not ref.endswith(REPORT_HTML))
    assert not [ref for ref in page.refs if "://" in ref]
    assert not list(run.glob(".report.html*"))  # written atomically: no temporary left


def test_a_flat_runs_mistakes_come_with_their_heatmaps(run_folder):
    from cnn.evaluation.error_maps import SHOWN, write_error_maps
    from cnn.evaluation.gradcam import DPI, PANEL_INCHES
    from cnn.models.architectures import build_cnn
    from cnn.runfolder import Run

    run, metrics = run_folder
    model = Run(run, {"options": {"image_size": 32}}, CLASSES, build_cnn(len(CLASSES), (32, 32, 3)))
    picture = write_error_maps(run, model, metrics["worst_errors"])
    shown = min(SHOWN, len(metrics["worst_errors"]))
    with Image.open(picture) as image:  # one panel per mistake drawn, side by side
        assert image.width == round(PANEL_INCHES * shown * DPI)
    page = Page()
    page.feed(write_html_report(run).read_text())
    assert page.images == 4 + len(metrics["worst_errors"])
    assert "evidence for its wrong answer" in " ".join(page.text)
    assert write_error_maps(run, model, []) is None and not picture.exists()  # no mistakes: no stale picture


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_a_real_browser_renders_the_page(run_folder, tmp_path):
    run, _ = run_folder
    page = write_html_report(run)
    shot = tmp_path / "shot.png"
    done = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                           "--no-first-run", "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,2400",
                           "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.is_file(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.01  # text, tables and plots: not a blank page
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    assert console == []
