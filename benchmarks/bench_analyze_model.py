"""Time analyze-model's analysis itself (TensorFlow import and model building aside) on the card's model
and standard keras.applications models at their usual input sizes; prints the figures and writes JSON.

Run from the repo root: flock /tmp/cpu-heavy.lock python benchmarks/bench_analyze_model.py
"""
import json
import platform
import statistics
import time
from pathlib import Path

from common.tfenv import quiet_tensorflow

REPEATS = 5
MODELS = [  # (name, builder name, input size)
    ("card cnn, 46 classes", "cnn", 256),
    ("MobileNetV2", "MobileNetV2", 224),
    ("ResNet50", "ResNet50", 224),
    ("Xception", "Xception", 299),
]


def build(kind, size):
    """The card's model or a keras.applications model (weights=None) at size x size."""
    import keras

    from cnn.models.architectures import build_cnn

    if kind == "cnn":
        return build_cnn(46, input_shape=(size, size, 3))
    return getattr(keras.applications, kind)(weights=None, input_shape=(size, size, 3))


def median_seconds(action):
    """Median wall seconds of `action()` over the repeats."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    """Time the analysis of each model; print the figures and write them beside this script as JSON."""
    tf = quiet_tensorflow()
    from analysis.analyze import analyze
    from analysis.report import render

    results = []
    for name, kind, size in MODELS:
        model = build(kind, size)
        def analysis():  # walk, both analyses, and the printed text
            tables, meta = analyze(model)
            return render(tables, "table", meta)

        analysis()  # warm-up: first use imports the layer classes
        seconds = median_seconds(analysis)
        tables, meta = analyze(model)
        results.append({"model": name, "input": size, "layer_calls": meta["layers"], "analysis_seconds": seconds,
                        "macs": tables[0].totals["macs"]})
        print(f"{name:22s} {size:4d}px {meta['layers']:4d} layers  analysis {seconds * 1000:7.1f} ms (median of "
              f"{REPEATS})  MACs {tables[0].totals['macs']:,}")
    card = build("cnn", 256)
    start = time.perf_counter()
    analyze(card, flops=False, empirical=True)
    empirical = time.perf_counter() - start
    print(f"card cnn --empirical (gradient measurement, 256px): {empirical:.2f} s")
    doc = {"results": results, "card_empirical_seconds": empirical, "repeats": REPEATS,
           "tensorflow": tf.__version__, "machine": platform.machine(), "python": platform.python_version()}
    out = Path(__file__).with_suffix(".json")
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
