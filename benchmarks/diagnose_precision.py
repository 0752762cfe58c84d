"""Where does mixed bfloat16 training part from float32 on this machine? Layer by layer, epoch by epoch.

    python benchmarks/diagnose_precision.py --labels labels.csv --out DIR [--epochs 6] [--image-size 256]
                                            [--arch cnn] [--recipe card] [--batch-size 32] [--seed 0]
                                            [--cache memory] [--json DIR/diagnosis.json]

Trains `train-cnn --precision mixed_bfloat16` into DIR (early stopping off) and, after every epoch, sends
one fixed batch of training images through the model twice: as trained (bfloat16 compute) and as a float32
copy with the same weights, both in inference mode. Per layer it records the relative error of the output
(bfloat16 against float32) and, per weight, the cosine between the two gradients of the loss and their
norms; for ReLU outputs, the share of units that are zero for the whole batch. Bfloat16 rounding alone
gives output errors near 1e-2 and gradient cosines near 1. A kernel that computes wrongly (the oneDNN AMX
path is suspected in the collapse `--precision auto` routes around on AMX machines) stands out as the first
layer whose error jumps or whose cosine falls. On an AMX machine, run it once plain and once with
ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 (AMX off) and compare.
"""
import argparse
import sys
from pathlib import Path

from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_training import machine  # noqa: E402
from common.atomic import write_json  # noqa: E402


def float32_twin(model):
    """The same network computing in float32, with the trained model's weights."""
    import keras

    config = model.get_config()
    for layer in config["layers"]:
        layer["config"]["dtype"] = "float32"
    twin = keras.Model.from_config(config)
    twin.set_weights(model.get_weights())
    return twin


def layer_outputs(model):
    """A model returning every layer's output after the input, in order."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    return [layer.name for layer in layers], keras.Model(model.inputs, [layer.output for layer in layers])


def gradients(model, x, y):
    """{weight path: float64 gradient} of the categorical cross-entropy on (x, y), in inference mode."""
    import keras
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = keras.losses.categorical_crossentropy(y, tf.cast(model(x, training=False), tf.float32))
        loss = tf.reduce_mean(loss)
    grads = tape.gradient(loss, model.trainable_weights)
    return {w.path: g.numpy().astype("float64") for w, g in zip(model.trainable_weights, grads)}


def relative_error(a, b):
    """||a - b|| / ||b||, in float64."""
    import numpy as np

    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def dead_share(output):
    """Share of units (channels, for a feature map) that are zero for every image of the batch."""
    import numpy as np

    values = np.asarray(output, "float64").reshape(-1, output.shape[-1])
    return float(np.mean(np.all(values == 0, axis=0)))


def compare(model, x, y):
    """One row per layer: output error, dead share (outputs that are >= 0 everywhere), and per weight of it
    the gradient cosine and norms (bfloat16, float32)."""
    import numpy as np

    twin = float32_twin(model)
    names, mixed_out = layer_outputs(model)
    _, plain_out = layer_outputs(twin)
    ours, theirs = mixed_out(x, training=False), plain_out(x, training=False)
    g_mixed, g_plain = gradients(model, x, y), gradients(twin, x, y)
    rows = []
    for name, a, b in zip(names, ours, theirs):
        row = {"layer": name, "output_error": relative_error(a, b),
               "dead": dead_share(a) if float(np.min(b)) >= 0 else None}
        for path in (p for p in g_plain if p.split("/")[0] == name):
            gm, gp = g_mixed[path], g_plain[path]
            cosine = float(np.dot(gm.ravel(), gp.ravel()) / max(np.linalg.norm(gm) * np.linalg.norm(gp), 1e-30))
            row[path.split("/")[-1]] = {"cosine": cosine, "norm_bf16": float(np.linalg.norm(gm)),
                                        "norm_f32": float(np.linalg.norm(gp))}
        rows.append(row)
    return rows


def probe(batch, records, save):
    """A Keras callback appending {epoch, logs, layers} to `records` and saving them after every epoch."""
    import keras

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            x, y = batch
            records.append({"epoch": epoch + 1, "logs": {k: float(v) for k, v in (logs or {}).items()},
                            "layers": compare(self.model, x, y)})
            print(summary_line(records[-1]), file=sys.stderr, flush=True)
            save()

    return Probe()


def fixed_batch(labels, image_size, batch_size=32):
    """The first `batch_size` training rows of the labels CSV, decoded as train-cnn decodes them."""
    from cnn.data.batching import Batching
    from cnn.data.loader import flow_from_dataframe
    from cnn.data.labels_csv import read_labels

    df = read_labels(labels)
    classes = sorted(df["label"].unique())
    rows = df[df.split == "train"].head(batch_size)
    loaded = flow_from_dataframe(rows, classes=classes, target_size=(image_size, image_size),
                                 batching=Batching(batch_size=batch_size))
    return next(iter(loaded.dataset))


def summary_line(record):
    """Epoch, accuracy, the worst layer output error, the lowest kernel-gradient cosine, the head's dead share."""
    layers = record["layers"]
    worst = max(layers, key=lambda r: r["output_error"])
    kernels = [(r["layer"], r["kernel"]["cosine"]) for r in layers if "kernel" in r]
    low = min(kernels, key=lambda k: k[1])
    dead = [r["dead"] for r in layers if r["dead"] is not None]
    return (f"epoch {record['epoch']}: accuracy {record['logs'].get('accuracy', float('nan')):.3f}, worst output "
            f"error {worst['output_error']:.2e} ({worst['layer']}), lowest kernel-gradient cosine {low[1]:.4f} "
            f"({low[0]}), largest dead share {max(dead):.2f}")


def table(records):
    """Per epoch and kernel layer: output error, gradient cosine, gradient norms, dead share."""
    rows = [[r["epoch"], layer["layer"], f"{layer['output_error']:.2e}", f"{layer['kernel']['cosine']:.4f}",
             f"{layer['kernel']['norm_bf16']:.3g}", f"{layer['kernel']['norm_f32']:.3g}",
             "" if layer["dead"] is None else f"{layer['dead']:.2f}"]
            for r in records for layer in r["layers"] if "kernel" in layer]
    return tabulate(rows, headers=["epoch", "layer", "output error", "grad cosine", "|grad| bf16", "|grad| f32",
                                   "dead"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", required=True, help="labels CSV (paths resolve from the current folder)")
    parser.add_argument("--out", required=True, help="the run folder to train into (must not exist)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs (the AMX collapse showed at epoch 4)")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--arch", default="cnn")
    parser.add_argument("--recipe", default=None, help="train-cnn's --recipe (default: its default; the collapse "
                        "was first seen with `card`)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default="none", help="train-cnn's --cache (memory: decode the photos once)")
    parser.add_argument("--json", default=None, help="where to write the records (default OUT/diagnosis.json)")
    args = parser.parse_args()
    from cnn.training.precision import cpu_flags
    from cnn.training.train import train

    flags = sorted(flag for flag in cpu_flags() if "bf16" in flag or flag.startswith("amx"))
    records = []

    def save():
        write_json(args.json or Path(args.out) / "diagnosis.json",
                   {"machine": {**machine(), "bfloat16_flags": flags}, "arguments": vars(args), "epochs": records})

    batch = fixed_batch(args.labels, args.image_size)
    train(out=args.out, labels=args.labels, epochs=args.epochs, image_size=args.image_size, arch=args.arch,
          recipe=args.recipe, cache=args.cache, batch_size=args.batch_size, seed=args.seed,
          precision="mixed_bfloat16", patience=args.epochs, callbacks=[probe(batch, records, save)])
    print(table(records))


if __name__ == "__main__":
    main()
