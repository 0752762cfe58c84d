"""--hierarchy's mapping: from category_type or a label,parent CSV, its one-line errors, and each sub-model's rows."""
import os

import pandas as pd
import pytest

from cnn.cli import train_main
from cnn.data.hierarchy import mapping_differences, mapping_record, resolve_mapping, sub_frames, sub_models
from cnn.training.options import TrainOptions
from cnn.runfolder import latest_interrupted_run
from common.errors import UsageError
from conftest import tiny_argv

# DeepFashion's body type of the sample's six categories (Anno/list_category_cloth.txt: 1 upper, 2 lower, 3 full).
SAMPLE_TYPES = {"Dress": "full", "Hoodie": "upper", "Jeans": "lower", "Shorts": "lower", "Skirt": "lower",
                "Tee": "upper"}


@pytest.fixture(scope="module")
def table(sample_labels):
    """The sample's labels table as make-labels writes it (with its category_type column)."""
    return sample_labels


def write(path, text):
    path.write_text(text)
    return str(path)


def test_category_type_column_gives_the_body_type_of_each_label(table):
    assert resolve_mapping(table, "category_type", "labels.csv") == SAMPLE_TYPES


def test_a_mapping_csv_gives_any_hierarchy(table, tmp_path):
    mapping = write(tmp_path / "m.csv", "label,parent\nTee,tops\nHoodie,tops\nJeans,legs\nShorts,legs\n"
                                        "Skirt,legs\nDress,dresses\nCoat,tops\n")  # Coat: not in the data, ignored
    resolved = resolve_mapping(table, mapping, "labels.csv")
    assert resolved == {"Dress": "dresses", "Hoodie": "tops", "Jeans": "legs", "Shorts": "legs", "Skirt": "legs",
                        "Tee": "tops"}
    assert sub_models(resolved) == [("coarse", None), ("legs", "legs"), ("tops", "tops")]  # dresses: one label


@pytest.mark.parametrize("text, message", [
    ("name,parent\nTee,tops\n", "the header must be label,parent, not name,parent"),
    ("label,parent,extra\nTee,tops,x\n", "the header must be label,parent"),
    ("label,parent\nTee,tops\nHoodie,tops\n", "4 label(s) of labels.csv have no parent: Dress, Jeans, Shorts, Skirt"),
    ("label,parent\nTee,tops\nTee,legs\n", "label(s) with more than one parent: Tee"),
    ("label,parent\nTee,\n", "1 row(s) with an empty label or parent (line(s) 2)"),
    ("label,parent\n" + "".join(f"{k},all\n" for k in SAMPLE_TYPES), "every label has the same parent (all)"),
    ("label,parent\n" + "".join(f"{k},{'coarse' if v == 'full' else v}\n" for k, v in SAMPLE_TYPES.items()),
     "parent name(s) 'coarse' cannot name a sub-folder"),
    ("label,parent\n" + "".join(f"{k},{v}/x\n" for k, v in SAMPLE_TYPES.items()), "cannot name a sub-folder"),
])
def test_a_bad_mapping_is_one_line_naming_the_problem(table, tmp_path, text, message):
    path = write(tmp_path / "m.csv", text)
    with pytest.raises(UsageError) as error:
        resolve_mapping(table, path, "labels.csv")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_category_type_missing_or_empty_is_refused(table):
    with pytest.raises(UsageError, match="labels.csv has no category_type column"):
        resolve_mapping(table.drop(columns="category_type"), "category_type", "labels.csv")
    untyped = table.assign(category_type=table["category_type"].where(table["label"] != "Tee", ""))
    with pytest.raises(UsageError, match="1 label\\(s\\) of labels.csv have no parent: Tee"):
        resolve_mapping(untyped, "category_type", "labels.csv")


def test_each_sub_model_gets_the_right_rows(table, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = table.assign(path=[os.path.relpath(p) for p in table["path"]])
    frames = sub_frames(relative, SAMPLE_TYPES, "category_type", "labels.csv")
    assert list(frames) == ["coarse", "lower", "upper"]  # full has one label (Dress): no model
    coarse = frames["coarse"]
    assert len(coarse) == len(table) and coarse["label"].tolist() == [SAMPLE_TYPES[k] for k in table["label"]]
    assert coarse["path"].tolist() == [os.path.normpath(tmp_path / p) for p in relative["path"]]  # absolute
    for parent, labels in (("lower", {"Jeans", "Shorts", "Skirt"}), ("upper", {"Hoodie", "Tee"})):
        rows = table[table["label"].isin(labels)]
        assert sorted(frames[parent]["path"]) == sorted(rows["path"]) and set(frames[parent]["label"]) == labels
        assert frames[parent]["split"].tolist() == rows["split"].tolist()


def test_a_parent_whose_labels_lack_a_split_is_refused_before_training(table):
    no_val = table[~((table["label"].isin(["Hoodie", "Tee"])) & (table["split"] == "val"))]
    # The coarse model's own check sees it first: parent 'upper' has no val rows, so its class is missing there.
    with pytest.raises(UsageError, match="the coarse model \\(labels.csv\\): class\\(es\\) upper appear in 'train' but "
                                         "not in 'val'"):
        sub_frames(no_val, SAMPLE_TYPES, "category_type", "labels.csv")


def test_option_value_is_checked_and_a_changed_mapping_file_is_noticed(tmp_path):
    with pytest.raises(UsageError, match="--hierarchy nope.csv: must be none, category_type"):
        TrainOptions(hierarchy="nope.csv").check_paths()
    mapping = write(tmp_path / "m.csv", "label,parent\nTee,tops\n")
    config = {"hierarchy": mapping_record(mapping)}
    options = TrainOptions(hierarchy=mapping)
    assert mapping_differences(config, options) == []
    write(tmp_path / "m.csv", "label,parent\nTee,legs\n")
    assert mapping_differences(config, options) == [f"the mapping CSV {mapping} (its sha256 differs from the one "
                                                    f"recorded)"]
    assert mapping_differences({"hierarchy": mapping_record("category_type")}, TrainOptions()) == []


def test_train_cnn_with_a_bad_mapping_is_one_line_and_writes_nothing(table, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    table.to_csv("labels.csv", index=False)
    write(tmp_path / "m.csv", "label;parent\nTee;tops\n")
    assert train_main(["--hierarchy", "m.csv", *tiny_argv(), "--out", "runs/h"]) == 2
    assert capsys.readouterr().err.strip() == ("train-cnn: error: --hierarchy m.csv: the header must be label,parent, "
                                               "not label;parent; one row per label naming its parent")
    pd.DataFrame({"label": ["Tee"], "parent": ["tops"]}).to_csv("m.csv", index=False)
    assert train_main(["--hierarchy", "m.csv", *tiny_argv(), "--out", "runs/h"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("train-cnn: error: --hierarchy m.csv: 5 label(s) of labels.csv have no parent: Dress, "
                          "Hoodie, Jeans, Shorts, Skirt") and "\n" not in err
    assert not (tmp_path / "runs").exists()


def test_resume_finds_the_newest_interrupted_run_hierarchical_ones_included(tmp_path):
    runs = tmp_path / "runs"
    for backup in ("flat/backup", "rep/seed-0/backup", "hier/coarse/backup"):
        (runs / backup).mkdir(parents=True)
        os.utime(runs / backup, (1, 1))
    (runs / "hier" / "config.json").write_text("{}")  # the top-level record around its sub-models
    os.utime(runs / "hier" / "coarse" / "backup", (2, 2))
    assert latest_interrupted_run(runs) == runs / "hier"
    os.utime(runs / "flat" / "backup", (3, 3))
    assert latest_interrupted_run(runs) == runs / "flat"
    os.utime(runs / "rep" / "seed-0" / "backup", (4, 4))  # a --repeats folder has no record of its own: skipped
    assert latest_interrupted_run(runs) == runs / "flat"
