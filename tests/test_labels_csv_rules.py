"""The labels CSV as every reader takes it: each image once, padding stripped, and any CSV either loads into the
rows a user expects or is refused in one line (a property-based test over generated CSVs)."""
import os
import string

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnn.cli import train_main
from cnn.data.labels_csv import read_labels
from common.errors import UsageError


def write(path, text, encoding="utf-8", newline="\n"):
    path.write_bytes(text.replace("\n", newline).encode(encoding, errors="replace"))
    return path


@pytest.mark.parametrize("second", ["a.jpg", "./a.jpg", "imgs/../a.jpg", ".//a.jpg"])
@pytest.mark.parametrize("split, label", [("test", "Dress"), ("train", "Tee"), ("train", "Dress")])
def test_an_image_listed_twice_is_refused_naming_both_lines(tmp_path, monkeypatch, second, split, label):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imgs").mkdir()
    csv = write(tmp_path / "l.csv", f"path,label,split\na.jpg,Dress,train\nb.jpg,Tee,val\n{second},{label},{split}\n")
    with pytest.raises(UsageError, match=r"1 row\(s\) name an image already listed \(line 4 repeats line 2"):
        read_labels(csv)


def test_a_duplicate_is_one_line_and_exit_2_from_train_cnn(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    csv = write(tmp_path / "l.csv", "path,label,split\na.jpg,Dress,train\nb.jpg,Tee,val\na.jpg,Dress,test\n")
    assert train_main(["--labels", str(csv)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "line 4 repeats line 2 (a.jpg: train/Dress then test/Dress)" in err[0]


def test_padded_labels_and_splits_are_the_same_class(tmp_path):
    csv = write(tmp_path / "l.csv", "path,label,split\na.jpg,Dress,train\nb.jpg, Dress ,train \nc.jpg,Tee\t,val\n")
    df = read_labels(csv)
    assert df["label"].tolist() == ["Dress", "Dress", "Tee"] and df["split"].tolist() == ["train", "train", "val"]


NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=8)
CELL = st.one_of(NAMES, st.just(""), st.just(" "), NAMES.map(lambda s: f" {s} "), st.just('"'), st.just("a,b"),
                 st.just("é"), st.just("../x.jpg"), st.just("\x00"))
SPLIT = st.sampled_from(["train", "val", "test", " train ", "TRAIN", "", "holdout"])


@st.composite
def valid_tables(draw):
    """Rows a user would write: distinct paths, non-empty labels, known splits (some padded)."""
    paths = draw(st.lists(NAMES, min_size=1, max_size=12, unique=True))
    labels = draw(st.lists(NAMES, min_size=len(paths), max_size=len(paths)))
    splits = draw(st.lists(st.sampled_from(["train", "val", "test", " val"]), min_size=len(paths), max_size=len(paths)))
    return pd.DataFrame({"path": [p + ".jpg" for p in paths], "label": labels, "split": splits})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=valid_tables(), newline=st.sampled_from(["\n", "\r\n"]), extra=st.booleans())
def test_a_valid_csv_loads_into_exactly_its_rows(tmp_path, table, newline, extra):
    text = table.assign(**({"note": "x"} if extra else {})).to_csv(index=False)
    df = read_labels(write(tmp_path / "v.csv", text, newline=newline))
    assert df["path"].tolist() == table["path"].tolist()
    assert df["label"].tolist() == table["label"].str.strip().tolist()
    assert df["split"].tolist() == table["split"].str.strip().tolist()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.lists(st.sampled_from(["path", "label", "split", "group", "x", ""]), max_size=5),
       rows=st.lists(st.lists(CELL | SPLIT, max_size=6), max_size=8),
       encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]), newline=st.sampled_from(["\n", "\r\n", "\r"]))
def test_any_csv_loads_or_is_refused_in_one_line(tmp_path, header, rows, encoding, newline):
    text = "\n".join([",".join(header)] + [",".join(r) for r in rows]) + "\n"
    path = write(tmp_path / "h.csv", text, encoding=encoding, newline=newline)
    try:
        df = read_labels(path)
    except UsageError as error:
        assert "\n" not in str(error).strip() and str(error)
        return
    assert {"path", "label", "split"} <= set(df.columns)
    assert (df["path"].str.strip() != "").all() and (df["label"].str.strip() != "").all()
    assert not pd.Series([os.path.realpath(p) for p in df["path"]]).duplicated().any()


def test_a_class_missing_from_val_is_refused_before_training():
    """Early stopping, the checkpoint and the temperature are chosen on val: a class it lacks is refused, as a class
    only in val or test is."""
    from cnn.data.labels_csv import check_training_splits

    df = pd.DataFrame({"path": list("abcde"), "label": ["x", "y", "x", "z", "z"],
                       "split": ["train", "train", "val", "train", "test"]})
    with pytest.raises(UsageError, match="y, z appear in 'train' but not in 'val'"):
        check_training_splits(df, "labels.csv")
