"""Human-readable reports from metrics: the per-class table, report.txt, confusion and curve plots."""
from pathlib import Path

from cnn.evaluation.cascade import cascade_lines
from cnn.evaluation.metrics import normalize_rows
from cnn.runfolder import CONFUSION_CSV, CONFUSION_PNG, CURVES, METRICS, RELIABILITY, REPORT
from common.atomic import atomic_path, write_csv, write_json, write_text

ANNOTATE_UP_TO = 15  # write each cell's value in confusion.png when there are at most this many classes


def per_class_table(metrics):
    """The precision/recall/F1/support table, one row per class plus the macro average."""
    from tabulate import tabulate

    rows = [[c["class"], c["precision"], c["recall"], c["f1"], c.get("roc_auc"), c["support"]]
            for c in metrics["per_class"]]
    return tabulate(rows, headers=["class", "precision", "recall", "f1", "ROC AUC", "support"], floatfmt=".3f",
                    missingval="-")


def summary_lines(metrics):
    """The headline figures, one per line."""
    return [
        f"split: {metrics['split']}   images: {metrics['images']}   labels: {metrics['labels']}",
        f"top-1 accuracy:    {metrics['top1']:.4f}",
        f"top-3 accuracy:    {metrics['top3']:.4f}",
        f"top-5 accuracy:    {metrics['top5']:.4f}",
        f"balanced accuracy: {metrics['balanced_accuracy']:.4f}",
        f"macro F1:          {metrics['macro_f1']:.4f}",
    ] + calibration_lines(metrics) + cascade_lines(metrics) + (
        ["test-time augmentation: flip (each image's probabilities averaged with its mirror's)"]
        if metrics.get("tta") == "flip" else []) + (
        [f"ensemble of {metrics['ensemble']['n']} runs (their calibrated probabilities averaged)"]
        if metrics.get("ensemble") else []) + also_scored_lines(metrics)


def also_scored_lines(metrics):
    """One line per --also-score CSV: its top-1, balanced accuracy and macro F1 beside the split's."""
    return [f"also scored {name}: top-1 {m['top1']:.4f}, balanced accuracy {m['balanced_accuracy']:.4f}, macro F1 "
            f"{m['macro_f1']:.4f} ({m['images']} images, every row of {m['labels']})"
            for name, m in metrics.get("also_scored", {}).items()]


def calibration_lines(metrics):
    """The calibration figure (ECE) and the temperature the probabilities were taken at, when known."""
    if "ece" not in metrics:
        return []
    at = metrics.get("temperature", 1.0)
    how = f"temperature {at:.3f} from calibration.json" if at != 1.0 else "raw softmax"
    return [f"calibration (ECE): {metrics['ece']:.4f}   ({how}; 0 = a predicted p is right p of the time)"]


def format_report(metrics):
    """report.txt's content: the summary then the per-class table."""
    return "\n".join(summary_lines(metrics)) + "\n\n" + per_class_table(metrics) + "\n"


def save_figure(fig, path):
    """Save a matplotlib figure atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def new_figure(figsize):
    """A bare matplotlib Figure: renders to files without pyplot, so the caller's backend is untouched."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def plot_reliability(metrics, path):
    """reliability.png: accuracy against confidence per bin (the diagonal is perfect calibration), with counts."""
    rows = [row for row in metrics["reliability"] if row["count"]]
    fig = new_figure((5.5, 4.5))
    ax = fig.subplots()
    width = rows[0]["high"] - rows[0]["low"] if rows else 1 / 15
    ax.bar([row["low"] for row in rows], [row["accuracy"] for row in rows], width=width, align="edge",
           edgecolor="black", color="#6a9fd4", label="accuracy in the bin")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    for row in rows:
        ax.annotate(str(row["count"]), (row["low"] + width / 2, row["accuracy"]), ha="center", va="bottom", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("confidence (top-1 probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability: ECE {metrics['ece']:.3f} over {metrics['images']} images")
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, path)


def plot_confusion(normalized, class_names, path):
    """confusion.png: rows = true class, columns = predicted class, each row sums to 1."""
    n = len(class_names)
    side = max(5.0, 0.32 * n + 2)
    fig = new_figure((side + 1, side))
    ax = fig.subplots()
    image = ax.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=8, parse_math=False)  # a '$' in a name is text
    ax.set_yticks(range(n), class_names, fontsize=8, parse_math=False)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix (row-normalised)")
    if n <= ANNOTATE_UP_TO:
        for i in range(n):
            for j in range(n):
                value = normalized[i][j]
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if value > 0.5 else "black")
    save_figure(fig, path)


def plot_curves(history_csv, path):
    """curves.png: training and validation loss and accuracy per epoch, from history.csv."""
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    history = pd.read_csv(history_csv)
    epochs = history["epoch"] + 1
    panels = ("loss", "accuracy") + (("learning_rate",) if "learning_rate" in history else ())
    fig = new_figure((5.5 * len(panels), 4))
    axes = fig.subplots(1, len(panels))
    for ax, name in zip(axes, panels):
        for column, label in ((name, "train" if name != "learning_rate" else "at epoch end"), (f"val_{name}", "val")):
            if column in history:
                ax.plot(epochs, history[column], marker="o", label=label)
        if "val_loss" in history:
            ax.axvline(epochs[history["val_loss"].idxmin()], color="grey", linestyle="--", label="best (val loss)")
        if "phase" in history and (history["phase"] == 2).any():
            ax.axvline(epochs[history["phase"].eq(2).idxmax()] - 0.5, color="tab:red", linestyle=":",
                       label="fine-tuning begins")
        mark_sizes(ax, history, epochs)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if name == "learning_rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Learning curves")
    save_figure(fig, path)


def mark_sizes(ax, history, epochs):
    """--progressive runs: a line where each training image size begins, labelled with the size."""
    if "image_size" not in history:
        return
    sizes = history["image_size"]
    for i in sizes.index[sizes.ne(sizes.shift())]:
        ax.axvline(epochs[i] - 0.5, color="tab:green", linestyle=":", alpha=0.7)
        ax.annotate(f"{int(sizes[i])} px", (epochs[i] - 0.5, 1), xycoords=("data", "axes fraction"),
                    textcoords="offset points", xytext=(2, -10), fontsize=7, color="tab:green")


def write_reports(out_dir, metrics, class_names, history_csv=None):
    """Write metrics.json, report.txt, confusion.csv/.png (and curves.png when a history is given)."""
    import pandas as pd

    out_dir = Path(out_dir)
    normalized = normalize_rows(pd.DataFrame(metrics["confusion"]).to_numpy())
    write_json(out_dir / METRICS, metrics)
    write_text(out_dir / REPORT, format_report(metrics))
    table = pd.DataFrame(normalized, index=pd.Index(class_names, name="true\\predicted"), columns=class_names)
    write_csv(out_dir / CONFUSION_CSV, table, float_format="%.4f")
    plot_confusion(normalized, class_names, out_dir / CONFUSION_PNG)
    if "reliability" in metrics:
        plot_reliability(metrics, out_dir / RELIABILITY)
    if history_csv is not None and Path(history_csv).is_file():
        plot_curves(history_csv, out_dir / CURVES)
