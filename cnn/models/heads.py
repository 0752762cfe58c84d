"""The classifier head every architecture ends with, and the layer names that divide a model into backbone and head.

A model is `image -> backbone -> FEATURES layer -> head -> CLASSIFIER`. Transfer learning (cnn.models.transfer) and
the feature cache (cnn.training.feature_cache) rely on this split: the backbone is everything before the features
layer (the pooling that turns feature maps into one vector), the head everything after it.
"""

FLATTEN = "flatten"
GLOBAL_POOL = "global_pool"
FEATURES = (FLATTEN, GLOBAL_POOL)  # the features layer is one of these
CLASSIFIER = "predictions"  # the softmax Dense layer: replaced when a run starts from one with other classes
GRID = "grid"  # --progressive's resize of the last feature map to the full-size grid, before Flatten


def add_head(x, num_classes, pooling="flatten", hidden=0, dropout=0.0, feature_dropout=True, grid=False):
    """Pool `x` (flatten or global average), then [Dropout] -> Dense(hidden, relu) -> Dropout -> softmax.

    `grid` puts a parameter-free bilinear resize of the feature map to its own (full-size) shape before Flatten:
    the identity at the built input size, and what lets the same weights train on smaller images (--progressive).
    `feature_dropout` puts a Dropout before the hidden layer too (the from-scratch models' head); the
    keras.applications head (GlobalAveragePooling, Dense(100), Dropout(0.5), softmax) has none there.
    The softmax output is float32 even under a mixed-precision policy.
    """
    from keras import layers

    if pooling == "flatten":
        if grid:
            x = layers.Resizing(x.shape[1], x.shape[2], interpolation="bilinear", name=GRID)(x)
        x = layers.Flatten(name=FLATTEN)(x)
    elif pooling == "global":
        x = layers.GlobalAveragePooling2D(name=GLOBAL_POOL)(x)
    else:
        raise ValueError(f"head must be 'flatten' or 'global', not {pooling!r}")
    if hidden:  # a small Dense layer between the features and the classifier
        if dropout and feature_dropout:
            x = layers.Dropout(dropout, name="dropout_features")(x)
        x = layers.Dense(hidden, activation="relu", name="hidden")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name=CLASSIFIER)(x)
