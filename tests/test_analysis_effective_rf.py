"""Effective receptive fields: the gradient map against numpy's repeated convolution, never outside the
theoretical field, growing with depth; the inputs it averages over; the command's table, files and figure."""
import json

import numpy as np
import pytest

from common.tfenv import quiet_tensorflow

quiet_tensorflow()
import keras  # noqa: E402
from keras import layers as L  # noqa: E402

from analysis.cli import main  # noqa: E402
from analysis.effective_rf import effective_fields, spatial_nodes  # noqa: E402
from analysis.erf_inputs import csv_images, random_pixels, random_weights  # noqa: E402
from analysis.graph import walk  # noqa: E402
from analysis.receptive import receptive_fields, unit_bounds  # noqa: E402
from common.errors import UsageError  # noqa: E402


def measure(model, n=2, names=None, inputs=None):
    nodes = walk(model)
    fields = receptive_fields(nodes)
    if inputs is None:
        inputs = random_pixels(nodes[0].output_shape, n, 0)
    return nodes, fields, effective_fields(model, nodes, fields, spatial_nodes(nodes, fields, names), inputs)


def uniform_stack(size, layers, dilation=1, padding="valid", channels=2):
    """`layers` 3x3 convolutions with every weight 1, no bias, no activation: a linear, positive model."""
    inputs = keras.Input((size, size, channels))
    x = inputs
    for _ in range(layers):
        x = L.Conv2D(channels, 3, dilation_rate=dilation, padding=padding, use_bias=False,
                     kernel_initializer="ones")(x)
    return keras.Model(inputs, x)


def repeated_convolution(size, centre, layers, dilation=1):
    """A delta at `centre` convolved `layers` times with a (dilated) 3x3 kernel of ones, in numpy."""
    profile = np.zeros((size, size))
    profile[centre, centre] = 1.0
    kernel = np.zeros((2 * dilation + 1,) * 2)
    kernel[::dilation, ::dilation] = 1.0
    k = len(kernel) // 2
    for _ in range(layers):
        padded = np.pad(profile, k)
        profile = sum(kernel[i, j] * padded[i:i + size, j:j + size] for i in range(len(kernel))
                      for j in range(len(kernel)))
    return profile


@pytest.mark.parametrize("size, layers, dilation, padding, centre", [
    (15, 3, 1, "valid", 4 + 3),  # 9x9 output, centre unit 4 sees pixels 4..10, centred on 7
    (17, 2, 2, "same", 8),       # 'same': the centre unit 8 is centred on pixel 8
])
def test_linear_stack_is_the_repeated_convolution(size, layers, dilation, padding, centre):
    nodes, _, measured = measure(uniform_stack(size, layers, dilation, padding))
    gradient = measured[-1].gradient
    expected = repeated_convolution(size, centre, layers, dilation)
    np.testing.assert_allclose(gradient / gradient.sum(), expected / expected.sum(), rtol=1e-6, atol=1e-12)
    assert measured[-1].centre == (centre, centre)


def test_nested_model_layers_are_measured_like_flat_ones():
    flat = uniform_stack(15, 3)
    inputs = keras.Input((15, 15, 2))
    inner = keras.Sequential([keras.Input((13, 13, 2))] + [L.Conv2D(2, 3, use_bias=False, kernel_initializer="ones")
                                                           for _ in range(2)], name="inner")
    first = L.Conv2D(2, 3, use_bias=False, kernel_initializer="ones")
    nodes, _, nested = measure(keras.Model(inputs, inner(first(inputs))))
    assert [nodes[erf.index].name.split("/")[0] for erf in nested] == [first.name, "inner", "inner"]
    for a, b in zip(nested, measure(flat)[2]):
        np.testing.assert_allclose(a.gradient, b.gradient, rtol=1e-6)


def test_linear_stack_radii_by_hand():
    # per axis the profile is [1, 3, 6, 7, 6, 3, 1] (sum 27): squares of half-side d+1/2 hold 7^2 = 49,
    # 19^2 = 361, 25^2 = 625 and 27^2 = 729 of 729: 50% needs d = 2 (361/729 = 49.5%), 90% needs d = 3
    _, _, measured = measure(uniform_stack(15, 3))
    last = measured[-1]
    assert (last.radii[0.5], last.radii[0.9], last.half_size) == (2.5, 3.5, 3.5)
    assert last.outside == 0.0


@pytest.fixture(scope="module")
def card_erf():
    """The card's network at 96x96 with random weights, averaged over 16 random inputs."""
    from cnn.models.architectures import build_cnn

    return measure(random_weights(build_cnn(5, (96, 96, 3)), 0), n=16)


def test_gradient_never_leaves_the_theoretical_field(card_erf):
    nodes, fields, measured = card_erf
    assert [nodes[erf.index].name for erf in measured] == ["conv1", "pool1", "conv2", "pool2", "conv3", "pool3"]
    for erf in measured:
        inside = np.zeros(erf.gradient.shape, dtype=bool)
        inside[tuple(slice(low, high + 1) for low, high in unit_bounds(fields[erf.index], erf.unit))] = True
        assert np.all(erf.gradient[~inside] == 0) and erf.gradient[inside].sum() > 0
        assert erf.outside == 0.0


def test_radii_grow_with_depth_within_the_field(card_erf):
    _, _, measured = card_erf
    for share in (0.5, 0.9):
        radii = [erf.radii[share] for erf in measured]
        assert radii == sorted(radii) and radii[-1] > radii[0]
    assert all(erf.radii[0.5] <= erf.radii[0.9] <= erf.half_size for erf in measured)
    assert measured[-1].half_size == 22 / 2


def test_layers_are_chosen_by_name_or_rejected():
    model = uniform_stack(15, 3)
    nodes, _, default = measure(model)
    names = [node.name for node in nodes[1:]]
    assert [nodes[erf.index].name for erf in default] == names  # every convolution changes the field
    _, _, picked = measure(model, names=(names[1],))
    assert [nodes[erf.index].name for erf in picked] == [names[1]]
    with pytest.raises(UsageError, match="no spatial layer named 'nope'"):
        measure(model, names=("nope",))


def test_csv_images_are_resized_pixels(tmp_path):
    from PIL import Image

    colours = [(200, 10, 30), (0, 255, 128)]
    paths = []
    for i, colour in enumerate(colours):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (40, 30), colour).save(paths[-1])
    (tmp_path / "labels.csv").write_text("path,label,split\n" + "".join(f"{p},a,train\n" for p in paths))
    images = csv_images(tmp_path / "labels.csv", (16, 12, 3), 64, 0)
    assert images.shape == (2, 16, 12, 3) and images.dtype == np.float32
    assert sorted(tuple(image[0, 0]) for image in images) == sorted(colours)  # a solid colour stays itself
    assert all(np.all(image == image[0, 0]) for image in images)
    (tmp_path / "bad.csv").write_text("file\nx.png\n")
    with pytest.raises(UsageError, match="no 'path' column"):
        csv_images(tmp_path / "bad.csv", (16, 12, 3), 4, 0)
    (tmp_path / "missing.csv").write_text(f"path\n{tmp_path / 'none.png'}\n")
    with pytest.raises(UsageError, match="cannot read image"):
        csv_images(tmp_path / "missing.csv", (16, 12, 3), 4, 0)


def test_command_prints_and_writes_table_and_figure(capsys, tmp_path):
    code = main(["--effective-rf", "--arch", "cnn", "--input-size", "64", "--classes", "5", "--n", "2",
                 "--plot", str(tmp_path / "erf.png"), "--out", str(tmp_path), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0
    doc = json.loads(out)
    rows = doc["effective_rf"]["layers"]
    assert [row["layer"] for row in rows][-1] == "pool3" and rows[-1]["field"] == [22, 22]
    assert all(row["ratio_90"] == row["radius_90"] / row["half_size"] for row in rows)
    assert json.loads((tmp_path / "analysis.json").read_text())["effective_rf"]["layers"] == rows
    assert (tmp_path / "analysis_effective_rf.csv").read_text().startswith("layer,type,output_shape,field")
    assert (tmp_path / "erf.png").read_bytes()[:4] == b"\x89PNG"
    assert "flops" not in doc  # only what was asked


@pytest.mark.parametrize("argv", [["--n", "4"], ["--plot", "x.png"], ["--effective-rf", "--n", "0"],
                                  ["--layers", "conv1"], ["--effective-rf", "--plot", "erf.txt"]])
def test_erf_options_need_effective_rf(argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


def test_command_averages_over_csv_images_with_the_models_weights(capsys, tmp_path):
    from PIL import Image

    rows = []
    for i in range(3):
        Image.new("RGB", (50, 40), (60 * i, 100, 200)).save(tmp_path / f"{i}.png")
        rows.append(f"{tmp_path / f'{i}.png'},a,train\n")
    (tmp_path / "labels.csv").write_text("path,label,split\n" + "".join(rows))
    code = main(["--effective-rf", "--images", str(tmp_path / "labels.csv"), "--layers", "conv1,pool3",
                 "--arch", "cnn", "--input-size", "48", "--classes", "3", "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 0
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == ["conv1", "pool3"]
    assert f"averaged over 3 images from {tmp_path / 'labels.csv'} (the model's own weights)" in " ".join(err.split())
