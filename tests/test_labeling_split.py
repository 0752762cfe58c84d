"""Split guarantees, checked as properties over random trees, plus the split-folder detection."""
import numpy as np
import pandas as pd
import pytest

from common.schema import SPLITS
from labeling.split import assign_groups, folder_splits, group_splits, is_split_on_disk

FRACTIONS = [(0.1, 0.1), (0.2, 0.15), (0.05, 0.3)]


def random_frame(seed):
    """Random labels, each with a random number of groups of random (heavy-tailed) sizes."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in [f"Label{k}" for k in range(rng.integers(3, 8))]:
        for g in range(rng.integers(1, 40)):
            size = int(rng.pareto(1.5) * 5) + 1
            rows += [(f"img/P{g}_{label}/{i}.jpg", label, f"img/P{g}_{label}") for i in range(size)]
    return pd.DataFrame(rows, columns=["rel", "label", "group"])


@pytest.mark.parametrize("tree", range(8))
@pytest.mark.parametrize("val_frac, test_frac", FRACTIONS)
def test_group_split_properties(tree, val_frac, test_frac):
    frame = random_frame(tree)
    splits = group_splits(frame, val_frac, test_frac, seed=tree)
    frame = frame.assign(split=splits)
    assert set(frame["split"]) <= set(SPLITS)
    # no group in two splits
    assert (frame.groupby("group")["split"].nunique() == 1).all()
    fractions = {"train": 1 - val_frac - test_frac, "val": val_frac, "test": test_frac}
    for label, rows in frame.groupby("label"):
        sizes = rows.groupby("group").size()
        counts = rows["split"].value_counts()
        if len(sizes) >= 3:  # enough groups: every split holds some of the label
            assert set(counts.index) == set(SPLITS), label
        for split, fraction in fractions.items():
            # as close as whole groups allow: off by less than two of the label's largest groups
            assert abs(counts.get(split, 0) - fraction * len(rows)) <= 2 * sizes.max(), (label, split)


@pytest.mark.parametrize("tree", range(4))
def test_same_seed_same_split_and_other_seeds_usually_differ(tree):
    frame = random_frame(100 + tree)
    first = group_splits(frame, 0.1, 0.1, seed=7)
    assert first.equals(group_splits(frame, 0.1, 0.1, seed=7))
    differing = sum(not first.equals(group_splits(frame, 0.1, 0.1, seed=s)) for s in range(8, 13))
    assert differing >= 4


def test_a_label_keeps_its_split_when_other_labels_change():
    frame = random_frame(3)
    alone = frame[frame["label"] == "Label0"]
    assert group_splits(frame, 0.1, 0.1, 5)[alone.index].equals(group_splits(alone, 0.1, 0.1, 5))


def test_equal_groups_are_split_exactly_by_the_fractions():
    # 20 groups of 3 images, 70/20/10: targets 42/12/6 images are reachable exactly (14/4/2 groups)
    chosen = assign_groups(np.full(20, 3), np.array([0.7, 0.2, 0.1]), np.random.default_rng(0))
    assert np.bincount(chosen, minlength=3).tolist() == [14, 4, 2]


@pytest.mark.parametrize("n_groups, present", [(1, {0}), (2, {0, 2}), (3, {0, 1, 2})])
def test_few_groups_fill_train_then_test_then_val(n_groups, present):
    sizes = np.array([50, 3, 2][:n_groups])
    for seed in range(5):
        chosen = assign_groups(sizes, np.array([0.8, 0.1, 0.1]), np.random.default_rng(seed))
        assert set(chosen.tolist()) == present


def test_zero_fraction_split_gets_nothing():
    chosen = assign_groups(np.arange(1, 30), np.array([0.8, 0.0, 0.2]), np.random.default_rng(1))
    assert 1 not in chosen and {0, 2} <= set(chosen.tolist())


def test_folder_splits_maps_validation_to_val_and_needs_every_image_in_split_folders():
    groups = pd.Series(["train/t-shirt", "Validation/t-shirt", "test/hat", "valid/hat", "val/x"])
    assert folder_splits(groups).tolist() == ["train", "val", "test", "val", "val"]
    assert is_split_on_disk(folder_splits(groups))
    assert folder_splits(pd.Series(["train/t-shirt", "extra/t-shirt"])) is None
    assert folder_splits(pd.Series(["train/a", "train"])) is None  # images directly in train/: no class folder
    assert folder_splits(pd.Series(["img/A_Tee"])) is None
    assert not is_split_on_disk(folder_splits(pd.Series(["train/a", "train/b"])))
