"""make_labels on real trees of real image files built in tmp_path: labels, groups, sources, filters, splits."""
import io
import os

import pytest
from PIL import Image

from common.errors import UsageError
from data.listing import write_listing
from labeling.categories import DEEPFASHION_CATEGORIES
from labeling.labels import make_labels
from labeling.output import stream_csv

INDEX = {name: i for i, (name, _) in enumerate(DEEPFASHION_CATEGORIES, start=1)}


def save_jpeg(path, mode="RGB", size=(32, 24)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, 90).save(path, "JPEG")


def deepfashion_tree(root, partition=True):
    """Four products (an HTML-entity name among them), annotations with a disagreeing folder, an image
    listed but missing on disk, and an image on disk but not listed."""
    products = {"Sheer_Pleated-Front_Blouse": 4, "Ombr&eacute;_Contrast_Workout_Tank": 3, "Caf&eacute;_Tee": 2,
                "Lace_Swing_Tank": 3}
    listed = []
    for folder, count in products.items():
        for i in range(1, count + 1):
            rel = f"img/{folder}/img_{i:08d}.jpg"
            save_jpeg(root / rel)
            listed.append(rel)
    save_jpeg(root / "img/Lace_Swing_Tank/img_00000099.jpg")  # on disk, not in the annotations
    listed.append("img/Gone_Dress/img_00000001.jpg")  # in the annotations, not on disk
    official = {rel: rel.split("/")[1].rsplit("_", 1)[1] for rel in listed}
    official.update({rel: "Top" for rel in listed if "Caf&eacute;_Tee" in rel})  # the disagreeing folder
    official["img/Ombr&eacute;_Contrast_Workout_Tank/img_00000001.jpg"] = "Tank"
    write_listing(root / "Anno/list_category_cloth.txt", "category_name  category_type",
                  [(name, kind) for name, kind in DEEPFASHION_CATEGORIES])
    write_listing(root / "Anno/list_category_img.txt", "image_name  category_label",
                  [(rel, INDEX[official[rel]]) for rel in listed])
    if partition:
        splits = {"Sheer_Pleated-Front_Blouse": "train", "Ombr&eacute;_Contrast_Workout_Tank": "val",
                  "Caf&eacute;_Tee": "test", "Lace_Swing_Tank": "train", "Gone_Dress": "train"}
        write_listing(root / "Eval/list_eval_partition.txt", "image_name  evaluation_status",
                      [(rel, splits[rel.split("/")[1]]) for rel in listed])
    return root


def rows(table, *columns):
    return [tuple(row) for row in table[list(columns)].itertuples(index=False)]


def test_suffix_labels_groups_paths_types_and_official_split(tmp_path):
    root = deepfashion_tree(tmp_path / "deepfashion")
    table, summary = make_labels(str(root) + "/")
    assert list(table.columns) == ["path", "label", "group", "split", "category_type"]
    assert table["path"].tolist() == sorted(table["path"])
    assert all(path.startswith(str(root) + "/img/") and os.path.isfile(path) for path in table["path"])
    assert rows(table, "group", "label", "category_type", "split")[:5] == [
        ("img/Caf&eacute;_Tee", "Tee", "upper", "test")] * 2 + [("img/Lace_Swing_Tank", "Tank", "upper", "train")] * 3
    by_group = table.groupby("group")["label"].first().to_dict()
    assert by_group == {"img/Caf&eacute;_Tee": "Tee", "img/Lace_Swing_Tank": "Tank",
                        "img/Ombr&eacute;_Contrast_Workout_Tank": "Tank", "img/Sheer_Pleated-Front_Blouse": "Blouse"}
    # auto split: Eval/ exists, so the official partition; the unlisted image cannot be placed and is dropped
    assert summary["split"] == "official"
    assert len(table) == 12 and summary["dropped"] == {"not_in_partition": 1}
    assert any("img/Lace_Swing_Tank/img_00000099.jpg" in w for w in summary["warnings"])
    assert (summary["images_found"], summary["non_images_skipped"]) == (13, 3)  # the three listing files


def test_check_reports_agreement_disagreeing_folders_and_missing_files(tmp_path):
    root = deepfashion_tree(tmp_path / "df", partition=False)
    table, summary = make_labels(root, source="check")
    assert list(table.columns) == ["path", "label", "group", "split", "official_label", "category_type"]
    check = summary["check"]
    # 12 of the 13 images on disk are listed; the 2 Caf&eacute;_Tee images say Top
    assert (check["agree"], check["disagree"]) == (10, 2)
    assert check["disagreeing_folders"] == [
        {"group": "img/Caf&eacute;_Tee", "label": "Tee", "official_label": "Top", "images": 2}]
    assert (check["missing_on_disk"], check["not_in_annotations"]) == (1, 1)
    assert check["missing_examples"] == ["img/Gone_Dress/img_00000001.jpg"]
    unlisted = table[table["path"].str.endswith("img_00000099.jpg")]
    assert unlisted["official_label"].tolist() == [""] and unlisted["label"].tolist() == ["Tank"]
    assert summary["split"] == "group"


def test_official_source_takes_labels_from_annotations(tmp_path):
    root = deepfashion_tree(tmp_path / "df")
    table, summary = make_labels(root, source="official", split="none")
    assert set(table.loc[table["group"] == "img/Caf&eacute;_Tee", "label"]) == {"Top"}
    assert len(table) == 12 and summary["dropped"]["not_in_annotations"] == 1
    assert set(table["split"]) == {""}
    assert any("missing on disk" in w and "Gone_Dress" in w for w in summary["warnings"])


@pytest.mark.parametrize("source", ["official", "check"])
def test_official_sources_need_the_annotation_files(tmp_path, source):
    save_jpeg(tmp_path / "img" / "A_Tee" / "1.jpg")
    with pytest.raises(UsageError, match=f"--source {source} needs Anno/list_category_img.txt"):
        make_labels(tmp_path, source=source)


def add_unknown_folder(root):
    for i in range(3):
        save_jpeg(root / "img" / "Fancy_Tshirt" / f"{i}.jpg")


def test_unknown_labels_keep_warns_with_count_and_folder(tmp_path):
    root = deepfashion_tree(tmp_path / "df", partition=False)
    add_unknown_folder(root)
    table, summary = make_labels(root)
    assert (table["label"] == "Tshirt").sum() == 3
    assert table.loc[table["label"] == "Tshirt", "category_type"].tolist() == [""] * 3
    warning = [w for w in summary["warnings"] if w.startswith("unknown label")]
    assert warning == ["unknown label 'Tshirt' (3 images, e.g. img/Fancy_Tshirt) is not in "
                       "Anno/list_category_cloth.txt: kept (--unknown keep)"]


def test_unknown_labels_drop_and_error(tmp_path):
    root = deepfashion_tree(tmp_path / "df", partition=False)
    add_unknown_folder(root)
    table, summary = make_labels(root, unknown="drop")
    assert "Tshirt" not in set(table["label"]) and summary["dropped"]["unknown_label"] == 3
    with pytest.raises(UsageError, match=r"labels not in Anno/list_category_cloth.txt: 'Tshirt' \(3 images"):
        make_labels(root, unknown="error")


def test_without_official_list_any_label_is_fine_and_builtin_types_apply(tmp_path):
    save_jpeg(tmp_path / "A_Fancy_Tshirt" / "1.jpg")
    save_jpeg(tmp_path / "Plain_Jeans" / "1.jpg")
    table, summary = make_labels(tmp_path, unknown="error", split="none")
    assert rows(table, "label", "category_type") == [("Tshirt", ""), ("Jeans", "lower")]
    assert summary["warnings"] == []


def image_kinds_tree(root):
    """Good images of several kinds, and a truncated and an empty JPEG, in nested product folders."""
    good = root / "img" / "Women" / "Soft_Knit_Tee"
    save_jpeg(good / "rgb.jpg")
    save_jpeg(good / "gray.jpg", mode="L")
    save_jpeg(good / "UPPER.JPG")
    Image.new("RGBA", (20, 20), (0, 0, 0, 0)).save(good / "alpha.png")
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buffer, "JPEG")
    (good / "truncated.jpg").write_bytes(buffer.getvalue()[:400])
    (good / "empty.jpg").write_bytes(b"")
    return root


def test_verify_drops_undecodable_files_with_reasons(tmp_path):
    root = image_kinds_tree(tmp_path)
    table, _ = make_labels(root, split="none")
    assert len(table) == 6  # without --verify every image-named file is listed
    table, summary = make_labels(root, split="none", verify=True)
    assert sorted(os.path.basename(p) for p in table["path"]) == ["UPPER.JPG", "alpha.png", "gray.jpg", "rgb.jpg"]
    assert set(table["group"]) == {"img/Women/Soft_Knit_Tee"} and set(table["label"]) == {"Tee"}
    dropped = {os.path.basename(d["path"]): d["reason"] for d in summary["dropped"]["undecodable"]}
    assert set(dropped) == {"truncated.jpg", "empty.jpg"}
    assert "truncated" in dropped["truncated.jpg"].lower()
    assert sum("cannot be decoded" in w for w in summary["warnings"]) == 2


def test_min_images_drops_small_labels_naming_them(tmp_path):
    for folder, count in [("A_Tee", 5), ("B_Dress", 2), ("C_Skirt", 1)]:
        for i in range(count):
            save_jpeg(tmp_path / folder / f"{i}.jpg")
    table, summary = make_labels(tmp_path, min_images=2, split="none")
    assert set(table["label"]) == {"Tee", "Dress"}
    assert summary["dropped"]["below_min_images"] == {"Skirt": 1}
    assert "dropped 1 label(s) with fewer than 2 images (--min-images): Skirt (1)" in summary["warnings"]
    with pytest.raises(UsageError, match="no images of .* are left after --min-images 9"):
        make_labels(tmp_path, min_images=9)


def test_class_per_folder_tree_splits_by_folders_and_validation_is_val(tmp_path):
    counts = {("train", "t-shirt"): 3, ("train", "dress"): 2, ("validation", "t-shirt"): 1,
              ("validation", "dress"): 1, ("test", "t-shirt"): 2}
    for (split, label), count in counts.items():
        for i in range(count):
            save_jpeg(tmp_path / split / label / f"{i}.jpg")
    table, summary = make_labels(tmp_path)
    assert summary["split"] == "folders"
    got = table.groupby(["split", "label"]).size().to_dict()
    assert got == {({"validation": "val"}.get(s, s), label): n for (s, label), n in counts.items()}
    assert set(table["group"]) == {f"{s}/{label}" for s, label in counts}
    assert summary["warnings"] == ["label 'dress' has no images in test: its 3 image(s) in 2 group(s) went to "
                                   "train 2, val 1"]
    # asked for explicitly on a tree that is not split on disk: a usage error
    with pytest.raises(UsageError, match="--split folders needs every image in a class folder"):
        make_labels(tmp_path / "train", split="folders")


def test_group_split_is_default_without_folders_or_partition_and_reports_small_labels(tmp_path):
    for label, groups in [("Tee", 10), ("Dress", 2), ("Skirt", 1)]:
        for g in range(groups):
            for i in range(3):
                save_jpeg(tmp_path / "img" / f"P{g}_{label}" / f"{i}.jpg", size=(8, 8))
    table, summary = make_labels(tmp_path, seed=3)
    assert summary["split"] == "group"
    assert (table.groupby("group")["split"].nunique() == 1).all()
    assert set(table.loc[table["label"] == "Tee", "split"]) == {"train", "val", "test"}
    assert sorted(w for w in summary["warnings"]) == [
        "label 'Dress' has no images in val: its 6 image(s) in 2 group(s) went to train 3, test 3",
        "label 'Skirt' has no images in val or test: its 3 image(s) in 1 group(s) went to train 3"]
    again, _ = make_labels(tmp_path, seed=3)
    assert again.equals(table)


def test_output_is_byte_identical_for_the_same_tree_and_options(tmp_path):
    root = deepfashion_tree(tmp_path / "df", partition=False)
    texts = []
    for _ in range(2):
        stream = io.StringIO()
        stream_csv(make_labels(root, source="check", seed=1)[0], stream)
        texts.append(stream.getvalue())
    assert texts[0] == texts[1] and texts[0].startswith("path,label,group,split,official_label,category_type\n")


def test_relative_root_gives_paths_that_resolve_from_the_working_folder(tmp_path, monkeypatch):
    save_jpeg(tmp_path / "data" / "img" / "A_Tee" / "x.jpg")
    monkeypatch.chdir(tmp_path)
    table, _ = make_labels("data", split="none")
    assert table["path"].tolist() == ["data/img/A_Tee/x.jpg"]


@pytest.mark.parametrize("options, message", [
    ({"val_frac": 0.6, "test_frac": 0.5}, "--val-frac 0.6 and --test-frac 0.5 must each be in [0, 1)"),
    ({"val_frac": -0.1}, "must each be in [0, 1)"),
    ({"test_frac": 1.0}, "must each be in [0, 1)"),
    ({"seed": -1}, "--seed must be 0 or more"),
    ({"min_images": -2}, "--min-images must be 0 or more"),
    ({"split": "official"}, "--split official needs Eval/list_eval_partition.txt"),
])
def test_bad_options_are_usage_errors(tmp_path, options, message):
    save_jpeg(tmp_path / "A_Tee" / "x.jpg")
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        make_labels(tmp_path, **options)


def test_bad_roots_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        make_labels(tmp_path / "absent")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UsageError, match="is not a folder"):
        make_labels(tmp_path / "file.txt")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".hidden.jpg").write_bytes(b"")
    with pytest.raises(UsageError, match=r"holds no images \(.bmp .gif .jpeg .jpg .png .webp\): 1 other file"):
        make_labels(tmp_path)
