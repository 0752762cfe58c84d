"""audit-data's recall of lightly changed copies of real photos, per kind of change, and the sets it finds among
clothing-dataset-small's own photos (none should be false).

    python benchmarks/audit_recall.py --dataset ../shared/data/clothing-dataset-small \
        --originals ../shared/data/clothing-outside-dev --per-kind 20 --out benchmarks/results/audit_recall

Each original (a photo from outside the dataset, in the CSV's train split) gets one copy per kind in the test
split: exact (the same pixels as PNG), re-encoded at JPEG quality 60, resized to 0.7 then quality 60, cropped 3% a
side then resized to 0.7 and quality 60 (the kind that was missed), and cropped 1-5% off each side unevenly, then
resized and re-encoded alike. Nothing is written into the
datasets: the copies go to a temporary folder. Prints and writes DIR/audit_recall.json.
"""
import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

KINDS = ("exact", "reencode", "resize", "crop_resize", "crop_uneven")


def plant(source, target, kind):
    """Write `kind`'s copy of `source` at `target` (a .jpg path; exact copies become .png); return its path."""
    from PIL import Image

    with Image.open(source) as image:
        image = image.convert("RGB")
    if kind == "exact":
        image.save(target.with_suffix(".png"))
        return target.with_suffix(".png")
    if kind == "crop_resize":
        dx, dy = round(image.width * 0.03), round(image.height * 0.03)
        image = image.crop((dx, dy, image.width - dx, image.height - dy))
    if kind == "crop_uneven":  # 1-5% off each side, drawn from the file's name: not centred, not on a grid
        left, top, right, bottom = (0.01 + 0.04 * random.Random(f"{target.name}{k}").random() for k in range(4))
        w, h = image.width, image.height
        image = image.crop((round(w * left), round(h * top), round(w * (1 - right)), round(h * (1 - bottom))))
    if kind in ("resize", "crop_resize", "crop_uneven"):
        image = image.resize((round(image.width * 0.7), round(image.height * 0.7)), Image.BILINEAR)
    image.save(target, quality=60)
    return target


def labels_with_copies(dataset, originals, per_kind, folder):
    """The dataset's labels table plus the originals (train) and their planted copies (test); {copy: original}."""
    import pandas as pd

    from labeling.labels import make_labels

    table = make_labels(dataset)[0]
    photos = sorted(p for p in Path(originals).rglob("*.jpg"))[:per_kind * len(KINDS)]
    rows, truth = [], {}
    for n, photo in enumerate(photos):
        kind = KINDS[n % len(KINDS)]
        copy = plant(photo, folder / f"{n}-{kind}.jpg", kind)
        label = photo.parent.name
        rows += [{"path": str(photo), "label": label, "group": f"original/{n}", "split": "train"},
                 {"path": str(copy), "label": label, "group": f"copy/{n}", "split": "test"}]
        truth[str(copy)] = (str(photo), kind)
    return pd.concat([table, pd.DataFrame(rows)], ignore_index=True), truth


def measure(sets, truth):
    """Recall per kind, and the sets that hold no planted pair (found among the dataset's own photos)."""
    set_of = dict(zip(sets["path"], sets["set"]))
    recall = {}
    for kind in KINDS:
        pairs = [(c, o) for c, (o, k) in truth.items() if k == kind]
        found = [c for c, o in pairs if c in set_of and set_of[c] == set_of.get(o)]
        recall[kind] = {"found": len(found), "planted": len(pairs), "missed": sorted(set(c for c, _ in pairs) - set(found))}
    planted = set(truth) | {o for o, _ in truth.values()}
    own = sets[~sets["path"].isin(planted)].groupby("set")["path"].apply(list)
    return recall, [members for members in own if len(members) > 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--originals", required=True)
    parser.add_argument("--per-kind", type=int, default=20)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from cnn.audit.audit_data import audit_data
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "copies").mkdir()
        table, truth = labels_with_copies(args.dataset, args.originals, args.per_kind, folder / "copies")
        table.to_csv(folder / "labels.csv", index=False)
        started = time.monotonic()
        figures = audit_data(folder / "labels.csv", out=folder / "audit")
        sets = pd.read_csv(folder / "audit" / "duplicates.csv")
        recall, own = measure(sets, truth)
    total = sum(r["found"] for r in recall.values()) / sum(r["planted"] for r in recall.values())
    result = {"images": figures["images"], "seconds": round(time.monotonic() - started, 1), "recall": recall,
              "recall_overall": total, "sets_among_the_dataset_photos": own}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "audit_recall.json").write_text(json.dumps(result, indent=2) + "\n")
    for kind, r in recall.items():
        print(f"{kind:12s} {r['found']:3d} of {r['planted']:3d}  recall {r['found'] / r['planted']:.2f}")
    print(f"overall recall {total:.3f}; sets among the dataset's own photos: {len(own)}; {result['seconds']} s")


if __name__ == "__main__":
    main()
