"""Generate the embedded sample dataset: a small DeepFashion-shaped tree of procedurally drawn garments.

    python -m data.make_sample OUT [--per-class N] [--seed S]

writes OUT/img/<Product_Name>_<Category>/img_00000001.jpg (several products per category, several
images per product) and DeepFashion's annotation files OUT/Anno/list_category_cloth.txt,
OUT/Anno/list_category_img.txt and OUT/Eval/list_eval_partition.txt in the dataset's own formats.
Each category is a distinct silhouette drawn with random colours, patterns, sizes, positions,
backgrounds and noise, so a CNN has to learn shapes rather than a colour. Same seed, same bytes.
"""
import argparse
import io
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from data.garments import SILHOUETTES
from data.listing import write_listing

IMAGE_SIZE = 128
# Words for product names, with the quirks of the real folder names: HTML entities and hyphens.
ADJECTIVES = ["Ombr&eacute;", "Caf&eacute;", "Sheer", "Pleated-Front", "Lace-Up", "Striped", "Classic",
              "Faux_Leather", "Floral", "Boxy", "Cropped", "Relaxed", "Tie-Dye", "Vintage", "Slim-Fit",
              "Soft", "Heathered", "Ribbed", "Crochet", "Distressed"]
NOUNS = ["Contrast", "Workout", "Everyday", "Woven", "Knit", "Denim", "Cotton", "Linen", "Jersey-Knit", "Pocket"]
SPLIT_FRACTIONS = (("train", 0.8), ("val", 0.1), ("test", 0.1))


def official_categories():
    """DeepFashion's 50 official categories as (name, type) with type 1 upper, 2 lower, 3 full body."""
    from labeling.categories import DEEPFASHION_CATEGORIES

    return list(DEEPFASHION_CATEGORIES)


def product_names(rng, category, count):
    """`count` distinct DeepFashion-style product folder names ending in `_<category>`."""
    names = set()
    while len(names) < count:
        words = [rng.choice(ADJECTIVES)] + rng.sample(NOUNS, rng.randint(0, 2))
        names.add("_".join(words + [category]))
    return sorted(names)


def draw_garment(rng, category):
    """One JPEG's bytes: the category's silhouette, randomly coloured, patterned, placed and noised."""
    bg = tuple(rng.randint(150, 255) for _ in range(3))
    fg = tuple(rng.randint(0, 200) for _ in range(3))
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), bg)
    mask = Image.new("L", (IMAGE_SIZE, IMAGE_SIZE), 0)
    scale = rng.uniform(0.65, 0.95) * IMAGE_SIZE
    cx = IMAGE_SIZE / 2 + rng.uniform(-0.1, 0.1) * IMAGE_SIZE
    cy = IMAGE_SIZE / 2 + rng.uniform(-0.1, 0.1) * IMAGE_SIZE
    draw = ImageDraw.Draw(mask)
    for polygon in SILHOUETTES[category](rng):
        draw.polygon([(cx + (x - 0.5) * scale, cy + (y - 0.5) * scale) for x, y in polygon], fill=255)
    mask = mask.rotate(rng.uniform(-12, 12), resample=Image.BILINEAR)
    image.paste(_pattern(rng, fg), (0, 0), mask)
    pixels = np.asarray(image, dtype=np.int16)
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(2, 12), pixels.shape)
    image = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _pattern(rng, colour):
    """A fabric texture in `colour`: solid, stripes or dots, with a second random colour."""
    texture = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), colour)
    kind = rng.choice(["solid", "stripes", "dots"])
    other = tuple(rng.randint(0, 255) for _ in range(3))
    draw = ImageDraw.Draw(texture)
    step = rng.randint(6, 14)
    if kind == "stripes":
        for y in range(0, IMAGE_SIZE, step):
            draw.rectangle([0, y, IMAGE_SIZE, y + step // 3], fill=other)
    elif kind == "dots":
        for y in range(0, IMAGE_SIZE, step):
            for x in range(0, IMAGE_SIZE, step):
                draw.ellipse([x, y, x + step // 3, y + step // 3], fill=other)
    return texture


def split_products(rng, folders):
    """Assign whole product folders to train/val/test (80/10/10 per category), as DeepFashion's partition does."""
    shuffled = sorted(folders)
    rng.shuffle(shuffled)
    n_val = max(1, round(len(shuffled) * SPLIT_FRACTIONS[1][1]))
    n_test = max(1, round(len(shuffled) * SPLIT_FRACTIONS[2][1]))
    assignment = {name: "val" for name in shuffled[:n_val]}
    assignment.update({name: "test" for name in shuffled[n_val:n_val + n_test]})
    assignment.update({name: "train" for name in shuffled[n_val + n_test:]})
    return assignment


def generate(out, per_class=100, seed=0, categories=tuple(SILHOUETTES)):
    """Write the sample tree under `out` and return {relative image path: (category, split)}."""
    rng = random.Random(seed)
    index = {name: i for i, (name, _) in enumerate(official_categories(), start=1)}
    entries = {}
    for category in categories:
        sizes = _product_sizes(rng, per_class)
        folders = [f"{name}" for name in product_names(rng, category, len(sizes))]
        splits = split_products(rng, folders)
        for folder, size in zip(folders, sizes):
            for k in range(1, size + 1):
                rel = f"img/{folder}/img_{k:08d}.jpg"
                _write(Path(out) / rel, draw_garment(rng, category))
                entries[rel] = (category, splits[folder])
    _write_annotations(Path(out), entries, index)
    return entries


def _product_sizes(rng, total):
    """Split `total` images into products of 4 to 12 images each (at least 3 products per category)."""
    sizes = []
    while total > 0:
        size = min(total, rng.randint(4, 12))
        sizes.append(size)
        total -= size
    while len(sizes) < 3 and max(sizes) > 1:
        big = sizes.index(max(sizes))
        half = sizes[big] // 2
        sizes[big] -= half
        sizes.append(half)
    return sizes


def _write(path, data):
    """Write bytes to `path`, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def _write_annotations(out, entries, index):
    """DeepFashion's Anno/ and Eval/ files, columns padded with runs of spaces as in the release."""
    paths = sorted(entries)
    write_listing(out / "Anno" / "list_category_cloth.txt", "category_name  category_type",
                  official_categories(), width=14)
    write_listing(out / "Anno" / "list_category_img.txt", "image_name  category_label",
                  [(p, index[entries[p][0]]) for p in paths])
    write_listing(out / "Eval" / "list_eval_partition.txt", "image_name  evaluation_status",
                  [(p, entries[p][1]) for p in paths])


def main(argv=None):
    """Parse arguments and generate the tree; refuse to write into a non-empty folder."""
    parser = argparse.ArgumentParser(prog="python -m data.make_sample", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("out", help="folder to create (must be absent or empty)")
    parser.add_argument("--per-class", type=int, default=100, help="images per category")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    args = parser.parse_args(argv)
    if args.per_class < 3:
        parser.error(f"--per-class must be at least 3 (one image for each of train, val, test), not {args.per_class}")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        parser.error(f"{out} exists and is not an empty folder; choose a new path or remove it")
    entries = generate(out, args.per_class, args.seed)
    folders = {Path(p).parent for p in entries}
    print(f"wrote {len(entries)} images in {len(folders)} product folders, {len(SILHOUETTES)} categories, to {out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
