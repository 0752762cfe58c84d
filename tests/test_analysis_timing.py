"""Measured time per layer: correctness only (every layer timed, shares, GFLOP/s from flops.py, files); never a
speed, which depends on the machine and its load."""
import json

import pytest

from common.tfenv import quiet_tensorflow

quiet_tensorflow()
import keras  # noqa: E402
from keras import layers as L  # noqa: E402

from analysis.cli import main  # noqa: E402
from analysis.flops import model_costs  # noqa: E402
from analysis.graph import walk  # noqa: E402
from analysis.tables import timing_table  # noqa: E402
from analysis.timing import TimingOptions, matmul_peak, measure_times  # noqa: E402


def timed(model, **options):
    options = TimingOptions(**{"batch_size": 2, "repeats": 2, **options})
    nodes = walk(model)
    costs = model_costs(nodes)
    return nodes, costs, timing_table(nodes, costs, measure_times(model, nodes, options), options)


def branchy():
    """A merge, an op node with a constant (`x * 0.5`) and a shared layer called twice."""
    inputs = keras.Input((12, 12, 3))
    shared = L.Conv2D(3, 3, padding="same", name="shared")
    x = shared(shared(inputs))
    x = L.Add(name="add")([x, inputs * 0.5])
    return keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(x)))


@pytest.mark.parametrize("training_step", [False, True])
def test_every_layer_is_timed_and_figures_follow_from_the_times(training_step):
    from cnn.models.architectures import build_cnn

    nodes, costs, table = timed(build_cnn(5, (48, 48, 3)), training_step=training_step)
    assert [row["layer"] for row in table.rows] == [node.name for node in nodes[1:]]
    assert all(row["time_s"] > 0 for row in table.rows)
    assert sum(row["share"] for row in table.rows) == pytest.approx(1.0, abs=1e-12)
    factor = 2 * (3 if training_step else 1)  # batch 2; a training step counts 3 x forward
    for row, cost in zip(table.rows, costs[1:]):
        assert row["flops"] == cost.flops * factor
        assert row["gflops_per_s"] == row["flops"] / row["time_s"] / 1e9
        assert row["of_peak"] == pytest.approx(row["gflops_per_s"] / table.totals["matmul_peak_gflops_per_s"])
    totals = table.totals
    assert totals["matmul_peak_dtype"] == "float32"
    assert totals["layers_s"] == sum(row["time_s"] for row in table.rows)
    assert totals["whole_model_s"] > 0 and totals["layers_over_whole"] == totals["layers_s"] / totals["whole_model_s"]
    assert totals["matmul_peak_gflops_per_s"] > 0


def test_merges_op_nodes_and_shared_layers_are_called_with_their_own_inputs():
    _, _, table = timed(branchy())
    names = [row["layer"] for row in table.rows]
    assert {"shared", "shared#2", "add"} <= set(names) and all(row["time_s"] > 0 for row in table.rows)


def test_layers_of_nested_models_are_timed_one_by_one():
    block = keras.Sequential([keras.Input((12, 12, 2)), L.Conv2D(2, 3, padding="same", name="conv"),
                              L.ReLU(name="relu")], name="block")
    inputs = keras.Input((8, 8, 2))
    _, _, table = timed(keras.Model(inputs, L.Flatten(name="flat")(block(block(L.ZeroPadding2D(2)(inputs))))))
    assert [row["layer"] for row in table.rows][1:] == ["block/conv", "block/relu", "block#2/conv", "block#2/relu",
                                                        "flat"]
    assert all(row["time_s"] > 0 for row in table.rows)


def test_matmul_peak_is_a_rate_in_the_precision_asked():
    tf = quiet_tensorflow()
    assert matmul_peak(tf) > 0 and matmul_peak(tf, "bfloat16") > 0


def test_the_peak_is_in_the_models_compute_precision():
    from analysis.timing import compute_dtype
    from cnn.models.architectures import build_cnn
    from cnn.training.precision import precision_policy

    with precision_policy("mixed_bfloat16"):
        mixed = build_cnn(5, (48, 48, 3))
    assert compute_dtype(mixed) == "bfloat16" and compute_dtype(build_cnn(5, (48, 48, 3))) == "float32"


def test_command_writes_the_timing_table(capsys, tmp_path):
    code = main(["--timing", "--arch", "cnn", "--batch-size", "2", "--repeats", "1", "--input-size", "32",
                 "--classes", "3",
                 "--out", str(tmp_path), "--format", "json"])
    out, _ = capsys.readouterr()
    assert code == 0
    doc = json.loads(out)
    assert doc["timing"]["totals"]["batch_size"] == 2 and len(doc["timing"]["layers"]) == 9
    assert json.loads((tmp_path / "analysis.json").read_text())["timing"]["totals"] == doc["timing"]["totals"]
    assert (tmp_path / "analysis_timing.csv").read_text().startswith("layer,type,output_shape,time_s")


@pytest.mark.parametrize("argv", [["--repeats", "3"], ["--training-step"], ["--timing", "--batch-size", "0"]])
def test_timing_options_need_timing(argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
