"""TFRecord shards written by pack-shards (cnn.data.pack): their file names, index, records, and the reader.

A shards folder holds, per split, `<split>-00000-of-00004.tfrecord` files of tf.train.Example records
(the image at the packed size, JPEG or raw uint8, with its label, group, split and original path),
`rows.csv` (the packed rows in packed order: the labels CSV that training with `--data` reads) and
`index.json`, written last: a folder without it is an unfinished pack and is refused.
"""
import json
from pathlib import Path

from cnn.data.batching import Batching
from common.errors import UsageError

INDEX = "index.json"  # counts, classes, options, source CSV hash, shard names, skipped images: written last
ROWS = "rows.csv"  # path,label,group,split,shard,record of every packed image, in packed order
PLAN = "pack.json"  # the inputs' key, written first, so a rerun knows which finished shards it may keep
SUFFIX = ".tfrecord"
FORMAT = "clothing-cnn shards 1"
ENCODINGS = ("jpeg", "raw")
SHUFFLE_RECORDS = 2048  # training records shuffled among when not cached in memory (~400 MB at 256 px)
READ_PARALLEL = 8  # shard files read at once (interleaved)
STRING_FEATURES = ("label", "group", "split", "path")  # stored beside the image bytes


def shard_name(split, i, n):
    """The file name of shard i (from 0) of n of a split: train-00000-of-00004.tfrecord."""
    return f"{split}-{i:05d}-of-{n:05d}{SUFFIX}"


def read_index(data):
    """The index of a finished shards folder; anything else is a one-line UsageError saying what to do."""
    folder = Path(data)
    if not folder.is_dir():
        raise UsageError(f"--data {data}: no such folder; write it with pack-shards LABELS.csv {data}")
    path = folder / INDEX
    if not path.is_file():
        hint = "an unfinished pack: rerun the same pack-shards command to finish it" if (folder / PLAN).is_file() \
            else "not a pack-shards folder"
        raise UsageError(f"--data {data}: no {INDEX} ({hint})")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise UsageError(f"{path} is not valid JSON; the shards folder is damaged (pack it again)") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise UsageError(f"{path} is not a pack-shards index of this version ({FORMAT}); pack the images again")
    return index


def rows_csv(data):
    """The labels CSV of a shards folder (the packed rows), which training with --data reads."""
    return Path(data) / ROWS


def read_rows(data):
    """The packed rows as a DataFrame (path, label, group, split, shard, record), after checking the index."""
    import pandas as pd

    read_index(data)
    return pd.read_csv(rows_csv(data), dtype=str, keep_default_na=False)


def packed_size(data):
    """The side in pixels the images of a shards folder were resized to."""
    return int(read_index(data)["options"]["image_size"])


def example(payload, row):
    """One serialized tf.train.Example: the encoded image and the row's string features."""
    import tensorflow as tf

    def feature(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    features = {"image": feature(payload), **{k: feature(str(row[k]).encode()) for k in STRING_FEATURES}}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def parser(index, classes):
    """A function: serialized record -> (uint8 [S, S, 3] image, class index among `classes`, path)."""
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    size = int(index["options"]["image_size"])
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in ("image", *STRING_FEATURES)}
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(classes)), tf.range(len(classes), dtype=tf.int32)), default_value=-1)
    raw = index["options"]["encoding"] == "raw"

    def parse(record):
        fields = tf.io.parse_single_example(record, spec)
        image = (tf.reshape(tf.io.decode_raw(fields["image"], tf.uint8), (size, size, 3)) if raw
                 else tf.ensure_shape(tf.io.decode_jpeg(fields["image"], channels=3), (size, size, 3)))
        return image, table.lookup(fields["label"]), fields["path"]

    return parse


def shard_files(data, index, splits):
    """The shard files of `splits` (in the index's order), refused when one is missing."""
    files = [Path(data) / name for split in splits for name in index["shards"].get(split, [])]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise UsageError(f"--data {data}: shard {missing[0]} is missing ({len(missing)} in all); pack it again")
    sizes = index.get("bytes", {})  # packs from before the record have none to compare
    changed = [f for f in files if f.name in sizes and f.stat().st_size != sizes[f.name]]
    if changed:
        raise UsageError(f"--data {data}: shard {changed[0]} holds {changed[0].stat().st_size:,} bytes but was "
                         f"packed with {sizes[changed[0].name]:,} (cut short or changed; {len(changed)} in all); "
                         f"pack it again")
    return [str(f) for f in files]


def records(files, shuffle=False, seed=None, part=None):
    """Serialized records of `files`, read interleaved in parallel; `part` (i, n) keeps every n-th record from i.

    Deterministic: one file reads in packed order; several are read round-robin, their order shuffled per
    epoch with `seed` when `shuffle`.
    """
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), READ_PARALLEL), block_length=1,
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds if part is None else ds.shard(part[1], part[0])


def worker_share(files, rows, shard):
    """(files, rows, record part) worker shard[0] of shard[1] reads: whole files when there are enough of them,
    else every n-th record."""
    if shard is None:
        return files, rows, None
    if len(files) >= shard[1]:
        files = files[shard[0]::shard[1]]
        return files, rows[rows["shard"].isin({Path(f).name for f in files})], None
    return files, rows.iloc[shard[0]::shard[1]], shard


def flow_from_shards(data, splits, classes, batching=Batching(), shard=None):
    """A cnn.data.loader.Loaded reading the `splits` of a shards folder through the files loader's own batching tail.

    Labels outside `classes` are a UsageError. With everything in one shard per split and `shuffle`, the
    order is the files loader's for the same rows in packed order (same seed, same permutation), so a run
    from raw shards repeats a run from the files.
    """
    from cnn.data.loader import Loaded, SkipLog, batched
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    index = read_index(data)
    rows = read_rows(data)
    rows = rows[rows["split"].isin(splits)]
    unknown = sorted(set(rows["label"]) - set(classes))
    if unknown:
        raise UsageError(f"--data {data}: label(s) {', '.join(unknown[:5])} are not among the classes "
                         f"{', '.join(classes)}")
    files, rows, part = worker_share(shard_files(data, index, splits), rows, shard)
    paths = list(rows["path"])
    parse = parser(index, classes)
    shuffle = batching.shuffle
    ds = records(files, shuffle, batching.seed, part).map(lambda record: parse(record)[:2],
                                                          num_parallel_calls=tf.data.AUTOTUNE)
    buffer = (len(paths) if batching.cache == "memory" else min(len(paths), SHUFFLE_RECORDS)) if shuffle else 0
    ds = batched(ds, len(classes), batching, shuffle_buffer=buffer)
    return Loaded(ds, list(classes), paths, SkipLog())


def images_at(data, rows):
    """The packed pixels (uint8 numpy arrays) of `rows` of read_rows(data), read from their shards only."""
    import numpy as np

    index = read_index(data)
    parse = parser(index, sorted(set(rows["label"])))
    wanted = {(shard, int(record)) for shard, record in zip(rows["shard"], rows["record"])}
    found = {}
    for shard in sorted({s for s, _ in wanted}):
        for i, record in enumerate(records([str(Path(data) / shard)])):
            if (shard, i) in wanted:
                found[(shard, i)] = np.asarray(parse(record)[0])
    return [found[(s, int(r))] for s, r in zip(rows["shard"], rows["record"])]
