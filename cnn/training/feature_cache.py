"""The feature cache: with a frozen backbone and no augmentation, each image's backbone features are computed
once and the head trains on them, so every epoch after the first costs a pass over the head only.

The head is the full model's own head layers applied to a features input, so training it trains the full
model, which is what the run folder saves. Batches come in the order the uncached loader would give them
(the same seeded shuffle of the same rows), so the result is the same model up to float rounding.
Features live in memory (post-pooling vectors are small: 2,048 floats, 8 KB, an image for Xception), or,
with `--cache PATH`, in a .npy file beside the image cache, keyed by the rows, size and backbone weights.
"""
import hashlib
import inspect
import os

from cnn.models.transfer import backbone_layers, features_index
from cnn.training import log


def applies(model, options):
    """True when the head can train on cached features: frozen backbone, no augmentation or mixing, no teacher
    (it needs the images), nothing random in it."""
    if (options.feature_cache != "on" or not options.freeze_backbone or options.augment != "none"
            or options.mix != "none" or options.teacher != "none"):
        return False
    random = random_layers(model)
    if random:
        log(f"feature cache off: the frozen backbone's {', '.join(sorted(random))} layers behave differently "
            f"while training, so its output is not the same each epoch")
    return not random


def random_layers(model):
    """Class names of the backbone's layers that take `training`, other than (frozen) BatchNormalization."""
    import keras

    return {type(layer).__name__ for layer in backbone_layers(model)
            if "training" in inspect.signature(layer.call).parameters
            and not isinstance(layer, keras.layers.BatchNormalization)}


def head_model(model):
    """The model's head layers (after the features layer) on a features input: same layers, same weights."""
    import keras

    index = features_index(model)
    inputs = x = keras.Input(shape=tuple(model.layers[index].output.shape[1:]), name="features")
    for layer in model.layers[index + 1:]:
        x = layer(x)
    return keras.Model(inputs, x, name=f"{model.name}_head")


def cached_datasets(model, df, classes, options):
    """(head model, train, val): cnn.data.loader.Loaded results whose datasets yield (features, one-hot) batches."""
    import keras

    features = keras.Model(model.inputs, model.layers[features_index(model)].output)
    loaded = {split: features_loaded(features, df[df.split == split], classes, options, split)
              for split in ("train", "val")}
    return head_model(model), loaded["train"], loaded["val"]


def features_loaded(features, rows, classes, options, split):
    """One split's features, computed once, as a Loaded of shuffled (train) or ordered (val) batches."""
    from cnn.data.batching import Batching
    from cnn.data.loader import Loaded, flow_from_dataframe, prefetched
    from common.tfenv import quiet_tensorflow

    tf = quiet_tensorflow()
    size = options.image_size
    images = flow_from_dataframe(rows, classes=classes, target_size=(size, size), skip_missing=options.skip_missing,
                                 batching=Batching(batch_size=options.batch_size))
    values, labels = compute(features, images.dataset, store_path(features, rows, classes, options, split))
    count = len(labels)
    order = tf.data.Dataset.range(count)
    if split == "train":  # the permutation the uncached loader draws: same seed, same buffer, same length
        order = order.shuffle(count, seed=options.seed, reshuffle_each_iteration=True)

    def gather(index):
        return values[index].astype("float32"), labels[index]

    def lookup(index):
        x, y = tf.numpy_function(gather, [index], [tf.float32, tf.float32])
        x.set_shape((None, *values.shape[1:]))
        y.set_shape((None, len(classes)))
        return x, y

    # Of unknown length, as the image loader is (it skips undecodable files): Keras then steps the optimizer's
    # iteration count (Adam's bias correction) exactly as it does for the full model, one extra per epoch.
    order = order.filter(lambda index: True)
    dataset = order.batch(options.batch_size).map(lookup, num_parallel_calls=tf.data.AUTOTUNE)
    return Loaded(prefetched(dataset), list(classes), images.file_paths, images.skipped)


def store_path(features, rows, classes, options, split):
    """None (memory), or the .npy file for this split under --cache PATH: keyed by the rows, classes, size
    and the frozen backbone's weights, so features of another model or CSV are never read back."""
    from cnn.data.datasets import cache_for

    if options.cache in ("none", "memory"):
        return None
    digest = hashlib.sha256()
    for weight in features.weights:
        digest.update(weight.numpy().tobytes())
    digest.update(features.layers[-1].compute_dtype.encode())  # mixed precision computes other features
    return f"{cache_for(options.cache, split, rows, classes, options.image_size)}-features-{digest.hexdigest()[:16]}.npy"


def labels_path(path):
    """The one-hot labels file stored beside a features file."""
    return path[:-len(".npy")] + ".labels.npy"


def compute(features, dataset, path):
    """(features array, one-hot labels) over the dataset: read back from `path` when it exists, else computed
    batch by batch into memory or, with a path, into a .npy file written atomically. Keras's compiled
    predict step (inference mode) runs the backbone about 4x faster than calling the model eagerly."""
    import numpy as np

    if path and os.path.isfile(path):
        return np.load(path, mmap_mode="r"), np.load(labels_path(path))
    chunks, labels = [], []
    for images, onehot in dataset:
        chunks.append(np.asarray(features.predict_on_batch(np.asarray(images)), dtype="float32"))  # any backend
        labels.append(onehot.numpy())
    values, labels = np.concatenate(chunks), np.concatenate(labels).astype("float32")
    if path:  # labels first: a features file without its labels is never left behind
        from common.atomic import atomic_path

        for target, array in ((labels_path(path), labels), (path, values)):
            with atomic_path(target) as tmp:
                np.save(tmp, array)
        values = np.load(path, mmap_mode="r")
    log(f"feature cache: {len(values)} images' features computed once ({int(np.prod(values.shape[1:]))} floats each"
        f"{', in ' + path if path else ', in memory'})")
    return values, labels
