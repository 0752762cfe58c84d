"""Test-time augmentation: a model's probabilities averaged over an image and its left-right mirror."""

TTA = ("none", "flip")  # --tta choices: none, or the mean over the image and its left-right mirror


def mirrored(images):
    """The batch (N, H, W, C), numpy or tensor, flipped left to right."""
    return images[:, :, ::-1, :]


class FlipAverage:
    """Wraps anything with predict_on_batch (a Keras model, a hierarchical Cascade): the mean of its outputs on
    the images and on their mirror, as fastai's and timm's flip TTA do."""

    def __init__(self, model):
        self.model = model

    def predict_on_batch(self, images):
        import numpy as np

        return (np.asarray(self.model.predict_on_batch(images), np.float64)
                + np.asarray(self.model.predict_on_batch(mirrored(images)), np.float64)) / 2

    def __getattr__(self, name):  # everything else (split, tree, image_size ...) is the wrapped model's
        return getattr(self.model, name)


def with_tta(model, tta):
    """`model` itself for tta "none", else wrapped to average over the views."""
    return model if tta == "none" else FlipAverage(model)
