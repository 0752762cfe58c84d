"""Assign images to train/val/test: from split folders on disk, from the official partition, or by product group.

The group split is seeded and stratified per label and moves whole groups (product folders), so no product
straddles train/val/test while each label gets the requested fractions as closely as its group sizes allow.
"""
import zlib

import numpy as np
import pandas as pd

from common.schema import SPLITS

TRIES = 16  # random fills tried per label; the closest to the requested fractions is kept
FOLDER_NAMES = {"train": "train", "val": "val", "validation": "val", "valid": "val", "test": "test"}


def folder_splits(groups):
    """Each image's split from its top-level folder (train/, val/ or validation/, test/; any case).

    Returns None when some image lies outside such folders, so the tree is not split on disk.
    """
    top = {group: FOLDER_NAMES.get(group.partition("/")[0].lower()) for group in pd.unique(groups)}
    if None in top.values() or any("/" not in group for group in top):
        return None
    return groups.map(top)


def is_split_on_disk(splits):
    """True when folder splits hold a training set and at least one of val/test: enough for `auto` to trust them."""
    present = set(pd.unique(splits))
    return "train" in present and bool(present & {"val", "test"})


def group_splits(frame, val_frac, test_frac, seed):
    """Each image's split, moving whole groups; stratified by each group's (most common) label, seeded per label.

    Seeding per label from (seed, label) keeps a label's split unchanged when other labels come or go.
    """
    sizes = frame.groupby(["group", "label"], sort=False).size().reset_index(name="images")
    sizes = sizes.sort_values(["group", "images", "label"], ascending=[True, False, True], kind="stable")
    sizes = sizes.drop_duplicates("group")
    fractions = np.array([1.0 - val_frac - test_frac, val_frac, test_frac])
    assignment = {}
    for label, part in sizes.groupby("label", sort=True):
        rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
        chosen = assign_groups(part["images"].to_numpy(), fractions, rng)
        assignment.update(zip(part["group"], (SPLITS[i] for i in chosen)))
    return frame["group"].map(assignment)


def assign_groups(sizes, fractions, rng, tries=TRIES):
    """Split index (0 train, 1 val, 2 test) for each group of one label: the best of `tries` random fills.

    Each fill takes the groups in a random order, puts each into the split furthest below its target image
    count, then gives every empty split with a nonzero fraction one group, as long as there are groups enough.
    The fill closest to the targets (sum of absolute image-count errors) wins; the first one on ties.
    """
    targets = fractions * sizes.sum()
    best, best_error = None, np.inf
    for _ in range(tries):
        chosen = _fill(sizes, targets, rng.permutation(len(sizes)))
        _fill_empty_splits(chosen, sizes, targets, fractions)
        error = np.abs(np.bincount(chosen, weights=sizes, minlength=len(targets)) - targets).sum()
        if error < best_error:
            best, best_error = chosen, error
    return best


def _fill(sizes, targets, order):
    """Greedy fill: each group, in `order`, goes to the split with the largest remaining need."""
    filled = np.zeros(len(targets))
    chosen = np.empty(len(sizes), dtype=int)
    for i in order:
        chosen[i] = int(np.argmax(targets - filled))
        filled[chosen[i]] += sizes[i]
    return chosen


def _fill_empty_splits(chosen, sizes, targets, fractions):
    """Give each empty wanted split (train, then test, then val) the group closest to its target size.

    The group comes from the split that can spare one without emptying a wanted split.
    """
    wanted = [s for s in (0, 2, 1) if fractions[s] > 0][:len(sizes)]
    for split in wanted:
        if (chosen == split).any():
            continue
        spare = np.bincount(chosen, minlength=len(fractions)) - np.isin(np.arange(len(fractions)), wanted)
        donor = np.flatnonzero(chosen == int(np.argmax(spare)))
        chosen[donor[np.argmin(np.abs(sizes[donor] - targets[split]))]] = split
