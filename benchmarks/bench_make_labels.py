"""Time make-labels on a DeepFashion-sized tree: 289,222 empty .jpg files in 5,620 product folders.

    flock /tmp/cpu-heavy.lock python benchmarks/bench_make_labels.py [TREE] [--repeat 3] [--json FILE]

Builds the tree (with DeepFashion's Anno/ and Eval/ files) in TREE, reusing it when it exists, or in a temporary
folder removed afterwards; runs `python -m labeling` as a subprocess per configuration and prints its wall time,
peak resident memory (os.wait4's ru_maxrss for that child alone) and files/s. Target: < 5 s and < 1 GiB.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from common.atomic import write_json  # noqa: E402
from data.listing import write_listing  # noqa: E402
from labeling.categories import DEEPFASHION_CATEGORIES  # noqa: E402

IMAGES, FOLDERS = 289_222, 5_620
WORDS = ["Sheer", "Pleated-Front", "Lace", "Ombr&eacute;", "Caf&eacute;", "Striped", "Floral", "Boxy", "Classic",
         "Cropped", "Relaxed", "Woven", "Knit", "Denim", "Contrast", "Workout", "Everyday", "Faux_Leather"]
CONFIGS = {"default (auto -> official split)": [], "--split group": ["--split", "group"],
           "--source check": ["--source", "check"]}


def build_tree(root, seed=0):
    """Write the empty-file tree and its annotation files; 46 categories with DeepFashion-like imbalance."""
    rng = np.random.default_rng(seed)
    names = [name for name, _ in DEEPFASHION_CATEGORIES]
    used = [i for i, name in enumerate(names) if name not in ("Cape", "Nightdress", "Shirtdress", "Sundress")]
    weights = rng.pareto(1.0, len(used)) + 0.02
    categories = rng.choice(used, FOLDERS, p=weights / weights.sum())
    sizes = rng.multinomial(IMAGES - FOLDERS, rng.dirichlet(np.full(FOLDERS, 2.0))) + 1
    splits = rng.choice(["train", "val", "test"], FOLDERS, p=[0.72, 0.14, 0.14])
    img_lines, part_lines = [], []
    for k, (category, size, split) in enumerate(zip(categories, sizes, splits)):
        words = list(rng.choice(WORDS, rng.integers(1, 4), replace=False))
        folder = f"img/{'_'.join(words)}_{k:04d}_{names[category]}"
        os.makedirs(os.path.join(root, folder))
        for i in range(1, size + 1):
            rel = f"{folder}/img_{i:08d}.jpg"
            open(os.path.join(root, rel), "wb").close()
            img_lines.append((rel, category + 1))
            part_lines.append((rel, split))
    write_listing(Path(root, "Anno/list_category_cloth.txt"), "category_name  category_type",
                  DEEPFASHION_CATEGORIES, width=14)
    write_listing(Path(root, "Anno/list_category_img.txt"), "image_name  category_label", img_lines)
    write_listing(Path(root, "Eval/list_eval_partition.txt"), "image_name  evaluation_status", part_lines)


def run_once(root, extra, out):
    """(wall seconds, peak RSS bytes) of one `python -m labeling ROOT -o out` subprocess."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "labeling", root, "-o", out, *extra],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        sys.exit(f"make-labels {' '.join(extra)} failed with status {child.returncode}")
    return wall, usage.ru_maxrss * 1024  # Linux reports kilobytes


def main():
    """Build (or reuse) the tree, time each configuration, print seconds, files/s and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("tree", nargs="?", help="folder for the synthetic tree (reused when it exists)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (best and median reported)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.tree or os.path.join(scratch, "deepfashion")
        if not os.path.isdir(root):
            start = time.perf_counter()
            build_tree(root)
            print(f"built {IMAGES:,} files in {FOLDERS:,} folders under {root} in "
                  f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
        results = []
        for name, extra in CONFIGS.items():
            runs = [run_once(root, extra, os.path.join(scratch, "labels.csv")) for _ in range(args.repeat)]
            walls = sorted(wall for wall, _ in runs)
            results.append({"config": name, "images": IMAGES, "folders": FOLDERS, "runs": len(runs),
                            "best_s": round(walls[0], 3), "median_s": round(walls[len(walls) // 2], 3),
                            "files_per_s": round(IMAGES / walls[len(walls) // 2]),
                            "peak_rss_mib": round(max(rss for _, rss in runs) / 2**20, 1)})
            r = results[-1]
            print(f"{name:34s} median {r['median_s']:.2f} s (best {r['best_s']:.2f} s), "
                  f"{r['files_per_s']:,} files/s, peak RSS {r['peak_rss_mib']:.0f} MiB")
    if args.json:
        write_json(args.json, {"cpu_count": os.cpu_count(), "python": sys.version.split()[0], "results": results})


if __name__ == "__main__":
    main()
