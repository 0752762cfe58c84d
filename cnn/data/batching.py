"""How rows become batches: one frozen record (timm's data config) that every loader takes (the files' tf.data
pipeline, the shards reader, the numpy loader) instead of the same seven arguments threaded through each."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Batching:
    """Batch size, order and the training-only transforms of one split's batches."""

    batch_size: int = 32
    shuffle: bool = False  # a fresh seeded order every epoch
    seed: int = None  # the order's, the augmentation's and the mix's seed
    augment: object = None  # cnn.data.augment's dict or text (training only)
    cache: str = None  # None, "memory" or a file path prefix: decoded, resized images kept after the first epoch
    drop_remainder: bool = False  # whole batches only (a multiworker replica's share)
    mix: object = None  # cnn.data.mix's mixup or CutMix text (training only)
