"""The loader without TensorFlow (cnn.data.numpy_loader): the tf.data loader's pixels, crops and flips from Pillow and
numpy, checked against TensorFlow itself; and train-cnn, evaluate-cnn and predict-cnn on the JAX backend in a process
where TensorFlow cannot be imported."""
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import RUN_FILES, start_cnn, tiny_argv

# Run first in the child: Keras on JAX, and every import finder blind to tensorflow, so that importing it fails and
# importlib finds no spec for it, as where it is not installed.
NO_TENSORFLOW = """
import os, sys
os.environ['KERAS_BACKEND'] = 'jax'
class Blind:
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] != 'tensorflow':
            return self.finder.find_spec(name, path, target)
    def __getattr__(self, name):
        return getattr(self.finder, name)
sys.meta_path[:] = [Blind(finder) for finder in sys.meta_path]
"""


def batches(paths, labels=None, **kw):
    """The numpy loader's batches of `paths` (3 classes, 32 px, batches of 4 unless `kw` says otherwise: Batching's
    fields), and their skip log."""
    from cnn.data.batching import Batching
    from cnn.data.image_batches import image_batches
    from cnn.data.loader import SkipLog

    skipped = SkipLog()
    size, depth = kw.pop("size", (32, 32)), kw.pop("depth", 3)
    return image_batches(paths, labels, depth, size, skipped, Batching(**{"batch_size": 4, **kw})), skipped


@pytest.mark.parametrize("source, size", [((37, 53), (32, 32)), ((20, 30), (64, 48)), ((711, 400), (256, 256))])
def test_resize_samples_as_tensorflow_does(source, size):
    import tensorflow as tf

    from cnn.data.numpy_loader import resize

    image = np.random.default_rng(0).integers(0, 256, (*source, 3), dtype=np.uint8)
    expected = tf.round(tf.image.resize(image, size, method="bilinear")).numpy()
    assert np.abs(resize(Image.fromarray(image), size) - expected).max() <= 1


def test_batches_hold_the_tf_data_loaders_pixels_and_labels(sample_labels):
    import tensorflow as tf

    from cnn.data.batching import Batching
    from cnn.data.loader import flow_from_dataframe

    rows = sample_labels[sample_labels.split == "train"].head(10)
    classes = sorted(set(sample_labels.label))
    expected = list(flow_from_dataframe(rows, classes=classes, target_size=(32, 32),
                                        batching=Batching(batch_size=4)).dataset)
    ours, skipped = batches(rows.path.tolist(), [classes.index(v) for v in rows.label], depth=len(classes))
    assert len(ours) == len(expected) == 3 and skipped.count == 0
    ours = [ours[i] for i in range(len(ours))]
    for (images, onehot), (tf_images, tf_onehot) in zip(ours, expected):
        assert images.dtype == np.float32 and np.array_equal(onehot, tf_onehot.numpy())
        # tf.io.decode_image takes libjpeg's fast integer DCT, Pillow its accurate one: about a level apart
        assert np.abs(images - tf_images.numpy()).mean() < 1.5
    # With the accurate DCT, TensorFlow's decode and resize give our pixels, up to rounding.
    for path, image in zip(rows.path, np.concatenate([images for images, _ in ours])):
        accurate = tf.io.decode_jpeg(tf.io.read_file(path), channels=3, dct_method="INTEGER_ACCURATE")
        resized = tf.round(tf.image.resize(accurate, (32, 32), method="bilinear")).numpy()
        assert np.abs(image - resized).max() <= 1


def test_crop_is_tensorflows_crop_and_resize_and_flip_is_the_mirror():
    import tensorflow as tf

    from cnn.data.numpy_loader import crop_and_flip

    images = np.random.default_rng(1).integers(0, 256, (6, 24, 24, 3), dtype=np.uint8)
    draws = np.random.default_rng(5).uniform(size=(6, 4))
    for image, draw in zip(images, draws):
        expected = image[:, ::-1] if draw[3] < 0.5 else image
        assert np.array_equal(crop_and_flip(image, {"flip": True}, draw), expected)
    side = 1 - draws[:, 0] * 0.4
    top, left = (1 - side) * draws[:, 1], (1 - side) * draws[:, 2]
    boxes = np.stack([top, left, top + side, left + side], axis=1)
    expected = tf.image.crop_and_resize(images.astype(np.float32), boxes, np.arange(6), (24, 24)).numpy()
    for image, draw, box in zip(images, draws, expected):
        cropped = crop_and_flip(image, {"crop": 0.4}, draw)
        assert np.abs(cropped - box).max() <= 1 and not np.array_equal(cropped, image)
        both = crop_and_flip(image, {"crop": 0.4, "flip": True}, draw)
        assert np.abs(both - (box[:, ::-1] if draw[3] < 0.5 else box)).max() <= 1


def test_shuffling_repeats_with_the_seed_and_changes_every_epoch(sample_labels):
    paths = sample_labels.path.head(12).tolist()
    first, _ = batches(paths, list(range(12)), depth=12, shuffle=True, seed=3, augment={"flip": True, "crop": 0.2})
    again, _ = batches(paths, list(range(12)), depth=12, shuffle=True, seed=3, augment={"flip": True, "crop": 0.2})
    epoch0 = [np.argmax(first[i][1], axis=1) for i in range(3)]
    assert [np.argmax(again[i][1], axis=1).tolist() for i in range(3)] == [e.tolist() for e in epoch0]
    assert np.array_equal(first[0][0], again[0][0])  # the same augmented pixels from the same seed
    assert sorted(np.concatenate(epoch0).tolist()) == list(range(12))  # every row once an epoch
    first.on_epoch_end()
    epoch1 = [np.argmax(first[i][1], axis=1).tolist() for i in range(3)]
    assert epoch1 != [e.tolist() for e in epoch0]
    endless = again.repeat()  # passes one after another, numbered on by the index alone
    assert endless.num_batches is None
    assert [np.argmax(endless[i][1], axis=1).tolist() for i in range(6)] == [e.tolist() for e in epoch0] + epoch1


def test_an_undecodable_file_is_skipped_and_logged(sample_labels, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    paths = [*sample_labels.path.head(3), str(broken)]
    loaded, skipped = batches(paths, [0, 1, 2, 0])
    images, onehot = loaded[0]
    assert images.shape == (3, 32, 32, 3) and onehot.shape == (3, 3) and skipped.paths == [str(broken)]


def test_what_needs_tensorflow_is_refused_in_one_line(sample_labels):
    from common.errors import UsageError

    with pytest.raises(UsageError, match="--augment rotation needs TensorFlow"):
        batches(sample_labels.path.head(2).tolist(), augment={"flip": True, "rotation": 0.1})
    with pytest.raises(UsageError, match="--mix mixup=0.2 needs TensorFlow"):
        batches(sample_labels.path.head(2).tolist(), mix="mixup=0.2")


@pytest.mark.slow  # 40-80 s: in make test-slow, to keep make test under 12 minutes
@pytest.mark.train
def test_train_evaluate_and_predict_without_tensorflow(labelled_folder):
    pytest.importorskip("jax", reason="the jax extra is not installed: pip install -e '.[jax]'")
    folder = labelled_folder("notf")
    commands = [["train", *tiny_argv(epochs=2, augment="flip,crop=0.2"), "--cache", "memory", "--out", "runs/a"],
                ["evaluate", "runs/a"], ["predict", "runs/a", pd.read_csv(folder / "labels.csv").path[0]]]
    for command in commands:
        process = start_cnn(command, folder, code=NO_TENSORFLOW)
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
    assert sorted(p.name for p in (folder / "runs" / "a").iterdir()) == RUN_FILES
    config = json.loads((folder / "runs" / "a" / "config.json").read_text())
    assert config["backend"] == "jax" and config["options"]["augment"] == "flip,crop=0.2"
    assert len(pd.read_csv(folder / "runs" / "a" / "history.csv")) == 2
    assert out.strip().splitlines()[-1].split()[0].endswith("img_00000001.jpg")  # the image's predictions
    with Image.open(folder / "runs" / "a" / "worst_errors.png") as picture:
        assert picture.width > 0
    process = start_cnn(["export", "runs/a", "--out", "exported"], folder, code=NO_TENSORFLOW)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 2 and err.strip().splitlines() == [
        "export-model: error: this needs TensorFlow, which is not installed (pip install tensorflow-cpu); train-cnn, "
        "evaluate-cnn and predict-cnn run without it on Keras's JAX backend (KERAS_BACKEND=jax, docs/train-cnn.md)"]
    assert not (folder / "exported").exists()
