"""report.html: a run folder on one self-contained page (every picture embedded, nothing loaded from the network).

It is built from the run folder's own files (config.json, metrics.json, calibration.json, the PNGs, a repeats
parent's summary.json), so it can be regenerated at any time (evaluate-cnn does), and it is written atomically.
"""
import base64
import html
import io
from pathlib import Path

from cnn.evaluation.audits import KINDS, SHOWN, recorded_audits
from cnn.evaluation.shifts import FOLDER as SHIFTS_FOLDER
from cnn.runfolder import (CALIBRATION, CONFIG, CONFUSION_PNG, CURVES, ERROR_MAPS, FINISHED, METRICS,
                           RELIABILITY, REPORT_HTML, read_json)
from common.atomic import write_text
from common.hashing import sha256_file

THUMB = 112  # pixels: the worst errors' thumbnails
MEANINGS = {
    "top1": "share of images whose most probable class is the true one",
    "top3": "share whose true class is among the 3 most probable",
    "top5": "share whose true class is among the 5 most probable",
    "balanced_accuracy": "mean of the per-class recalls: a model that favours the big classes cannot inflate it",
    "macro_f1": "unweighted mean of the per-class F1 scores",
    "ece": "expected calibration error (15 bins): how far the confidence is from the accuracy, 0 = calibrated",
    "temperature": "the temperature the probabilities are taken at (calibration.json; 1 = raw softmax)",
    "hard_top1": "a hierarchical run's hard cascade: the parent's arg-max, then its child's",
    "coarse_top1": "a hierarchical run's parent-level accuracy",
}
STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f0f0f0}img{max-width:100%}.thumbs{display:flex;flex-wrap:wrap;gap:10px}
.thumbs figure{margin:0;width:130px;font-size:11px}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}
.warn{background:#fff3cd;border:1px solid #e0b000;padding:.5em}"""


def embedded_png(path):
    """An <img> holding the PNG file inline (data: URI), or '' when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def thumbnail(path):
    """A small inline JPEG of an image file (Pillow), or a note when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMB, THUMB))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=80)
    except OSError:
        return "<em>(image not readable)</em>"
    return f'<img alt="" src="data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode("ascii")}">'


def table(headers, rows):
    """An HTML table with escaped cells (floats to 4 digits, None as '-')."""
    def cell(value):
        return f"<td>{html.escape(_text(value))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def metrics_section(metrics):
    """The headline figures with what each means, the per-class table and the confusion matrix."""
    headline = [(key, metrics[key], meaning) for key, meaning in MEANINGS.items() if metrics.get(key) is not None]
    per_class = [(c["class"], c["precision"], c["recall"], c["f1"], c.get("roc_auc"), c["support"])
                 for c in metrics.get("per_class", [])]
    return (f"<h2>Test metrics</h2><p>split <b>{html.escape(str(metrics.get('split')))}</b> of "
            f"{html.escape(str(metrics.get('labels')))}, {metrics.get('images')} images</p>"
            + table(["metric", "value", "what it means"], headline)
            + "<h2>Per class</h2>" + table(["class", "precision", "recall", "F1", "ROC AUC", "support"], per_class))


def calibration_section(run_dir, metrics):
    """The reliability diagram and calibration.json's before/after figures."""
    record = read_json(Path(run_dir) / CALIBRATION) if (Path(run_dir) / CALIBRATION).is_file() else None
    fitted = "" if record is None else table(
        ["fitted on", "temperature", "NLL before", "NLL after", "ECE before", "ECE after"],
        [(f"{record['split']} ({record['images']} images)", record["temperature"], record["nll_before"],
          record["nll_after"], record["ece_before"], record["ece_after"])])
    return ("<h2>Calibration</h2><p>Does a predicted 0.9 come true nine times in ten? Each bar is the accuracy "
            "of the images whose top-1 confidence falls in its bin; the dashed diagonal is perfect calibration.</p>"
            + fitted + embedded_png(Path(run_dir) / RELIABILITY))


def errors_section(run_dir, metrics):
    """The most confident mistakes, as thumbnails with their true and predicted class, then (a flat run) with the
    heatmaps of the class it predicted."""
    errors = metrics.get("worst_errors") or []
    if not errors:
        return ""
    figures = "".join(
        f"<figure>{thumbnail(e['path'])}<figcaption>true <b>{html.escape(e['label'])}</b>, predicted "
        f"<b>{html.escape(e['predicted'])}</b> at {e['confidence']:.2f} (p(true) {e['p_true']:.2f})<br>"
        f"{html.escape(Path(e['path']).name)}</figcaption></figure>" for e in errors)
    maps = embedded_png(Path(run_dir) / ERROR_MAPS)
    if maps:
        maps = ("<p>Where the model found the evidence for its wrong answer: HiResCAM heatmaps of the predicted "
                "class (red: most evidence), as <code>show-batch --errors RUN --cam</code> draws them.</p>" + maps)
    return f'<h2>The most confident mistakes</h2><div class="thumbs">{figures}</div>' + maps


def shifts_section(run_dir, metrics):
    """evaluate-cnn --shifts' table and picture, when the report holds them."""
    shifts = metrics.get("shifts")
    if not shifts:
        return ""
    rows = [(r["shift"], r["top1"], r["top1"] - shifts["reference_top1"], r["balanced_accuracy"], r["change"])
            for r in shifts["table"]]
    return (f"<h2>Under shifts of look</h2><p>The split scored again under changes of look a photo from elsewhere "
            f"brings (<code>evaluate-cnn --shifts</code>): top-1 {shifts['mean_shifted_top1']:.3f} on average over "
            f"the shifts against {shifts['reference_top1']:.3f} as it is; the worst is "
            f"<b>{html.escape(shifts['worst'])}</b>.</p>"
            + table(["shift", "top-1", "vs none", "balanced accuracy", "change"], rows)
            + embedded_png(Path(run_dir) / SHIFTS_FOLDER / "shifts.png"))


def collapse_note(metrics):
    """A warning paragraph for a run whose training collapsed, or a note of the collapses it rolled back
    (cnn.training.collapse), else nothing."""
    epoch, rolled = metrics.get("collapsed_at_epoch"), metrics.get("rolled_back_epochs")
    if epoch:
        return (f'<p class="warn">Training collapsed at epoch {epoch}: from there on every image was predicted as '
                f"one class. The figures are the best epoch's ({metrics.get('best_epoch')}), from before it; train "
                f"again (with mixed bfloat16: in float32).</p>")
    return "" if not rolled else (
        f'<p class="warn">Validation accuracy fell to the largest class\'s share at epoch '
        f"{', '.join(map(str, rolled))}; each time the weights went back to where that epoch began and training "
        f"went on (the epoch's row stays in the learning curves).</p>")


def config_section(config):
    """Every resolved option, the labels CSV and its hash, versions."""
    options = sorted((config.get("options") or {}).items())
    labels = config.get("labels") or {}
    return ("<h2>Configuration</h2>" + table(["option", "value"], options)
            + table(["labels CSV", "sha256", "rows"], [(labels.get("path"), labels.get("sha256"), labels.get("rows"))])
            + table(["precision", "code", "versions"], [(config.get("precision"), config.get("code"),
                                                         config.get("versions"))]))


def summary_section(run_dir):
    """A repeats parent's or a sweep's table over seeds, with each run's own page linked."""
    summary = read_json(Path(run_dir) / "summary.json")
    rows = [(key, d["mean"], d["sd"], d["min"], d["max"], d["n"]) for key, d in summary["metrics"].items()]
    runs = "".join(f'<li><a href="seed-{r["seed"]}/{REPORT_HTML}">seed {r["seed"]}</a>: top-1 {r["top1"]:.4f}</li>'
                   for r in summary["runs"])
    return ("<h2>Over seeds</h2>" + table(["test metric", "mean", "sd", "min", "max", "n"], rows)
            + f"<ul>{runs}</ul>")


def sweep_section(run_dir):
    """A sweep's comparison table, its plot, and each configuration's own page linked."""
    sweep = read_json(Path(run_dir) / "sweep.json")
    rows = [(f'<a href="{html.escape(r["configuration"])}/{REPORT_HTML}">{html.escape(r["configuration"])}</a>',
             r["top1_mean"], r["top1_sd"], r["balanced_accuracy_mean"], r["macro_f1_mean"], r["n"],
             r.get("top1_diff"), r.get("verdict")) for r in sweep["configurations"]]
    head = "".join(f"<th>{h}</th>" for h in ["configuration", "top-1 mean", "sd", "balanced acc.", "macro F1", "n",
                                             "top-1 vs baseline", "verdict"])
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" if i == 0 else f"<td>{html.escape(_text(c))}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return (f"<h2>Sweep (baseline: {html.escape(str(sweep.get('baseline')))})</h2><table><tr>{head}</tr>{body}</table>"
            + embedded_png(Path(run_dir) / "sweep.png"))


def audits_section(run_dir):
    """report.html's "Audits of the data" section, or '' when none is attached: the figures and picture recorded
    when each audit was attached (a picture changed since is not shown)."""
    records = recorded_audits(run_dir)
    if not records:
        return "" if records == [] else ("<h2>Audits of the data</h2><p>audits.json is damaged; attach the audits "
                                         "again (evaluate-cnn RUN --audit DIR)</p>")
    trained_on = (read_json(Path(run_dir) / CONFIG).get("labels") or {}).get("sha256") \
        if (Path(run_dir) / CONFIG).is_file() else None
    parts = ["<h2>Audits of the data</h2>"]
    for audit in records:
        figures = audit["figures"]
        same = figures.get("labels_sha256") == trained_on
        parts.append(f"<h3>{html.escape(audit['kind'])}: {html.escape(str(audit['folder']))}</h3><p>audited "
                     f"{html.escape(str(figures.get('labels')))}: "
                     f"<b>{'the labels CSV this run trained on' if same else 'another labels CSV than this run'}"
                     f"</b></p>" + table(["figure", "value"], [(k, figures.get(k)) for k in SHOWN[audit["kind"]]])
                     + recorded_picture(audit))
    return "".join(parts)


def recorded_picture(audit):
    """The audit's picture when it is the one recorded at attach time; else a line saying why there is none."""
    picture = Path(audit["folder"]) / dict(KINDS.values())[audit["kind"]]
    if audit.get("picture_sha256") is None:
        return "<p>(no picture: the audit drew none)</p>"
    if not picture.is_file() or sha256_file(picture) != audit["picture_sha256"]:
        return "<p>(the picture changed or went since this audit was attached; attach it again)</p>"
    return embedded_png(picture)


def _text(value):
    """A table cell's text: floats to 4 digits, None as '-'."""
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def write_html_report(run_dir):
    """Write RUN/report.html from the folder's files; returns its path."""
    run_dir = Path(run_dir)
    title = f"Run {run_dir.name}"
    parts = [f"<h1>{html.escape(title)}</h1><p>{html.escape(str(run_dir.resolve()))}</p>"]
    if (run_dir / "sweep.json").is_file():
        parts.append(sweep_section(run_dir))
    if (run_dir / "summary.json").is_file():
        parts.append(summary_section(run_dir))
    if (run_dir / METRICS).is_file():
        metrics = read_json(run_dir / METRICS)
        state = "finished" if (run_dir / FINISHED).is_file() else "not finished"
        parts += [f"<p>state: <b>{state}</b>; trained {metrics.get('epochs_run', '-')} epochs (best "
                  f"{metrics.get('best_epoch', '-')}) in {metrics.get('train_seconds') or '-'} s</p>",
                  collapse_note(metrics), metrics_section(metrics),
                  "<h2>Learning curves</h2>" + embedded_png(run_dir / CURVES),
                  "<h2>Confusion matrix</h2><p>rows: true class; columns: predicted; each row sums to 1.</p>"
                  + embedded_png(run_dir / CONFUSION_PNG), calibration_section(run_dir, metrics),
                  shifts_section(run_dir, metrics), errors_section(run_dir, metrics)]
    parts.append(audits_section(run_dir))
    if (run_dir / CONFIG).is_file():
        parts.append(config_section(read_json(run_dir / CONFIG)))
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
    write_text(run_dir / REPORT_HTML, page)
    return run_dir / REPORT_HTML
