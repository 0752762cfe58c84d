"""--mix: mixup's images are the stated blend and its labels sum to one; CutMix pastes a box and weighs the
labels by its area; both repeat with the seed; bad specs are one-line refusals."""
import numpy as np
import pytest

from common.tfenv import quiet_tensorflow

tf = quiet_tensorflow()

from cnn.data.mix import mix_batch, mix_batches, parse_mix  # noqa: E402
from cnn.training.options import TrainOptions  # noqa: E402
from common.errors import UsageError  # noqa: E402


def batch(n=6, size=8, classes=3):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    labels = np.eye(classes, dtype="float32")[rng.integers(0, classes, n)]
    return images, labels


def test_mixup_is_the_stated_blend_and_labels_sum_to_one():
    images, labels = batch()
    mixed, mixed_labels, lam, perm = [np.asarray(t) for t in mix_batch(images, labels, (3, 4), "mixup", 0.4)]
    assert 0 < lam < 1 and sorted(perm) == list(range(6))
    np.testing.assert_allclose(mixed, lam * images + (1 - lam) * images[perm], rtol=1e-5)
    np.testing.assert_allclose(mixed_labels, lam * labels + (1 - lam) * labels[perm], rtol=1e-6)
    np.testing.assert_allclose(mixed_labels.sum(axis=1), 1, rtol=1e-6)


def test_cutmix_pastes_a_box_and_weighs_labels_by_its_area():
    images, labels = batch(size=16)
    mixed, mixed_labels, lam, perm = [np.asarray(t) for t in mix_batch(images, labels, (5, 6), "cutmix", 1.0)]
    from_partner = np.all(np.isclose(mixed, images[perm]), axis=-1) & ~np.all(np.isclose(images, images[perm]),
                                                                               axis=-1)
    kept = np.all(np.isclose(mixed, images), axis=-1)
    assert (from_partner | kept).all()  # every pixel is the image's own or its partner's
    box = from_partner[0]
    rows, cols = np.flatnonzero(box.any(axis=1)), np.flatnonzero(box.any(axis=0))
    assert box[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()  # one rectangle
    assert lam == pytest.approx(1 - box.mean(), abs=1e-6)  # the labels' weight is the kept area
    np.testing.assert_allclose(mixed_labels, lam * labels + (1 - lam) * labels[perm], rtol=1e-6)


def test_p_leaves_some_batches_unmixed_and_the_seed_repeats_the_draws():
    images, labels = batch()
    lams = [float(mix_batch(images, labels, (0, s), "mixup", 0.4, probability=0.5)[2]) for s in range(40)]
    assert 5 < sum(lam == 1.0 for lam in lams) < 35
    ds = tf.data.Dataset.from_tensors((images, labels)).repeat(3)
    first = [np.asarray(x) for x, _ in mix_batches(ds, "mixup=0.4", seed=1)]
    again = [np.asarray(x) for x, _ in mix_batches(ds, "mixup=0.4", seed=1)]
    other = [np.asarray(x) for x, _ in mix_batches(ds, "mixup=0.4", seed=2)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


@pytest.mark.parametrize("text, expected", [("none", None), ("mixup=0.2", ("mixup", 0.2, 1.0)),
                                            ("cutmix=1,p=0.5", ("cutmix", 1.0, 0.5))])
def test_specs_parse(text, expected):
    assert parse_mix(text) == expected


@pytest.mark.parametrize("text", ["mixup", "mixup=0", "cutmix=1,p=2", "mixup=0.2,cutmix=1", "blend=0.3", "mixup=nan",
                                  "cutmix=inf", "mixup=0.2,p=nan"])
def test_bad_specs_are_refused_naming_the_option(text):
    with pytest.raises(UsageError, match="--mix"):
        TrainOptions(mix=text)
