"""analyze-model end to end: inputs (default, file, run folder), formats, files written, bad input."""
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.cli import main

SMALL = ["--arch", "cnn", "--input-size", "64", "--classes", "5"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A train-cnn-shaped run folder holding the card's network at 64x64, 5 classes."""
    from cnn.models.architectures import build_cnn

    run_dir = tmp_path_factory.mktemp("run")
    build_cnn(5, input_shape=(64, 64, 3)).save(run_dir / "model.keras")
    return run_dir


def test_with_no_model_it_analyses_train_cnns_default_architecture(capsys):
    from cnn.models.architectures import DEFAULT_ARCH, build_model

    code, out, _ = run(capsys, "--flops")
    assert code == 0 and f"'{DEFAULT_ARCH}' architecture" in out
    assert f"{build_model(DEFAULT_ARCH, 46).count_params():,}" in out


def test_the_cards_model_table_shows_the_issue_figures(capsys):
    code, out, err = run(capsys, "--arch", "cnn")
    assert code == 0
    for figure in ("55,741,824", "288,000,000", "265,420,800", "5,299,200", "614,461,824", "5,392,494"):
        assert figure in out
    prose = " ".join(out.split())  # the notes under each table are wrapped for a terminal
    assert "22x22" in out and "global" in out and "Training step, estimate" in prose
    assert "pool3, the last layer with a spatial map, sees 22x22 pixels" in prose
    assert "1 multiply-add = 1 MAC = 2 FLOPs" in prose
    convention = out[out.index("Convention:"):out.index("Forward pass")].splitlines()
    assert len(convention) > 3 and max(map(len, convention)) <= 110


def test_json_holds_both_analyses(capsys):
    code, out, _ = run(capsys, *SMALL, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["input_shape"] == [64, 64, 3]
    # 64 -> conv 62 -> pool 31 -> conv 29 -> pool 14 -> conv 12 -> pool 6; dense 6*6*128 -> 5
    expected_macs = 62 * 62 * 32 * 27 + 29 * 29 * 64 * 288 + 12 * 12 * 128 * 576 + 6 * 6 * 128 * 5
    assert doc["flops"]["totals"]["macs"] == expected_macs
    fields = {row["layer"]: row["field"] for row in doc["receptive_field"]["layers"]}
    assert fields["pool3"] == [22, 22] and fields["predictions"] == "global"


def test_csv_prints_one_parseable_table_per_analysis(capsys):
    code, out, err = run(capsys, *SMALL, "--format", "csv")
    blocks = out.strip().split("\n\n")
    assert code == 0 and len(blocks) == 2
    flops = list(csv.DictReader(io.StringIO(blocks[0])))
    assert flops[-1]["layer"] == "total" and int(flops[-1]["params"]) > 0
    fields = list(csv.DictReader(io.StringIO(blocks[1])))
    assert next(row for row in fields if row["layer"] == "pool3")["field"] == "22x22"
    assert "Training step" in err  # the sentences go to stderr, leaving stdout pure CSV


def test_markdown_and_single_analysis(capsys):
    code, out, _ = run(capsys, *SMALL, "--receptive-field", "--format", "markdown", "--empirical")
    assert code == 0
    assert "### Receptive field per layer" in out and "| pool3" in out
    assert "FLOPs per layer" not in out
    assert "9 of 9 layers agree" in out


def test_tf_profiler_convention_column(capsys):
    code, out, _ = run(capsys, *SMALL, "--flops", "--convention", "tf-profiler", "--format", "json")
    doc = json.loads(out)
    assert doc["flops"]["totals"]["flops"] == doc["flops"]["totals"]["flops_tf_profiler"]
    assert doc["flops"]["totals"]["flops"] != doc["flops"]["totals"]["flops_standard"]


def test_run_folder_gets_the_files(capsys, saved_model):
    code, out, err = run(capsys, str(saved_model))
    assert code == 0
    names = ("analysis_flops.csv", "analysis_receptive_field.csv", "analysis.json")
    assert all((saved_model / name).is_file() for name in names)
    doc = json.loads((saved_model / "analysis.json").read_text())
    assert doc["source"] == str(saved_model / "model.keras")
    rows = list(csv.DictReader((saved_model / "analysis_flops.csv").open()))
    assert int(rows[-1]["macs"]) == doc["flops"]["totals"]["macs"]
    assert f"{doc['flops']['totals']['macs']:,}" in out


def test_model_file_and_out_dir(capsys, saved_model, tmp_path):
    code, _, _ = run(capsys, str(saved_model / "model.keras"), "--flops", "--out", str(tmp_path / "report"))
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["analysis.json", "analysis_flops.csv"]


def test_h5_file(capsys, tmp_path):
    import keras

    inputs = keras.Input((16, 16, 3))
    keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs)).save(tmp_path / "m.h5")
    code, out, _ = run(capsys, str(tmp_path / "m.h5"), "--format", "json")
    assert code == 0 and json.loads(out)["flops"]["totals"]["macs"] == 14 * 14 * 2 * 27


def test_unknown_layer_warns_and_counts_zero(capsys, tmp_path):
    import keras

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.UnitNormalization(name="up")(keras.layers.Conv2D(1, 3)(inputs))
    keras.Model(inputs, x).save(tmp_path / "up.keras")
    code, out, err = run(capsys, str(tmp_path / "up.keras"), "--format", "json")
    assert code == 0
    assert "warning: layer 'up' (UnitNormalization) is not a known type" in err
    assert json.loads(out)["flops"]["layers"][-1]["flops"] == 0


def _no_input_shape(path):
    import keras

    keras.Sequential([keras.layers.Dense(3)]).save(path)


def _free_input_size(path):
    import keras

    inputs = keras.Input((None, None, 3))
    keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs)).save(path)


def _two_inputs(path):
    import keras

    a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    keras.Model([a, b], keras.layers.Add()([a, b])).save(path)


@pytest.mark.parametrize("make, message", [
    (None, "no such file or folder"),
    (_two_inputs, "has 2 inputs; analysis handles single-input models"),
    (lambda p: p.write_text("not a model"), "not a loadable Keras model"),
    (_no_input_shape, "has no input shape"),
    (_free_input_size, "has no fixed input shape"),
])
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, make, message):
    path = tmp_path / "model.keras"
    if make:
        make(path)
    code, out, err = run(capsys, str(path))
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("analyze-model:")]
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0]


def test_run_folder_without_model(capsys, tmp_path):
    code, _, err = run(capsys, str(tmp_path))
    assert code == 2 and "no model.keras" in err


@pytest.mark.parametrize("argv", [["--flops", "--empirical"], ["x.keras", "--input-size", "128"],
                                  ["--input-size", "0"], ["--format", "xml"]])
def test_impossible_options_are_usage_errors(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


def test_console_entry_point_reports_without_traceback(tmp_path):
    missing = tmp_path / "missing.keras"
    result = subprocess.run([sys.executable, "-m", "analysis", str(missing)], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 2
    assert f"analyze-model: error: {missing}: no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr
