"""The training and validation datasets of a run: loader options from TrainOptions, cache keys, class weights."""
import hashlib
import json

from cnn.data.batching import Batching
from common.errors import UsageError


def parse_augmentation(augment):
    """The loader's augmentation spec for --augment, or None; a bad spec is a user error."""
    from cnn.data.augment import parse_augment

    if augment == "none":
        return None
    try:
        return parse_augment(augment)
    except ValueError as e:
        raise UsageError(f"--augment {augment!r}: {e}") from None


def cache_for(cache, split, rows, classes, image_size):
    """The loader's cache argument for one split: None, 'memory', or a file prefix keyed by its content.

    The key hashes the rows (paths and labels, in order), the class order and the decode size, so a
    cache written for another CSV, split or size is never read back as this one.
    """
    if cache == "none":
        return None
    if cache == "memory":
        return "memory"
    content = json.dumps([list(rows["path"]), list(rows["label"]), list(classes), image_size])
    return f"{cache}.{split}-{image_size}px-{hashlib.sha256(content.encode()).hexdigest()[:16]}"


def remove_stale_lockfiles(prefix):
    """Delete TensorFlow's cache lockfiles left by a killed run (we hold the run lock, so none is live)."""
    import glob
    import os

    for path in glob.glob(glob.escape(prefix) + "*.lockfile"):
        os.remove(path)


def balanced_class_weights(labels, classes):
    """Weight n / (k * n_c) per class, so each class contributes equally to the loss."""
    counts = labels.value_counts()
    return {i: len(labels) / (len(classes) * int(counts[name])) for i, name in enumerate(classes)}


def check_worker_share(rows, dist, batch_size):
    """Every worker trains on whole batches of its share of the train split: a share smaller than one replica's
    batch would leave it nothing to train on (TensorFlow fails at the first step)."""
    smallest, per_replica = rows // dist.workers, batch_size // dist.replicas
    if smallest < per_replica:
        raise UsageError(f"--strategy multiworker: the train split's {rows} images over {dist.workers} workers give "
                         f"each {smallest}, fewer than one replica's batch of {per_replica} (--batch-size "
                         f"{batch_size}); lower --batch-size to at most {smallest * dist.replicas} or use fewer workers")


def make_datasets(df, classes, options, dist=None):
    """(train, val) Loaded datasets for TrainOptions: train shuffled and (optionally) augmented, val in order;
    read from the image files, or from the shards of --data.

    Under a multiworker Distribution `dist` the train split is this worker's share of the rows, in batches of
    one replica's share of --batch-size (whole batches only); every worker validates on the whole val split.
    """
    from cnn.data.loader import flow_from_dataframe
    from cnn.data.shards import flow_from_shards

    size = options.image_size
    split_up = dist is not None and dist.name == "multiworker"
    if split_up:
        check_worker_share(int((df.split == "train").sum()), dist, options.batch_size)
    loaded = {}
    for split in ("train", "val"):
        rows = df[df.split == split]
        training = split == "train"
        shard = (dist.index, dist.workers) if training and split_up else None
        cache = cache_for(options.cache, split if shard is None else f"{split}-worker{shard[0]}", rows, classes, size)
        if cache not in (None, "memory"):
            remove_stale_lockfiles(cache)
        batching = Batching(batch_size=options.batch_size // dist.replicas if shard else options.batch_size,
                            shuffle=training, seed=options.seed if training else None, drop_remainder=shard is not None,
                            augment=parse_augmentation(options.augment) if training else None, cache=cache,
                            mix=options.mix if training and options.mix != "none" else None)
        loaded[split] = (flow_from_shards(options.data, [split], classes, batching=batching, shard=shard)
                         if options.data != "none" else
                         flow_from_dataframe(rows if shard is None else rows.iloc[shard[0]::shard[1]], classes=classes,
                                             target_size=(size, size), batching=batching,
                                             skip_missing=options.skip_missing))
    return loaded["train"], loaded["val"]
