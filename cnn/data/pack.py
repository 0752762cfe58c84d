"""pack-shards: decode a labels CSV's images once, resize, re-encode and write them as TFRecord shards.

Decoding and resizing are the files loader's own (cnn.data.loader.decoded_images, in parallel through tf.data),
so raw shards hold exactly the pixels training from the files would see. Each shard is written to a
temporary file and renamed, then a small `<shard>.json` records its rows; index.json is written last.
A rerun with the same inputs (the CSV's SHA-256 and every option) keeps the shards already finished.
"""
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cnn.data.labels_csv import read_labels
from cnn.data.shards import ENCODINGS, FORMAT, INDEX, PLAN, ROWS, example, shard_name
from common.atomic import write_csv, write_json
from common.console import writer
from common.destinations import check_outside_dataset
from common.errors import UsageError
from common.hashing import sha256_file
from common.schema import SPLITS

log = writer("pack-shards")

SHARD_MB = 150  # target shard size: large enough for fast sequential reads, small enough to spread over workers
JPEG_QUALITY = 95  # with full-resolution colour (4:4:4): about 1-3 grey levels from the decoded pixels
JPEG_RATIO = 6  # a quality-95 JPEG of a photo takes about 1/6 of its raw bytes: the planned shard sizes use it
PROGRESS_SECONDS = 5.0  # between progress lines on stderr
MAX_SIZE = 1024  # as train-cnn's --image-size


@dataclass(frozen=True)
class PackOptions:
    """What decides the shards' content: with the labels CSV's hash, the key of a pack."""

    image_size: int = 256
    encoding: str = "jpeg"
    quality: int = JPEG_QUALITY
    shard_mb: float = SHARD_MB
    seed: int = 0

    def check(self):
        """Refuse impossible values with a one-line UsageError naming the option."""
        if not 8 <= self.image_size <= MAX_SIZE:
            raise UsageError(f"--image-size {self.image_size}: must be between 8 and {MAX_SIZE}")
        if not self.shard_mb > 0:
            raise UsageError(f"--shard-mb {self.shard_mb}: must be > 0")
        if not 1 <= self.quality <= 100:
            raise UsageError(f"--quality {self.quality}: must be between 1 and 100")
        if self.encoding not in ENCODINGS:
            raise UsageError(f"encoding {self.encoding}: must be one of {', '.join(ENCODINGS)}")

    def images_per_shard(self):
        """Images planned per shard: raw images take S*S*3 bytes, JPEGs about 1/JPEG_RATIO of that."""
        per_image = self.image_size ** 2 * 3 / (1 if self.encoding == "raw" else JPEG_RATIO)
        return max(1, int(self.shard_mb * 2 ** 20 // per_image))


def checked_labels(labels):
    """The labels CSV's rows with a group column; every row needs a split and an existing image file."""
    from cnn.data.loader import check_files

    df = read_labels(labels)
    odd = sorted(set(df["split"]) - set(SPLITS))
    if odd:
        raise UsageError(f"{labels}: split values must be {', '.join(SPLITS)} (found {', '.join(map(repr, odd[:5]))}); "
                         f"pack-shards writes one set of shards per split (make-labels --split auto makes them)")
    df = check_files(df, can_skip=False)
    if "group" not in df:
        df = df.assign(group="")
    return df.reset_index(drop=True)


def check_out(out, df):
    """Refuse an OUT in, above or inside a folder of the dataset's images or inside the tree that holds them all
    (the dataset is only read), a file, or a non-empty folder that is not a pack."""
    check_outside_dataset(out, df["path"], "OUT", "pack-shards", whole_tree=True)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; choose a folder for the shards")
    if out.is_dir() and any(out.iterdir()) and not (out / PLAN).is_file():
        raise UsageError(f"{out} is not empty and not a pack-shards folder; choose a new or empty folder")


def pack_key(labels, options):
    """The inputs' key: the labels CSV's SHA-256 and every PackOptions value."""
    text = json.dumps({"sha256": sha256_file(labels), **asdict(options)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def claim(out, key, labels, options):
    """Write OUT/pack.json with the key, or check that an earlier pack in OUT had the same inputs."""
    plan = out / PLAN
    if plan.is_file():
        earlier = json.loads(plan.read_text(encoding="utf-8"))
        if earlier.get("key") != key:
            raise UsageError(f"{out} holds shards of other inputs (options {earlier.get('options')} of "
                             f"{earlier.get('labels')}); delete it or choose another folder")
        return
    write_json(plan, {"key": key, "labels": str(labels), "options": asdict(options)})


def plan_shards(df, options):
    """[(split, shard name, its rows)]: train rows in a seeded random order (so every shard mixes the classes),
    val and test in CSV order, cut into shards of images_per_shard()."""
    import numpy as np

    plan = []
    per_shard = options.images_per_shard()
    for split in SPLITS:
        rows = df[df["split"] == split]
        if split == "train":
            rows = rows.iloc[np.random.default_rng(options.seed).permutation(len(rows))]
        n = -(-len(rows) // per_shard)
        plan += [(split, shard_name(split, i, n), rows.iloc[i * per_shard:(i + 1) * per_shard]) for i in range(n)]
    return plan


class Progress:
    """Counts of images done, a rate and the time left, on stderr every PROGRESS_SECONDS.

    Our own rather than tqdm's bar: the rate counts only the images this run decodes (shards a rerun keeps are done
    but took no time, which tqdm's rate would count), and each report is one `pack-shards: ...` line, which reads
    the same in a terminal, a log file and CI (a bar redraws itself with carriage returns)."""

    def __init__(self, total, shards):
        self.total, self.shards, self.done, self.shards_done = total, shards, 0, 0
        self.first = self.last = None  # when this run decoded its first image (start-up is not counted)
        self.fresh = 0  # images decoded by this run (reused shards do not count towards the rate)

    def add(self, images, decoded=True):
        now = time.monotonic()
        self.done += images
        if not decoded:
            return
        if self.first is None:
            self.first = self.last = now
            return
        self.fresh += images
        if now - self.last >= PROGRESS_SECONDS:
            self.last = now
            rate = self.fresh / (now - self.first)
            log(f"{self.done:,}/{self.total:,} images, {self.shards_done}/{self.shards} shards, "
                f"{rate:.1f} images/s, about {_duration((self.total - self.done) / rate)} left")


def _duration(seconds):
    """'1 h 02 min', '3 min 05 s' or '12 s'."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def encoded_images(rows, options, workers, skipped):
    """A dataset of (encoded image bytes or uint8 pixels, position in `rows`), decoded by `workers` threads."""
    from cnn.data.loader import decoded_images
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    files = tf.data.Dataset.from_tensor_slices((list(rows["path"]), list(range(len(rows)))))
    ds = decoded_images(files, (options.image_size, options.image_size), skipped)
    if options.encoding == "jpeg":
        ds = ds.map(lambda image, i: (tf.io.encode_jpeg(image, quality=options.quality, chroma_downsampling=False), i),
                    num_parallel_calls=tf.data.AUTOTUNE)
    settings = tf.data.Options()
    settings.threading.private_threadpool_size = workers
    return ds.with_options(settings)


def sidecar(out, name):
    """The small JSON beside a finished shard: the key, the positions of its rows it holds, the skipped paths."""
    return out / (name[:-len(".tfrecord")] + ".json")


def write_shard(out, name, rows, options, workers, key, progress):
    """Write one shard (temporary file, then rename), then its sidecar; return the sidecar's content."""
    import numpy as np

    from cnn.data.loader import SkipLog
    from common.atomic import atomic_path
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    skipped, written = SkipLog(), []
    with atomic_path(out / name) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
        for payload, i in encoded_images(rows, options, workers, skipped):
            data = payload.numpy() if options.encoding == "jpeg" else np.ascontiguousarray(payload.numpy()).tobytes()
            writer.write(example(data, rows.iloc[int(i)]))
            written.append(int(i))
            progress.add(1)
    done = {"key": key, "records": written, "skipped": skipped.paths}
    progress.add(skipped.count)
    write_json(sidecar(out, name), done)
    return done


def finished_shard(out, name, key):
    """The sidecar of a shard an earlier run finished with the same inputs, or None."""
    path = sidecar(out, name)
    if not (out / name).is_file() or not path.is_file():
        return None
    done = json.loads(path.read_text(encoding="utf-8"))
    return done if done.get("key") == key else None


def remove_partial(out):
    """Delete the temporary files a killed pack left (common.atomic names them `.NAME.*`)."""
    for path in out.glob(".*.*"):
        if path.is_file():
            path.unlink()


def pack_shards(labels, out, *, image_size=256, shard_mb=SHARD_MB, workers=None, raw=False, quality=JPEG_QUALITY,
                seed=0):
    """Pack the images of `labels` into TFRecord shards in `out`; return the index (also OUT/index.json)."""
    options = PackOptions(image_size, "raw" if raw else "jpeg", quality, shard_mb, seed)
    options.check()
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: must be 1 or more")
    out = Path(out)
    df = checked_labels(labels)
    check_out(out, df)
    key = pack_key(labels, options)
    out.mkdir(parents=True, exist_ok=True)
    claim(out, key, labels, options)
    remove_partial(out)
    plan = plan_shards(df, options)
    log(f"{len(df):,} images of {labels} into {len(plan)} shards in {out} ({options.encoding}, "
        f"{options.image_size} px, {workers or os.cpu_count()} workers)")
    started, progress, packed, skipped = time.monotonic(), Progress(len(df), len(plan)), [], []
    for split, name, rows in plan:
        done = finished_shard(out, name, key)
        if done is not None:
            progress.add(len(rows), decoded=False)
        else:
            done = write_shard(out, name, rows, options, workers or os.cpu_count(), key, progress)
        progress.shards_done += 1
        packed.append(rows.iloc[done["records"]][["path", "label", "group", "split"]].assign(
            shard=name, record=range(len(done["records"]))))
        skipped += done["skipped"]
    return write_index(out, labels, options, key, plan, packed, skipped, time.monotonic() - started)


def write_index(out, labels, options, key, plan, packed, skipped, seconds):
    """rows.csv, then index.json (last: its presence marks a finished pack); log a table of what was packed."""
    import pandas as pd
    from tabulate import tabulate

    rows = pd.concat(packed, ignore_index=True)
    write_csv(out / ROWS, rows, index=False)
    counts = {split: rows[rows["split"] == split]["label"].value_counts().sort_index().to_dict() for split in SPLITS}
    index = {"format": FORMAT, "key": key, "options": asdict(options),
             "labels": {"path": str(labels), "resolved": str(Path(labels).resolve()), "sha256": sha256_file(labels)},
             "classes": sorted(set(rows["label"])), "images": {s: int(sum(c.values())) for s, c in counts.items()},
             "counts": counts, "shards": {s: [name for split, name, _ in plan if split == s] for s in SPLITS},
             "bytes": {name: (out / name).stat().st_size for _, name, _ in plan},  # checked before every read
             "skipped": skipped, "seconds": round(seconds, 1)}
    write_json(out / INDEX, index)
    table = [[s, index["images"][s], len(index["shards"][s]),
              sum((out / n).stat().st_size for n in index["shards"][s]) / 2 ** 20] for s in SPLITS]
    print(tabulate(table, headers=["split", "images", "shards", "MiB"], floatfmt=".1f", intfmt=","), file=sys.stderr)
    log(f"{len(rows):,} images packed, {len(skipped)} undecodable skipped (listed in {out / INDEX}); "
        f"{seconds:.0f} s")
    return index
