"""Throughput beside the machine's measured peak, in one process and one run: every figure comparable.

    python benchmarks/bench_limits.py [--photos DIR] [--steps 8] [--json PATH]

1. Peaks, measured here with TensorFlow's default thread settings (what training uses): a 4096x4096 matmul
   in float32 and bfloat16, and each convolution of the network alone at its own shape (forward, and forward
   + backward, with its bias, activation and precision); a share of peak is over the higher of the two.
2. For the card's network (`--arch cnn`) and cnn5 at 256 px, batch 32, in float32 and mixed bfloat16:
   training images/s as `fit` runs it (in-memory batches), forward-only images/s (`predict` on tensors and a
   compiled `model(x, training=False)`), each as achieved GFLOP/s and a share of the measured peaks.
3. For the card's network in float32: predict-cnn's path (files decoded by the loader, then the model) on a
   folder of real photos (clothing-dataset-small's test split by default), each export (SavedModel, TFLite
   float32/float16/int8, ONNX when installed) on the same decoded batches, and the loader alone.
A training step counts 3x the forward FLOPs (forward, gradient w.r.t. activations, w.r.t. weights).
Prints a table; --json writes the figures (ratios as plain numbers) and benchmarks/results/limits/ keeps a copy.
"""
import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from common.atomic import write_json  # noqa: E402
from common.tfenv import quiet_tensorflow  # noqa: E402

PHOTOS = REPO.parent / "shared" / "data" / "clothing-dataset-small" / "test"
ARCHS = ("cnn", "cnn5")
PRECISIONS = ("float32", "mixed_bfloat16")
SIZE, BATCH, CLASSES = 256, 32, 10
EXPORTS = (("savedmodel", "none"), ("tflite", "none"), ("tflite", "float16"), ("tflite", "int8"), ("onnx", "none"))


def median_seconds(call, repeats=5, warmup=2):
    """Median wall seconds of `call()` after `warmup` untimed calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(tf, dtype, n=4096):
    """GFLOP/s of an n x n matmul (2 n^3 FLOPs) in `dtype`."""
    a = tf.cast(tf.random.stateless_uniform((n, n), seed=(0, 1)), dtype)
    b = tf.cast(tf.random.stateless_uniform((n, n), seed=(0, 2)), dtype)
    step = tf.function(lambda: tf.matmul(a, b))
    return 2 * n ** 3 / median_seconds(lambda: step().numpy(), repeats=9, warmup=3) / 1e9


def conv_peaks(tf, model):
    """(forward GFLOP/s, training GFLOP/s, training seconds per batch) of the model's Conv2D layers, each called
    alone on a batch of BATCH at its input shape, as the network runs it (its bias, activation and precision):
    FLOPs over the summed median times, so the layers weigh as they do in the network."""
    import keras

    flops = seconds_fwd = seconds_train = 0.0
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2D):
            continue
        x = tf.random.stateless_uniform((BATCH, *layer.input.shape[1:]), seed=(1, 2))
        out, kernel = layer.output.shape, layer.kernel.shape
        forward = tf.function(lambda x=x, layer=layer: layer(x))

        def train(x=x, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.cast(layer(x), tf.float32)
            return tape.gradient(y, [x, *layer.trainable_weights])

        train = tf.function(train)
        flops += 2 * BATCH * out[1] * out[2] * out[3] * kernel[0] * kernel[1] * kernel[2]
        seconds_fwd += median_seconds(lambda: forward().numpy())
        seconds_train += median_seconds(lambda: [g.numpy() for g in train()])
    return flops / seconds_fwd / 1e9, 3 * flops / seconds_train / 1e9, seconds_train


def build(arch, precision):
    """The network train-cnn builds for --arch (default recipe), compiled as train-cnn compiles it, and its
    forward FLOPs per image (analysis.flops)."""
    from analysis.analyze import analyze
    from cnn.models.transfer import build as build_model
    from cnn.training.engine import compile_model
    from cnn.training.options import TrainOptions
    from cnn.training.precision import precision_policy

    options = TrainOptions(arch=arch, image_size=SIZE, precision=precision)
    with precision_policy(precision):
        model = compile_model(build_model(options, [str(i) for i in range(CLASSES)]), options)
    tables, _ = analyze(model, flops=True, receptive_field=False)
    return model, tables[0].totals["flops"]


def training_rate(tf, model, steps):
    """Images/s of model.fit on in-memory batches: the second of two epochs of `steps` steps."""
    import keras

    images = tf.random.stateless_uniform((BATCH, SIZE, SIZE, 3), (0, 1), 0, 255)
    labels = tf.one_hot(tf.range(BATCH) % CLASSES, CLASSES)
    data = tf.data.Dataset.from_tensors((images, labels)).repeat()
    times = []
    timer = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: times.append(time.perf_counter()),
                                           on_epoch_end=lambda e, logs: times.append(time.perf_counter()))
    model.fit(data, epochs=2, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return steps * BATCH / (times[3] - times[2])


def forward_rates(tf, model, steps):
    """(predict on tensors, compiled call) images/s on `steps` batches."""
    batch = tf.random.stateless_uniform((BATCH, SIZE, SIZE, 3), (0, 2), 0, 255)
    data = tf.concat([batch] * steps, axis=0)
    predict = median_seconds(lambda: model.predict(data, batch_size=BATCH, verbose=0), repeats=3, warmup=1)
    call = tf.function(lambda x: model(x, training=False))
    compiled = median_seconds(lambda: [call(batch).numpy() for _ in range(steps)], repeats=3, warmup=1)
    return steps * BATCH / predict, steps * BATCH / compiled


def photo_rows(folder):
    """path/label rows of the photos under `folder` (<class>/*.jpg)."""
    import pandas as pd

    rows = [(str(p), p.parent.name, "train") for p in sorted(Path(folder).glob("*/*.jpg"))]
    if not rows:
        raise SystemExit(f"bench_limits: error: no JPEG photos under {folder}/<class>/")
    return pd.DataFrame(rows, columns=["path", "label", "split"])


def loader_rate(rows):
    """Images/s of the loader alone (decode + resize, batched), over the photos."""
    from cnn.data.batching import Batching
    from cnn.data.loader import flow_from_dataframe

    def run():
        for _ in flow_from_dataframe(rows, y_col=None, target_size=(SIZE, SIZE),
                                     batching=Batching(batch_size=BATCH)).dataset:
            pass

    return len(rows) / median_seconds(run, repeats=3, warmup=1)


def run_folder(model, rows, work):
    """A minimal finished run folder around `model` (what export-model and predict-cnn open)."""
    import pandas as pd

    from cnn.runfolder import CONFIG, MODEL, save_classes
    from common.atomic import write_csv
    from common.hashing import sha256_file

    run = work / "run"
    run.mkdir()
    write_csv(work / "labels.csv", pd.DataFrame(rows), index=False)
    model.save(run / MODEL)
    classes = [str(i) for i in range(CLASSES)]
    save_classes(run, classes)
    write_json(run / CONFIG, {"options": {"image_size": SIZE, "arch": "cnn"}, "classes": classes,
                              "labels": {"path": str(work / "labels.csv"), "resolved": str(work / "labels.csv"),
                                         "cwd": str(work), "sha256": sha256_file(work / "labels.csv")}})
    return run


def inference_rates(model, rows, flops):
    """predict-cnn's path, every export on the same decoded batches, Keras float32 on them, the loader alone."""
    from cnn.inference.export import export_run
    from cnn.inference.predict import predict_files
    from cnn.runs.predictor import open_run
    from common.errors import UsageError

    work = Path(tempfile.mkdtemp(prefix="bench-limits-"))
    try:
        run = run_folder(model, rows, work)
        keras_predictor = open_run(run)
        seconds = median_seconds(lambda: predict_files(keras_predictor, [str(Path(rows.path[0]).parents[1])]),
                                 repeats=3, warmup=1)
        figures = {"predict_cnn_folder": len(rows) / seconds, "loader_alone": loader_rate(rows)}
        _, _, images = predict_files(keras_predictor, [str(Path(rows.path[0]).parents[1])], keep_images=True)
        batches = [images[i:i + BATCH] for i in range(0, len(images), BATCH)]

        def rate(predictor):
            return len(images) / median_seconds(lambda: [predictor.predict_on_batch(b) for b in batches], repeats=3, warmup=1)

        figures["keras_float32_batches"] = rate(keras_predictor)
        for fmt, quantize in EXPORTS:
            try:
                out = export_run(run, fmt=fmt, quantize=quantize, out=work / f"{fmt}-{quantize}")
            except UsageError as error:  # ONNX without its extra: say so, go on
                print(f"bench_limits: {fmt} {quantize}: skipped ({error})", file=sys.stderr)
                continue
            figures[f"{fmt}_{quantize}"] = rate(open_run(out))
        return {key: {"images_per_s": value, "gflops_per_s": value * flops / 1e9} for key, value in figures.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_network(tf, arch, precision, steps):
    """Peaks, training and forward figures of one network and precision."""
    model, flops = build(arch, precision)
    dtype = tf.bfloat16 if precision == "mixed_bfloat16" else tf.float32
    conv_fwd, conv_train, conv_seconds = conv_peaks(tf, model)
    train = training_rate(tf, model, steps)
    predict, compiled = forward_rates(tf, model, steps)
    matmul = matmul_gflops(tf, dtype)
    # The peak: the best this machine showed on dense compute in this precision, a large matmul or the
    # network's convolutions alone (alone, they lose the fusion the whole graph gets, so either may be higher).
    peak_train, peak_forward = max(matmul, conv_train), max(matmul, conv_fwd)
    return model, flops, {
        "arch": arch, "precision": precision, "forward_gflop_per_image": flops / 1e9,
        "peak_matmul_gflops_per_s": matmul,
        "peak_conv_forward_gflops_per_s": conv_fwd, "peak_conv_training_gflops_per_s": conv_train,
        "training_images_per_s": train, "training_gflops_per_s": 3 * flops * train / 1e9,
        "predict_images_per_s": predict, "compiled_call_images_per_s": compiled,
        "training_share_of_peak": 3 * flops * train / 1e9 / peak_train,
        "forward_share_of_peak": flops * max(predict, compiled) / 1e9 / peak_forward,
        "forward_over_training": max(predict, compiled) / train,
        "conv_share_of_step_time": conv_seconds / (BATCH / train),  # the rest: memory-bound layers, optimizer
    }


def table(results):
    """The printed table: one row per network and precision."""
    from tabulate import tabulate

    rows = [[r["arch"], r["precision"], f"{r['training_images_per_s']:.1f}", f"{r['training_share_of_peak']:.0%}",
             f"{r['predict_images_per_s']:.1f}", f"{r['compiled_call_images_per_s']:.1f}",
             f"{r['forward_over_training']:.2f}x", f"{r['forward_share_of_peak']:.0%}",
             f"{r['peak_conv_training_gflops_per_s']:.0f}", f"{r['peak_matmul_gflops_per_s']:.0f}",
             f"{r.get('predict_over_training', float('nan')):.2f}x"] for r in results]
    return tabulate(rows, headers=["network", "precision", "train img/s", "train/peak", "predict img/s",
                                   "call img/s", "fwd/train", "fwd/peak", "conv peak GF/s", "matmul GF/s",
                                   "predict-cnn/train"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--photos", default=str(PHOTOS), help="a folder of <class>/*.jpg photos for predict-cnn")
    parser.add_argument("--steps", type=int, default=8, help="batches per timed training epoch and forward pass")
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    tf = quiet_tensorflow()
    rows = photo_rows(args.photos)
    results, inference = [], None
    for arch in args.archs:
        for precision in PRECISIONS:
            print(f"bench_limits: {arch} {precision} ...", file=sys.stderr, flush=True)
            model, flops, figures = measure_network(tf, arch, precision, args.steps)
            if arch == "cnn" and precision == "float32":
                inference = inference_rates(model, rows, flops)
            if inference is not None and arch == "cnn":
                figures["predict_over_training"] = (inference["predict_cnn_folder"]["images_per_s"]
                                                    / figures["training_images_per_s"])
            results.append(figures)
    print(table(results))
    if inference:
        keras = inference["keras_float32_batches"]["images_per_s"]
        for key, value in inference.items():
            print(f"{key:28s} {value['images_per_s']:8.1f} img/s  {value['images_per_s'] / keras:5.2f}x Keras float32")
    doc = {"networks": results, "card_inference": inference,
           "tflite_int8_over_keras": (inference["tflite_int8"]["images_per_s"]
                                      / inference["keras_float32_batches"]["images_per_s"]) if inference else None,
           "photos": args.photos, "images": len(rows), "batch": BATCH, "image_size": SIZE,
           "tensorflow": tf.__version__, "processor": cpu_name(), "cores": os.cpu_count(),
           "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
    for path in filter(None, [args.json, REPO / "benchmarks" / "results" / "limits" / "limits.json"]):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_json(path, doc)
        print(f"wrote {path}", file=sys.stderr)


def cpu_name():
    """The processor's model name (Linux), e.g. 'AMD EPYC 9B14'."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
