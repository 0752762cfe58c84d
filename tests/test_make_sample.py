"""The sample generator: deterministic bytes, DeepFashion's formats, labels that match the folder suffixes."""
import hashlib
import html
import re
import subprocess
import sys

import pytest
from PIL import Image

from conftest import REPO, SHARED
from data.garments import SILHOUETTES
from data.make_sample import generate

# DeepFashion's 50 categories by type (1 upper, 2 lower, 3 full body), as Anno/list_category_cloth.txt
# lists them: written out here so the generator is checked against the dataset, not against our own table.
OFFICIAL = {
    "1": "Anorak Blazer Blouse Bomber Button-Down Cardigan Flannel Halter Henley Hoodie Jacket Jersey Parka "
         "Peacoat Poncho Sweater Tank Tee Top Turtleneck",
    "2": "Capris Chinos Culottes Cutoffs Gauchos Jeans Jeggings Jodhpurs Joggers Leggings Sarong Shorts Skirt "
         "Sweatpants Sweatshorts Trunks",
    "3": "Caftan Cape Coat Coverup Dress Jumpsuit Kaftan Kimono Nightdress Onesie Robe Romper Shirtdress Sundress",
}
OFFICIAL_CATEGORIES = [(name, kind) for kind, names in OFFICIAL.items() for name in names.split()]


def _digest(root):
    """sha256 over every file's relative path and bytes."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _read_listing(path):
    """DeepFashion listing: count line, header, then `name<spaces>value` rows; checks the count."""
    lines = path.read_text().splitlines()
    rows = [re.split(r"\s+", line.strip()) for line in lines[2:]]
    assert int(lines[0]) == len(rows)
    return lines[1], dict(rows)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    generate(tmp_path / "a", per_class=12, seed=7)
    generate(tmp_path / "b", per_class=12, seed=7)
    generate(tmp_path / "c", per_class=12, seed=8)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_annotations_parse_back_to_the_folder_suffix_labels(sample_tree):
    names = [name for name, _ in OFFICIAL_CATEGORIES]
    header, cloth = _read_listing(sample_tree / "Anno" / "list_category_cloth.txt")
    assert header.split() == ["category_name", "category_type"]
    assert list(cloth.items()) == OFFICIAL_CATEGORIES
    header, labels = _read_listing(sample_tree / "Anno" / "list_category_img.txt")
    assert header.split() == ["image_name", "category_label"]
    on_disk = sorted(p.relative_to(sample_tree).as_posix() for p in (sample_tree / "img").rglob("*.jpg"))
    assert sorted(labels) == on_disk
    for rel, index in labels.items():
        suffix = html.unescape(rel.split("/")[1]).rsplit("_", 1)[-1]
        assert names[int(index) - 1] == suffix
    assert {names[int(i) - 1] for i in labels.values()} == set(SILHOUETTES)


def test_partition_keeps_products_whole_and_covers_every_split(sample_tree):
    header, status = _read_listing(sample_tree / "Eval" / "list_eval_partition.txt")
    assert header.split() == ["image_name", "evaluation_status"]
    by_folder = {}
    for rel, split in status.items():
        by_folder.setdefault(rel.split("/")[1], set()).add(split)
    assert all(len(splits) == 1 for splits in by_folder.values())
    for category in SILHOUETTES:
        seen = set().union(*(s for f, s in by_folder.items() if f.endswith("_" + category)))
        assert seen == {"train", "val", "test"}
    assert sum(s == "train" for s in status.values()) > 0.6 * len(status)


def test_images_are_rgb_jpegs_and_names_carry_real_quirks(sample_tree):
    images = sorted((sample_tree / "img").rglob("*.jpg"))
    assert len(images) == 60 * len(SILHOUETTES)
    with Image.open(images[0]) as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (128, 128)
    folders = {p.parent.name for p in images}
    assert any("&eacute;" in f for f in folders) and any("-" in f for f in folders)


def test_cli_writes_tree_and_refuses_non_empty_folder(tmp_path):
    out = tmp_path / "tree"
    cmd = [sys.executable, "-m", "data.make_sample", str(out), "--per-class", "5", "--seed", "1"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "wrote 30 images" in done.stderr
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 2 and "not an empty folder" in again.stderr


@pytest.mark.parametrize("per_class", [3, 4, 25])
def test_every_category_gets_three_products_and_the_requested_count(tmp_path, per_class):
    entries = generate(tmp_path, per_class=per_class, seed=3)
    for category in SILHOUETTES:
        mine = [p for p, (c, _) in entries.items() if c == category]
        assert len(mine) == per_class
        assert len({p.split("/")[1] for p in mine}) >= 3


def test_the_list_above_is_deepfashions_own():
    official = SHARED / "data" / "deepfashion" / "list_category_cloth.txt"
    if not official.is_file():
        pytest.skip(f"{official} is absent (DeepFashion's files live in ../shared beside the repo)")
    assert list(_read_listing(official)[1].items()) == OFFICIAL_CATEGORIES
