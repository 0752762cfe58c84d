"""The numpy loader's batches (cnn.data.numpy_loader) as a Keras PyDataset: an ordinary class, in a module that
imports Keras at once and is imported only when the numpy loader runs."""
import copy
import os

import keras
import numpy as np

from cnn.data.numpy_loader import check_supported, crop_and_flip, decode
from common.errors import UsageError


class ImageBatches(keras.utils.PyDataset):
    """Batches of the rows in a fresh seeded order every epoch (`shuffle`); `repeat()` makes it endless."""

    def __init__(self, paths, labels, depth, size, batch_size, skipped, shuffle, seed, augment, cache,
                 drop_remainder):
        super().__init__(workers=os.cpu_count() or 1, use_multiprocessing=False)
        self.paths, self.labels, self.depth, self.size = list(paths), labels, depth, size
        self.batch_size, self.skipped, self.shuffle, self.seed = batch_size, skipped, shuffle, seed or 0
        self.augment, self.cached = augment, {} if cache == "memory" else None
        self.drop_remainder, self.endless, self.epoch = drop_remainder, False, 0

    def __len__(self):
        whole, rest = divmod(len(self.paths), self.batch_size)
        return whole + bool(rest and not self.drop_remainder)

    @property
    def num_batches(self):
        return None if self.endless else len(self)

    def repeat(self):
        """This dataset without end, its epochs one after another (what tf.data's repeat() gives); it shares
        this one's rows, skip log and memory cache."""
        endless = copy.copy(self)
        endless.endless = True
        return endless

    def on_epoch_end(self):
        self.epoch += 1

    def order(self, epoch):
        """The rows' order in `epoch`: a permutation drawn from (seed, epoch), or as listed."""
        count = len(self.paths)
        return np.random.default_rng([self.seed, epoch]).permutation(count) if self.shuffle else np.arange(count)

    def image(self, row):
        """Row `row`'s decoded image (from the memory cache once decoded), or None after recording a skip."""
        if self.cached is not None and row in self.cached:
            return self.cached[row]
        image = decode(self.paths[row], self.size)
        if image is None:
            self.skipped.record(self.paths[row])
        if self.cached is not None:
            self.cached[row] = image
        return image

    def __getitem__(self, index):
        # Endless, Keras's enqueuer numbers the batches on across its epochs: the index alone says the pass.
        epoch, index = divmod(index, len(self)) if self.endless else (self.epoch, index)
        rows = self.order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        kept = [(row, image) for row in rows if (image := self.image(row)) is not None]
        if not kept:
            raise UsageError(f"no image of a batch could be decoded (first: {self.paths[rows[0]]}); check "
                             "the files")
        if self.augment:
            draws = np.random.default_rng([self.seed, epoch, index]).uniform(size=(len(kept), 4))
            kept = [(row, crop_and_flip(image, self.augment, d)) for (row, image), d in zip(kept, draws)]
        images = np.stack([image for _, image in kept]).astype(np.float32)
        if self.labels is None:
            return images
        return images, np.eye(self.depth, dtype=np.float32)[[self.labels[row] for row, _ in kept]]


def image_batches(paths, labels, depth, size, skipped, batching):
    """A PyDataset of (float32 [B, H, W, 3] pixels, float32 one-hot [B, depth]) batches, or pixels alone when
    `labels` is None, decoding in Keras's worker threads; `batching`: cnn.data.batching.Batching."""
    b = batching
    check_supported(b.augment, b.cache, b.mix)
    return ImageBatches(paths, labels, depth, tuple(size), b.batch_size, skipped, b.shuffle, b.seed, b.augment,
                        b.cache, b.drop_remainder)
