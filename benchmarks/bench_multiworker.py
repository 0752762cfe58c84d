"""Training images/s of the card's CNN on 1 and on N worker processes on loopback (MultiWorkerMirroredStrategy),
and the time of one gradient all-reduce, for the README's cost table.

    flock /work/exp/train.lock python benchmarks/bench_multiworker.py [--workers 2] [--image-size 256]
                                                                      [--steps 20] [--json results.json]

Each configuration runs as fresh processes (the strategy must exist before any other TensorFlow work): N
processes with TF_CONFIG naming N ports on 127.0.0.1, each training from its own in-memory batch of
global/N images through cnn.training.distribute.multiworker's distributed step (the one train-cnn --strategy multiworker runs),
so loading costs nothing and the figure is compute plus communication. Order: 1 worker, N workers, 1 worker
again (drift in the machine's load shows as a gap between the two 1-worker figures). Then N processes time
`--steps` all-reduces of a float32 tensor as large as the model's gradients (what each step exchanges).
For float32 and the precision `--precision auto` picks here.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_training import machine, memory_dataset  # noqa: E402
from cnn.training.distribute.strategy import free_loopback_ports  # noqa: E402
from common.atomic import write_json  # noqa: E402

CLASSES = 46  # DeepFashion's categories: the Dense layer's size, so the gradients are DeepFashion's


def worker(args):
    """One worker: time --steps distributed training steps (or all-reduces); the chief prints a RESULT line."""
    import keras
    import tensorflow as tf

    from cnn.models.architectures import build_cnn
    from cnn.training.distribute.multiworker import train_step
    from cnn.training.precision import apply_precision
    from cnn.training.distribute.strategy import distribution

    dist = distribution("multiworker")
    apply_precision(args.precision)
    size, batch = args.image_size, args.batch_size
    with dist.strategy.scope():
        model = build_cnn(CLASSES, (size, size, 3))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    if args.role == "allreduce":
        gradients = tf.ones((model.count_params(),), tf.float32)
        step = tf.function(lambda: dist.strategy.run(
            lambda: tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, gradients)))
        run = lambda: step()  # noqa: E731
    else:
        data = memory_dataset(batch // dist.replicas, size, CLASSES)
        iterator = iter(dist.strategy.distribute_datasets_from_function(lambda context: data))
        loss = keras.losses.CategoricalCrossentropy(reduction=None)
        train = train_step(dist, model, loss, None, batch)
        run = lambda: train(iterator)  # noqa: E731
    for _ in range(2):  # tracing and the first collectives are left out of the timing
        run()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        out = run()
    float(tf.reduce_sum(tf.nest.flatten(out)[0]))  # wait for the last step
    seconds = time.perf_counter() - start
    if dist.chief:
        print("RESULT " + json.dumps({"workers": dist.workers, "seconds_per_step": seconds / args.steps,
                                      "images_per_s": batch * args.steps / seconds, "parameters": model.count_params(),
                                      "cpu_seconds_per_step": (time.process_time() - cpu) / args.steps}), flush=True)


def launch(n, role, precision, args):
    """Run n worker processes of `role` on loopback; the chief's RESULT as a dict."""
    ports = free_loopback_ports(n)
    processes = []
    for i in range(n):
        config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": i}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
        command = [sys.executable, __file__, "--role", role, "--precision", precision, "--image-size",
                   str(args.image_size), "--batch-size", str(args.batch_size), "--steps", str(args.steps)]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          text=True))
    outputs = [p.communicate(timeout=1800)[0] for p in processes]
    result = next((json.loads(line[7:]) for line in outputs[0].splitlines() if line.startswith("RESULT ")), None)
    if result is None or any(p.returncode for p in processes):
        raise SystemExit(f"bench_multiworker: a worker failed ({[p.returncode for p in processes]})")
    print(f"bench_multiworker: {precision} {role} on {n} worker(s): {result['images_per_s']:.1f} images/s, "
          f"{1000 * result['seconds_per_step']:.0f} ms a step", file=sys.stderr, flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the multi-worker run")
    parser.add_argument("--image-size", type=int, default=256, help="square input side, pixels")
    parser.add_argument("--batch-size", type=int, default=32, help="global batch: images per step over all workers")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--role", choices=("train", "allreduce"), help=argparse.SUPPRESS)  # a launched worker
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        return worker(args)
    from cnn.training.precision import resolve_precision

    results = []
    for precision in dict.fromkeys(["float32", resolve_precision("auto")]):
        runs = [launch(n, "train", precision, args) for n in (1, args.workers, 1)]
        results.append({"precision": precision, "one_worker": [runs[0], runs[2]], "workers": runs[1],
                        "allreduce": launch(args.workers, "allreduce", precision, args)})
    for r in results:
        one = sum(x["images_per_s"] for x in r["one_worker"]) / 2
        print(f"{r['precision']}: 1 worker {one:.1f} images/s; {args.workers} workers on loopback "
              f"{r['workers']['images_per_s']:.1f} images/s ({r['workers']['images_per_s'] / one:.2f}x); one all-reduce "
              f"of {r['allreduce']['parameters']:,} float32 gradients {1000 * r['allreduce']['seconds_per_step']:.1f} ms")
    if args.json:
        write_json(args.json, {"machine": machine(), "options": {k: str(v) for k, v in vars(args).items()},
                               "results": results})


if __name__ == "__main__":
    main()
