"""The dataframe-driven tf.data loader: image files listed in a DataFrame -> batches of (pixels, one-hot).

Keras 3 dropped `ImageDataGenerator.flow_from_dataframe`; `flow_from_dataframe` here is its tf.data
successor: files are read with `tf.io`, decoded in parallel (JPEG, PNG, BMP, GIF; always 3 channels),
resized, optionally cached, shuffled, batched, optionally augmented and prefetched. Pixels stay in
0..255 because the models rescale inside themselves.
"""
import dataclasses
import functools
import os
from dataclasses import dataclass

from cnn.data.augment import augment_batches, check_augment, parse_augment
from cnn.data.batching import Batching
from cnn.data.mix import mix_batches
from common.errors import MissingFilesError, UsageError
from common.console import writer
from common.schema import MAX_PIXELS, too_large

warn = writer("clothing-cnn", "warning: ")  # speaks as the command that loads the images

SHOW_MISSING = 5  # missing paths named in the error message
FILE_CACHE_SHUFFLE = 2048  # images a file-cached dataset shuffles among (~400 MB at 256x256), not all of them


class SkipLog:
    """Undecodable images the loader skipped: their paths, in the order met, each counted once."""

    def __init__(self):
        self.paths = []

    @property
    def count(self):
        return len(self.paths)

    def record(self, path):
        """Note one skipped file and warn about it on stderr (once per file, not once per epoch)."""
        if path not in self.paths:
            self.paths.append(path)
            large = too_large(path)
            what = f"image {path} (too large to decode: {large})" if large else f"undecodable image {path}"
            warn(f"skipped {what} ({self.count} skipped so far)")

    def __repr__(self):
        return f"SkipLog(count={self.count})"


@dataclass
class Loaded:
    """What flow_from_dataframe returns: the dataset and the facts about it that tf.data cannot carry."""

    dataset: object  # tf.data.Dataset (or, without TensorFlow, a Keras PyDataset) of (pixels, one-hot) batches
    class_names: list  # label order of the one-hot vectors (None without labels)
    file_paths: list  # the rows' files, in order when not shuffled
    skipped: SkipLog  # undecodable images met while iterating (skipped, not fatal)

    def check_decodable(self, what):
        """Once iterated: a set none of whose images decoded cannot train, validate or be whitened: a user error
        naming the first file (`what`: the images' description, e.g. "of the 'train' split")."""
        if self.file_paths and self.skipped.count == len(self.file_paths):
            raise UsageError(f"none of the {len(self.file_paths)} images {what} could be decoded "
                             f"(first: {self.skipped.paths[0]}); check the files")


def check_files(df, x_col="path", skip_missing=False, can_skip=True):
    """The rows of `df` whose file exists; missing files raise MissingFilesError, or are dropped with a warning.
    `can_skip`: the command offers --skip-missing (the message advises it only then)."""
    exists = df[x_col].map(lambda p: isinstance(p, str) and os.path.isfile(p))
    missing = df.loc[~exists, x_col].tolist()
    if not missing:
        return df
    if not skip_missing:
        shown = ", ".join(map(str, missing[:SHOW_MISSING])) + (", ..." if len(missing) > SHOW_MISSING else "")
        raise MissingFilesError(f"{len(missing)} of {len(df)} image files are missing ({shown}); "
                                f"fix the labels CSV" + (" or pass --skip-missing to drop them" if can_skip else ""))
    warn(f"dropped {len(missing)} of {len(df)} rows whose image file is missing (first: {missing[0]})")
    return df[exists]


def _decode_uint8(contents, target_size):
    """Encoded bytes -> uint8 (H, W, 3): any of JPEG/PNG/BMP/GIF (first frame), resized bilinearly."""
    import tensorflow as tf  # traced inside dataset functions, after the callers' quiet import

    # Refused before decoding (an error the loader turns into a skipped file): a 20000x20000 PNG would take 1.2 GB.
    fits = tf.debugging.assert_less_equal(header_pixels(contents), tf.constant(MAX_PIXELS, tf.int64),
                                          message="image larger than common.schema.MAX_PIXELS")
    with tf.control_dependencies([fits]):
        image = tf.io.decode_image(contents, channels=3, expand_animations=False)  # gray/RGBA/CMYK -> RGB
    image = tf.image.resize(image, target_size, method="bilinear")
    # Back to uint8: a cached or shuffled image then takes a quarter of float32's memory.
    return tf.cast(tf.round(tf.clip_by_value(image, 0, 255)), tf.uint8)


def header_pixels(contents):
    """Width x height as the encoded image's header declares it (JPEG, PNG, GIF, BMP; 0 for other formats), read
    without decoding: PNG/GIF/BMP from fixed header bytes, JPEG by TensorFlow's own header parser."""
    import tensorflow as tf

    head = tf.strings.substr(tf.strings.join([tf.strings.substr(contents, 0, 26), b"\0" * 26]), 0, 26)
    b = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)

    def big(i, n):  # an unsigned big-endian integer of n bytes at offset i
        return sum(b[i + k] * 256 ** (n - 1 - k) for k in range(n))

    def little(i, n):
        return sum(b[i + k] * 256 ** k for k in range(n))

    def signed(value):  # BMP's height is negative for top-down rows
        return tf.abs(tf.where(value >= 2 ** 31, value - 2 ** 32, value))

    def starts(*magic):
        return tf.reduce_all(tf.stack([tf.equal(b[i], m) for i, m in enumerate(magic)]))

    return tf.case([(starts(0x89, 0x50, 0x4E, 0x47), lambda: big(16, 4) * big(20, 4)),
                    (starts(0x47, 0x49, 0x46), lambda: little(6, 2) * little(8, 2)),
                    (starts(0x42, 0x4D), lambda: signed(little(18, 4)) * signed(little(22, 4))),
                    (starts(0xFF, 0xD8), lambda: tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(contents)[:2],
                                                                        tf.int64)))],
                   default=lambda: tf.constant(0, tf.int64))


def decode_and_resize(path, target_size=(256, 256)):
    """One image file as a float32 (H, W, 3) numpy array of 0-255 pixels, exactly as the loader yields it
    (decode_bytes); one that does not decode is a UsageError naming the file and why."""
    from common.tfenv import quiet_tensorflow, tensorflow_installed

    if not tensorflow_installed():
        from cnn.data.numpy_loader import decode

        image = decode(path, tuple(target_size))
        if image is None:
            raise UsageError(f"{path}: not a decodable image (or too large to decode); check the file")
        return image.astype("float32")
    tf = quiet_tensorflow()
    try:
        return decode_bytes(tf.io.read_file(str(path)), target_size)
    except ValueError:
        large = too_large(path)
        raise UsageError(f"{path}: " + (f"too large to decode ({large})" if large else "not a decodable image")
                         + "; check the file") from None


class ImageTooLarge(ValueError):
    """An image whose header declares more than MAX_PIXELS pixels (refused before decoding)."""


@functools.cache
def graph_decoders(target_size):
    """(header_pixels, decode to float32) of one encoded image as TensorFlow graphs for `target_size`: two calls an
    image instead of a hundred small eager ops, which took most of serve-cnn's CPU."""
    import tensorflow as tf

    spec = [tf.TensorSpec([], tf.string)]
    return (tf.function(header_pixels, input_signature=spec),
            tf.function(lambda data: tf.cast(_decode_uint8(data, target_size), tf.float32), input_signature=spec))


def decode_bytes(contents, target_size):
    """An encoded image (bytes, or a string tensor) exactly as the loader decodes a file: float32 (H, W, 3) 0-255
    pixels; a ValueError says why not (ImageTooLarge, from its header before decoding, or not a decodable image)."""
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    declared, decode = graph_decoders(tuple(int(n) for n in target_size))
    data = tf.constant(contents, tf.string)
    try:
        pixels = int(declared(data))
    except tf.errors.InvalidArgumentError:  # a JPEG whose header TensorFlow cannot parse
        raise ValueError("not a decodable image (JPEG, PNG, BMP or GIF)") from None
    if pixels > MAX_PIXELS:
        raise ImageTooLarge(f"the image declares {pixels:,} pixels, more than the limit of {MAX_PIXELS:,}")
    try:
        return decode(data).numpy()
    except tf.errors.InvalidArgumentError:
        raise ValueError("not a decodable image (JPEG, PNG, BMP or GIF)") from None


def decoded_images(files, target_size, skipped):
    """(path, label) -> (uint8 image, label), decoding in parallel; unreadable files go to `skipped`."""
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    blank = tf.zeros((*target_size, 3), tf.uint8)

    def attempt(path, label):
        # A one-element dataset that drops the image on a decode error, then a fallback element
        # flagged False: take(1) yields (image, True) or (blank, False) and never raises.
        one = tf.data.Dataset.from_tensors(path).map(
            lambda p: (_decode_uint8(tf.io.read_file(p), target_size), True)).ignore_errors()
        return one.concatenate(tf.data.Dataset.from_tensors((blank, False))).take(1).map(
            lambda image, ok: (image, label, ok, path))

    def note(image, label, ok, path):
        if not ok:
            tf.py_function(lambda p: skipped.record(p.numpy().decode()), [path], [])
        return ok

    ds = files.interleave(attempt, cycle_length=tf.data.AUTOTUNE, block_length=1,
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.filter(note).map(lambda image, label, ok, path: (image, label))


def _label_indices(df, y_col, classes):
    """(class names, integer label per row); a label outside the given classes is a ValueError."""
    labels = df[y_col].tolist()
    names = sorted(set(labels)) if classes is None else list(classes)
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted({str(v) for v in labels if v not in index})
    if unknown:
        raise ValueError(f"labels not among the classes: {', '.join(unknown[:10])}"
                         f"{' ...' if len(unknown) > 10 else ''}")
    return names, [index[v] for v in labels]


def flow_from_dataframe(df, x_col="path", y_col="label", classes=None, target_size=(256, 256), batching=Batching(),
                        skip_missing=False):
    """A Loaded whose dataset yields (float32 [B, H, W, 3] pixels in 0..255, float32 one-hot [B, classes]).

    `classes` fixes the label order (default: sorted unique labels); `y_col=None` yields images only.
    `batching` (cnn.data.batching.Batching) sets the batch size, the order, the cache and the training-only
    augmentation and mixing. Undecodable images are skipped, not fatal, and recorded in the result's `skipped`
    log as iteration meets them. Without TensorFlow installed the batches
    come from cnn.data.numpy_loader (a Keras PyDataset) instead of tf.data.
    """
    from common.tfenv import quiet_tensorflow, tensorflow_installed

    if len(df) == 0:
        raise ValueError("no rows to load")
    df = check_files(df, x_col, skip_missing)
    target_size = tuple(int(s) for s in target_size)
    class_names, labels = _label_indices(df, y_col, classes) if y_col is not None else (None, [0] * len(df))
    paths, skipped = df[x_col].tolist(), SkipLog()
    depth = len(class_names) if class_names is not None else 1
    if isinstance(batching.augment, str):
        batching = dataclasses.replace(batching, augment=parse_augment(batching.augment))
    if not tensorflow_installed():
        from cnn.data.image_batches import image_batches

        return Loaded(image_batches(paths, labels if y_col is not None else None, depth, target_size, skipped,
                                    batching), class_names, paths, skipped)
    tf = quiet_tensorflow()
    files = tf.data.Dataset.from_tensor_slices((paths, labels))
    shuffle, cache = batching.shuffle, batching.cache
    if shuffle and not cache:  # without a cache, shuffling names is cheap and keeps pixels out of the buffer
        files = files.shuffle(len(paths), seed=batching.seed, reshuffle_each_iteration=True)
    ds = decoded_images(files, target_size, skipped)
    buffer = (len(paths) if cache == "memory" else min(len(paths), FILE_CACHE_SHUFFLE)) if shuffle and cache else 0
    ds = batched(ds, depth, batching, shuffle_buffer=buffer, labelled=y_col is not None)
    return Loaded(ds, class_names, paths, skipped)


def batched(ds, depth, batching, shuffle_buffer=0, labelled=True):
    """(uint8 image, class index) elements -> prefetched batches of (float32 pixels, one-hot), as every loader yields.

    The files loader and the shards reader (cnn.data.shards) share this tail, so caching, shuffling, batching
    and augmentation are the same whichever feeds them (`batching`: cnn.data.batching.Batching).
    `shuffle_buffer` > 0 shuffles after the cache (with the batching's seed, reshuffled every epoch); `labelled`
    False yields the pixels alone.
    """
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    cache, seed, augment, mix = batching.cache, batching.seed, batching.augment, batching.mix
    if cache:  # after decode+resize, before shuffle/augment: only the deterministic work is kept
        ds = ds.cache("" if cache == "memory" else str(cache))
    if shuffle_buffer:  # a memory cache's buffer only references cached images; a file cache's would load them
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batching.batch_size, drop_remainder=batching.drop_remainder, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda images, y: (tf.cast(images, tf.float32), tf.one_hot(y, depth, dtype=tf.float32)),
                num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        ds = augment_batches(ds, parse_augment(augment) if isinstance(augment, str) else check_augment(augment), seed)
    if mix:  # after the augmentation: the partners are augmented views too
        ds = mix_batches(ds, mix, seed)
    if not labelled:
        ds = ds.map(lambda images, y: images)
    return prefetched(ds)


def prefetched(ds):
    """`ds` prefetched, with tf.data's autotuning model off (AUTOTUNE parallelism then runs a call per core).

    Keras drops an iterator every epoch, and TensorFlow then waits in its destructor for the model's
    optimiser thread to end a timed sleep that grows towards a minute, the cores idle: on clothing-dataset-small
    at 256 px, epochs of 82-142 s instead of 41 s (benchmarks/bench_epoch_stall.py). Training is bit-identical.
    """
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)
