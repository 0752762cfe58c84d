"""Test-time augmentation: a model's probabilities averaged over an image and its left-right mirror."""

TTA = ("none", "flip")  # --tta choices: none, or the mean over the image and its left-right mirror


def mirrored(images):
    """The batch (N, H, W, C), numpy or tensor, flipped left to right."""
    return images[:, :, ::-1, :]


def flip_mean(predict):
    """`predict` (a batch -> outputs function) averaged over each batch and its mirror, as fastai's and timm's
    flip TTA do."""
    def averaged(images):
        import numpy as np

        return (np.asarray(predict(images), np.float64) + np.asarray(predict(mirrored(images)), np.float64)) / 2

    return averaged


class Wrapped:
    """A predictor around `model` that changes how it predicts; everything else (split, tree, image_size ...) is
    the wrapped model's."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        return getattr(self.model, name)


class FlipAverage(Wrapped):
    """Wraps anything with predict_on_batch (a Keras model, a hierarchical Cascade, an ensemble) so that it
    predicts by flip_mean."""

    def __init__(self, model):
        super().__init__(model)
        self.predict_on_batch = flip_mean(model.predict_on_batch)


def with_tta(model, tta, shift=None):
    """`model` itself for tta "none", else wrapped to average over the views; with `shift` (a function wrapping a
    predictor, evaluate-cnn --shifts) the images are changed first, so the views are of the changed image."""
    model = model if tta == "none" else FlipAverage(model)
    return model if shift is None else shift(model)
