"""Does the per-layer timing of `analyze-model --timing` add up? For the card's model (256x256, 46 classes),
in float32 and in mixed bfloat16, time every layer and the whole model; print the sum of layers over the whole
(the issue asks for agreement within 15%), the slowest layers and the matmul peak; write the figures as JSON.

Run from the repo root on a quiet machine: flock /tmp/cpu-heavy.lock python benchmarks/bench_layer_timing.py
"""
import argparse
import json
import platform
from pathlib import Path

from common.tfenv import quiet_tensorflow

PRECISIONS = ("float32", "mixed_bfloat16")
TOLERANCE = 0.15


def measure(precision, args):
    """The timing table of the card's model built under `precision`."""
    from analysis.analyze import analyze
    from analysis.timing import TimingOptions
    from cnn.models.architectures import build_cnn
    from cnn.training.precision import precision_policy

    with precision_policy(precision):
        model = build_cnn(46, input_shape=(args.image_size, args.image_size, 3))
    options = TimingOptions(batch_size=args.batch_size, repeats=args.repeats, training_step=args.training_step)
    tables, _ = analyze(model, flops=False, receptive_field=False, timing=options)
    return tables[0]


def main(argv=None):
    """Time each precision; print the ratio sum-of-layers / whole model and write the JSON beside this script."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--image-size", type=int, default=256, help="input side in pixels")
    parser.add_argument("--batch-size", type=int, default=32, help="images per timed call")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per layer after the warm-up")
    parser.add_argument("--training-step", action="store_true", help="forward + backward instead of inference")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    args = parser.parse_args(argv)
    tf = quiet_tensorflow()
    results = []
    for precision in args.precisions:
        table = measure(precision, args)
        totals = table.totals
        ratio = totals["layers_over_whole"]
        verdict = "within" if abs(ratio - 1) <= TOLERANCE else "OUTSIDE"
        slowest = sorted(table.rows, key=lambda row: -row["time_s"])[:3]
        print(f"{precision:15s} layers {totals['layers_s'] * 1e3:8.2f} ms  "
              f"whole {totals['whole_model_s'] * 1e3:8.2f} ms  ratio {ratio:.3f} ({verdict} {TOLERANCE:.0%})  "
              f"matmul peak {totals['matmul_peak_gflops_per_s']:.0f} GFLOP/s  slowest: "
              + ", ".join(f"{row['layer']} {row['share']:.0%}" for row in slowest))
        results.append({"precision": precision, "totals": totals, "layers": table.rows})
    doc = {"results": results, "image_size": args.image_size, "tensorflow": tf.__version__,
           "machine": platform.machine(), "processor": _cpu_name(), "python": platform.python_version()}
    out = Path(__file__).with_suffix(".json")
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")


def _cpu_name():
    """The CPU model name from /proc/cpuinfo ('' where unavailable)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return ""


if __name__ == "__main__":
    main()
