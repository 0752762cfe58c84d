"""audit-data on the generated sample with planted copies (exact, re-encoded, resized, 5% crop): recall of the
copies, no false pairs among the distinct images, the clean CSV, the files, the CLI's errors."""
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from cnn.audit.audit_data import audit_data
from cnn.cli import audit_data_main

KINDS = ("exact", "reencode", "resize", "crop")
PLANTED = 10  # originals copied per kind


def plant(source, target, kind):
    """Write a copy of `source` at `target` as `kind` makes it."""
    with Image.open(source) as image:
        image = image.convert("RGB")
    if kind == "exact":
        image.save(target.with_suffix(".png"))  # other bytes, the same pixels
        return target.with_suffix(".png")
    if kind == "resize":
        image = image.resize((image.width * 3 // 4, image.height * 3 // 4))
    if kind == "crop":
        dx, dy = image.width // 20, image.height // 20
        image = image.crop((dx, dy, image.width - dx, image.height - dy))
    image.save(target, quality=60 if kind == "reencode" else 90)
    return target


@pytest.fixture(scope="module")
def planted(sample_labels, tmp_path_factory):
    """The sample's labels CSV plus 40 planted copies, each in the test split under a group of its own."""
    folder = tmp_path_factory.mktemp("audit")
    (folder / "copies").mkdir()
    originals = sample_labels[sample_labels.split == "train"].iloc[::7].head(PLANTED * len(KINDS))
    rows, truth = [], {}
    for n, (kind, (_, row)) in enumerate(zip([k for k in KINDS for _ in range(PLANTED)], originals.iterrows())):
        copy = plant(row.path, folder / "copies" / f"{n}.jpg", kind)
        rows.append({**row.to_dict(), "path": str(copy), "split": "test", "group": f"copies/{n}"})
        truth[str(copy)] = row.path
    table = pd.concat([sample_labels, pd.DataFrame(rows)], ignore_index=True)
    table.to_csv(folder / "labels.csv", index=False)
    return folder, table, truth


@pytest.fixture(scope="module")
def audited(planted):
    folder, table, truth = planted
    figures = audit_data(folder / "labels.csv", out=folder / "audit", write_clean=folder / "clean.csv")
    return folder, table, truth, figures, pd.read_csv(folder / "audit" / "duplicates.csv")


def test_planted_copies_are_found_and_no_distinct_images_are_paired(audited):
    _, table, truth, figures, sets = audited
    set_of = dict(zip(sets.path, sets.set))
    found = [copy for copy, original in truth.items() if copy in set_of and set_of[copy] == set_of.get(original)]
    assert len(found) / len(truth) >= 0.95, sorted(set(truth) - set(found))
    originals = set(table.path) - set(truth)  # the sample's own images are all distinct
    for _, members in sets.groupby("set"):
        assert len(set(members.path) & originals) <= 1, members.path.tolist()
    assert figures["sets_across_splits"] >= 0.95 * len(truth) and figures["exact_sets"] >= PLANTED


def test_the_clean_csv_keeps_one_image_of_each_set_and_the_dataset_is_untouched(audited):
    folder, table, truth, figures, sets = audited
    clean = pd.read_csv(folder / "clean.csv")
    assert len(clean) == len(table) - figures["copies_to_drop_for_clean"]
    for _, members in sets.groupby("set"):
        assert len(set(members.path) & set(clean.path)) == 1
    assert not set(clean.path) & {c for c in truth if c in set(sets.path)}  # the test-split copies left
    assert len(pd.read_csv(folder / "labels.csv")) == len(table)


def test_the_audit_writes_its_files(audited):
    folder, _, _, figures, _ = audited
    assert json.loads((folder / "audit" / "audit.json").read_text())["images"] == figures["images"]
    assert Image.open(folder / "audit" / "duplicates.png").size[0] > 100
    assert (folder / "audit" / "odd_images.csv").is_file()


def test_odd_images_are_counted(tmp_path, sample_labels):
    images = tmp_path / "img"  # the audit writes beside the image folder, never in it
    images.mkdir()
    Image.new("RGB", (40, 40), (200, 10, 10)).save(images / "tiny.png")
    Image.new("RGB", (400, 100), (10, 10, 10)).save(images / "wide.png")
    Image.new("L", (120, 120), 128).save(images / "gray.png")
    (images / "broken.jpg").write_bytes(b"not an image")
    rows = [{"path": str(images / n), "label": "Tee", "split": "train", "group": n}
            for n in ("tiny.png", "wide.png", "gray.png", "broken.jpg")]
    pd.DataFrame(rows).to_csv(tmp_path / "odd.csv", index=False)
    figures = audit_data(tmp_path / "odd.csv", out=tmp_path / "out")
    # the gray PNG and the wide (10, 10, 10) RGB image hold grayscale pixels; all three plain ones are near-blank
    assert figures["odd_images"] == {"tiny": 1, "extreme_aspect": 1, "near_blank": 3, "grayscale": 2, "unreadable": 1}


def test_user_errors_are_one_line(tmp_path, capsys):
    assert audit_data_main([str(tmp_path / "none.csv")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "l.csv").write_text("path,label,split\n")
    assert audit_data_main([str(tmp_path / "l.csv"), "--write-clean", str(tmp_path / "l.csv")]) == 2


def test_an_attached_audit_joins_the_runs_report_page(audited, small_run, tmp_path, capsys):
    import shutil

    from cnn.cli import evaluate_main
    from common.hashing import sha256_file

    folder = audited[0]
    run = shutil.copytree(small_run[0], tmp_path / "run")
    assert json.loads((folder / "audit" / "audit.json").read_text())["labels_sha256"] == sha256_file(
        folder / "labels.csv")
    assert evaluate_main([str(run), "--audit", str(folder / "audit")]) == 0
    [record] = json.loads((run / "audits.json").read_text())
    assert record["kind"] == "audit-data" and record["figures"]["exact_sets"] == audited[3]["exact_sets"]
    page = (run / "report.html").read_text()
    # the run trained on the sample's CSV, the audit read the one with the planted copies
    assert "Audits of the data" in page and "another labels CSV than this run" in page
    assert page.count("data:image/png") >= 5  # curves, confusion, reliability, mistakes' heatmaps, duplicates.png
    capsys.readouterr()
    assert evaluate_main([str(run), "--audit", str(tmp_path)]) == 2
    assert "holds no audit.json or audit_labels.json" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "audit.json").write_text("[1, 2]")  # valid JSON, not an audit's record: refused before it is recorded
    assert evaluate_main([str(run), "--audit", str(bad)]) == 2
    assert "is not an audit-data record" in capsys.readouterr().err
    assert json.loads((run / "audits.json").read_text()) == [record]


def test_the_page_shows_what_was_recorded_and_survives_a_damaged_record(audited, small_run, tmp_path):
    import shutil

    from cnn.evaluation.audits import attach_audits
    from cnn.evaluation.html_report import write_html_report

    audit = shutil.copytree(audited[0] / "audit", tmp_path / "audit")
    run = shutil.copytree(small_run[0], tmp_path / "run")
    attach_audits(run, [audit])
    shown = write_html_report(run).read_text()
    (audit / "duplicates.png").write_bytes((run / "curves.png").read_bytes())  # a later rerun's picture
    write_html_report(run)
    page = (run / "report.html").read_text()
    assert page.count("data:image/png") == shown.count("data:image/png") - 1 and "picture changed" in page
    (run / "audits.json").write_text('{"not": "a list"}')
    assert "audits.json is damaged" in write_html_report(run).read_text()


@pytest.mark.parametrize("where, message", [
    (lambda f, t: ["-o", str(f / "labels.csv")], "-o .* is a file; give a folder"),
    (lambda f, t: ["-o", str(f / "labels.csv" / "sub")], "is a file, so nothing can be created under it"),
    (lambda f, t: ["--write-clean", str(f)], "--write-clean .* is a folder"),
    (lambda f, t: ["--write-clean", str(f / "labels.csv")], "is the labels CSV being audited"),
    (lambda f, t: ["--write-clean", t.path.iloc[0]], "in or above the image folder"),
    (lambda f, t: ["-o", str(Path(t.path.iloc[0]).parent / "audit")], "in or above the image"),
])
def test_outputs_that_are_not_theirs_are_refused_before_work(planted, where, message, capsys):
    """An existing file as -o, a path under a file, a folder as --write-clean, the audited CSV, an image of the
    dataset or a folder inside it: one line, exit 2, and nothing of the dataset changed."""
    folder, table, _ = planted
    before = {p: os.stat(p).st_mtime_ns for p in table.path.head(3)}
    capsys.readouterr()
    assert audit_data_main([str(folder / "labels.csv"), *where(folder, table)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err
    assert {p: os.stat(p).st_mtime_ns for p in before} == before


def test_a_rerun_that_finds_nothing_leaves_no_stale_picture(audited, tmp_path):
    """The raw -> clean -> audit again workflow: the second audit finds no set, so the first one's duplicates.png
    must not stay beside its files."""
    folder = audited[0]
    out = shutil.copytree(folder / "audit", tmp_path / "audit")  # the first audit's folder, left as it wrote it
    assert (out / "duplicates.png").is_file()
    figures = audit_data(folder / "clean.csv", out=out)
    assert figures["images_in_sets"] == 0
    assert not (out / "duplicates.png").exists()


def test_a_missing_image_is_not_met_with_an_option_audit_data_lacks(tmp_path, capsys):
    pd.DataFrame({"path": [str(tmp_path / "gone.jpg")], "label": ["Tee"], "split": ["train"]}).to_csv(
        tmp_path / "l.csv", index=False)
    assert audit_data_main([str(tmp_path / "l.csv"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "image files are missing" in err and "--skip-missing" not in err and "--labels" not in err


@pytest.mark.slow
def test_lightly_changed_copies_of_real_photos_are_found_and_real_photos_not_paired(clothing_small, tmp_path):
    """Copies of photos from outside clothing-dataset-small (exact, re-encoded, resized, cropped 3% a side then
    resized to 0.7 at quality 60), planted beside its val and test photos: recall >= 0.95, and no set among the
    dataset's own photos (benchmarks/audit_recall.py measures the whole dataset). Uneven crops (1-5% off each side)
    are planted too and reported, not held to the goal: their recall is 0.20 (docs/results/audit.md)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from audit_recall import labels_with_copies, measure

    (tmp_path / "copies").mkdir()
    table, truth = labels_with_copies(clothing_small, clothing_small.parent / "clothing-outside-dev", 10,
                                      tmp_path / "copies")
    table = table[(table.split != "train") | table.group.str.startswith("original/")]
    table.to_csv(tmp_path / "labels.csv", index=False)
    audit_data(tmp_path / "labels.csv", out=tmp_path / "audit")
    recall, own = measure(pd.read_csv(tmp_path / "audit" / "duplicates.csv"), truth)
    held = [r for kind, r in recall.items() if kind != "crop_uneven"]
    found = sum(r["found"] for r in held) / sum(r["planted"] for r in held)
    assert found >= 0.95, recall
    assert own == []
