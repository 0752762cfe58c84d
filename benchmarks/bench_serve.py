"""serve-cnn under load: locust (headless, bounded in users and seconds) on loopback, real photos, one per request.

    python benchmarks/bench_serve.py RUN [--seconds 30] [--users 1,8,32,64] [--overload-users 256]
                                         [--overload-rounds 1] [--soak-seconds 600]
                                         [--out benchmarks/results/serve]

First the same run's model alone (predict_on_batch on batches of --max-batch decoded photos, images/s), then one
serve-cnn process (--max-batch 32 --max-wait-ms 5 --max-queue 64) driven by each number of users: requests/s
(= images/s), p50/p95/p99 latency, errors, images/s as a share of the model alone, and the server's images per
CPU-second of its own as a share of the model alone's (what it would reach with the cores to itself). Then the
overload: many more users than the server sustains; the excess must get 503 fast while the server's RSS stays
flat (--overload-rounds in a row: a plateau or growth). Then the soak at
32 users: no error, no growth in RSS or open file descriptors. Clients and server share this machine's cores, so
the figures are a floor for a server with a machine of its own. Prints a table; writes serve.json under --out.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench_limits import cpu_name  # noqa: E402
from cnn.training.distribute.strategy import free_loopback_ports  # noqa: E402
from common.atomic import write_json  # noqa: E402

PHOTOS = REPO.parent / "shared" / "data" / "clothing-dataset-small" / "test"
LOCUSTFILE = REPO / "benchmarks" / "serve_locustfile.py"
MAX_BATCH, MAX_QUEUE = 32, 64


def machine():
    """The figures' machine: the CPU's model name and its cores."""
    return f"{cpu_name()}, {os.cpu_count()} cores"


def model_only(run, batches=8):
    """(images/s, images per CPU-second) of the run's predictor alone on batches of MAX_BATCH decoded photos (after
    a warm-up batch)."""
    import numpy as np

    from cnn.data.loader import decode_and_resize
    from cnn.runs.predictor import open_run

    predictor = open_run(run)
    size = (predictor.image_size, predictor.image_size)
    photos = sorted(PHOTOS.rglob("*.jpg"))[:MAX_BATCH * batches]
    images = np.stack([decode_and_resize(p, size) for p in photos])
    predictor.predict_on_batch(images[:MAX_BATCH])
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(images), MAX_BATCH):
        predictor.predict_on_batch(images[i:i + MAX_BATCH])
    return len(images) / (time.perf_counter() - started), len(images) / (time.process_time() - cpu)


def start_server(run, port):
    """A serve-cnn process, once it answers its readiness probe."""
    import requests

    process = subprocess.Popen([str(Path(sys.executable).parent / "serve-cnn"), str(run), "--port", str(port),
                                "--max-batch", str(MAX_BATCH), "--max-wait-ms", "5", "--max-queue", str(MAX_QUEUE)])
    for _ in range(600):
        try:
            if requests.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).ok:
                return process
        except requests.ConnectionError:
            time.sleep(0.2)
    raise SystemExit("serve-cnn did not start")


def cpu_seconds(pid):
    """CPU time (user + system, every thread) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resources(pid):
    """(RSS in MB, open file descriptors) of a process."""
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def locust(port, users, seconds, folder):
    """Run locust headless; (its aggregated stats row, every request's (status, ms))."""
    prefix, record = folder / f"u{users}", folder / f"u{users}.json"
    env = {**os.environ, "BENCH_PHOTOS": str(PHOTOS), "BENCH_RECORD": str(record)}
    subprocess.run([sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
                    "-r", str(users), "-t", f"{seconds}s", "--host", f"http://127.0.0.1:{port}", "--csv", str(prefix),
                    "--only-summary", "--stop-timeout", "10", "--loglevel", "WARNING"], env=env, check=False,
                   stdout=subprocess.DEVNULL)
    with open(f"{prefix}_stats.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return row, json.loads(record.read_text())


def percentile(values, q):
    import numpy as np

    return float(np.percentile(values, q)) if values else None


def level(port, pid, users, seconds, folder, model):
    """One load level's figures; `model`: the model alone's (images/s, images per CPU-second). The server's images
    per CPU-second of its own as a share of the model's is what it would reach with the cores to itself (the load
    generator here takes the rest)."""
    cpu = cpu_seconds(pid)
    row, requests = locust(port, users, seconds, folder)
    cpu = cpu_seconds(pid) - cpu
    ok = [ms for status, ms in requests if status == 200]
    rate = len(ok) / seconds
    return {"users": users, "requests": len(requests), "answered_per_s": round(rate, 1),
            "share_of_model": round(rate / model[0], 3),
            "cpu_share_of_model": round(len(ok) / cpu / model[1], 3) if cpu else None,
            "p50_ms": percentile(ok, 50), "p95_ms": percentile(ok, 95), "p99_ms": percentile(ok, 99),
            "errors": sum(status != 200 for status, _ in requests),
            "locust_requests_per_s": float(row["Requests/s"])}


def refused_within(port, seconds=0.1):
    """(503 answers, those the server sent within `seconds` of their arrival) from its own /metrics histogram: the
    server's side, without the clients' queueing on shared cores."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    buckets = {sample.labels["le"]: sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == "serve_request_seconds_bucket"
               and sample.labels["code"] == "503" and sample.labels["endpoint"] == "/predict"}
    return buckets.get("+Inf", 0.0), buckets.get(str(seconds), 0.0)


def overload(port, pid, users, seconds, folder):
    """Far more users than the server sustains: the 503 share and latency (as the clients saw it, and as the server
    sent it), and RSS before and after."""
    before, sent = resources(pid), refused_within(port)
    _, requests = locust(port, users, seconds, folder)
    after, sent = resources(pid), [b - a for a, b in zip(sent, refused_within(port))]
    refused = [ms for status, ms in requests if status == 503]
    return {"users": users, "requests": len(requests), "answered_200": sum(s == 200 for s, _ in requests),
            "refused_503": len(refused), "other_errors": sum(s not in (200, 503) for s, _ in requests),
            "p99_ms_503": percentile(refused, 99), "max_ms_503": max(refused, default=None),
            "server_503_within_100ms": round(sent[1] / sent[0], 3) if sent[0] else None,
            "rss_mb_before": round(before[0], 1), "rss_mb_after": round(after[0], 1),
            "rss_change": round(after[0] / before[0] - 1, 3)}


def soak(port, pid, seconds, folder):
    """32 users for `seconds`: errors, and RSS and open descriptors before and after."""
    before = resources(pid)
    _, requests = locust(port, 32, seconds, folder)
    after = resources(pid)
    return {"seconds": seconds, "requests": len(requests), "errors": sum(s != 200 for s, _ in requests),
            "rss_mb": [round(before[0], 1), round(after[0], 1)], "open_fds": [before[1], after[1]]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--users", default="1,8,32,64")
    parser.add_argument("--overload-users", type=int, default=256)
    parser.add_argument("--overload-rounds", type=int, default=1, help="overloads in a row (RSS: a plateau or growth)")
    parser.add_argument("--soak-seconds", type=int, default=600, help="0: no soak")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve"))
    args = parser.parse_args()
    from tabulate import tabulate

    model = model_only(args.run)
    print(f"{machine()}: the model alone, batches of {MAX_BATCH}: {model[0]:.1f} images/s, {model[1]:.1f} images per "
          f"CPU-second", flush=True)
    port = free_loopback_ports(1)[0]
    server = start_server(args.run, port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            locust(port, 8, 5, folder)  # warm-up
            levels = [level(port, server.pid, int(u), args.seconds, folder, model) for u in args.users.split(",")]
            print(tabulate(levels, headers="keys"), flush=True)
            over = [overload(port, server.pid, args.overload_users, args.seconds, folder)
                    for _ in range(args.overload_rounds)]
            print("overload:", "\n".join(map(json.dumps, over)), flush=True)
            soaked = soak(port, server.pid, args.soak_seconds, folder) if args.soak_seconds else None
            print("soak:", json.dumps(soaked), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(args.out) / "serve.json", {"machine": machine(), "run": str(args.run), "max_batch": MAX_BATCH,
                                               "max_queue": MAX_QUEUE, "model_only_images_per_s": round(model[0], 1),
                                               "model_only_images_per_cpu_s": round(model[1], 1),
                                               "levels": levels, "overload": over[0], "overload_again": over[1:],
                                               "soak": soaked})


if __name__ == "__main__":
    main()
