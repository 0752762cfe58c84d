"""audit-labels on real photos with planted label errors: how many of the flipped train labels it ranks near the top,
how many images it flags, and how each fold model scored out of fold.

    python benchmarks/audit_flips.py --dataset ../shared/data/clothing-dataset-small --flips 60 --folds 3 \
        --work /tmp/audit_flips --out benchmarks/results/audit_flips -- --image-size 64 --epochs 15 --cache memory

The labels CSV is make-labels' for the dataset (groups are its class folders, as for any folder-per-class dataset)
with `--flips` train images, drawn by `--seed`, given another class drawn at random: the case #39 found, where folds
once held whole classes out and flagged 78% of the images. Options after -- go to every fold's train-cnn. The CSV and
the audit live in --work (a rerun keeps finished folds); nothing is written into the dataset. Prints and writes
OUT/audit_flips.json.
"""
import argparse
import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def flipped_labels(dataset, flips, seed):
    """make-labels' table for `dataset` with `flips` train labels changed to another class; (table, flipped paths)."""
    from labeling.labels import make_labels

    table = make_labels(Path(dataset).resolve())[0]  # absolute paths: the CSV lives in --work
    classes = sorted(set(table["label"]))
    draw = random.Random(seed)
    chosen = draw.sample(sorted(table.index[table["split"] == "train"]), flips)
    for row in chosen:
        table.loc[row, "label"] = draw.choice([c for c in classes if c != table.loc[row, "label"]])
    return table, set(table.loc[chosen, "path"])


def figures_of(audit, planted):
    """Recall of the planted flips among the top N, 2N and all flagged; the share flagged (of the train images
    audit_labels.json counts); the fold scores."""
    import pandas as pd

    issues = pd.read_csv(audit / "label_issues.csv")
    record = json.loads((audit / "audit_labels.json").read_text())
    found = [path in planted for path in issues["path"]]
    n, images = len(planted), record["images"]
    return {"flipped": n, "images": images, "flagged": len(issues), "flagged_share": round(len(issues) / images, 4),
            "recall_at_flipped": round(sum(found[:n]) / n, 4), "recall_at_2x": round(sum(found[:2 * n]) / n, 4),
            "recall_flagged": round(sum(found) / n, 4),
            "precision_flagged": round(sum(found) / max(len(issues), 1), 4), "fold_scores": record["fold_scores"]}


def main():
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    own, fold_args = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--flips", type=int, default=60)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", required=True, help="where the flipped CSV and the audit's folds go")
    p.add_argument("--out", required=True)
    args = p.parse_args(own)
    from cnn.cli import audit_labels_main

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    table, planted = flipped_labels(args.dataset, args.flips, args.seed)
    table.to_csv(work / "labels.csv", index=False)
    status = audit_labels_main([str(work / "labels.csv"), "--folds", str(args.folds), "--out", str(work / "audit"),
                                "--", *fold_args])
    if status != 0:
        sys.exit(status)
    figures = {**figures_of(work / "audit", planted),
               "folds": args.folds, "fold_options": fold_args, "seed": args.seed}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "audit_flips.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
