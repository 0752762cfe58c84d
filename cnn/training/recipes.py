"""The recipes (`train-cnn --recipe`): values for every option left to the recipe, one source for the options, the
docs and the tricks that name the recipe setting them."""

FROM_RECIPE = None  # an option left to the recipe

# The recipes (`--recipe`): values for every option left at FROM_RECIPE. `card` is the write-up's original
# (Adam 1e-3, no augmentation, no schedule, patience 3 on validation loss); `default` regularises the same
# network: training-only augmentation, dropout before the classifier, AdamW with weight decay, label
# smoothing, a one-epoch warm-up then cosine decay, patience that grows with --epochs (the schedule keeps
# improving late epochs) and a frozen whitening first layer (+4.8 points on test and +3.5 on outside photos over
# three seeds at 256 px; docs/results/generalisation.md). `patience` None resolves to max(5, epochs // 3).
RECIPES = {
    "card": dict(epochs=20, progressive="none", optimizer="adam", lr=1e-3, weight_decay=0.0, label_smoothing=0.0,
                 schedule="none", warmup_epochs=0, augment="none", dropout=0.0, patience=3, whiten=False),
    "default": dict(epochs=20, progressive="none", optimizer="adamw", lr=1e-3, weight_decay=0.05,
                    label_smoothing=0.1, schedule="cosine", warmup_epochs=1, augment="flip,crop=0.2", dropout=0.5,
                    patience=None, whiten=True),
    # The clothing tutorials' pretrained-backbone recipe (the default for keras.applications architectures):
    # frozen backbone, Adam 5e-4, Dropout(0.5) in the head, and ImageDataGenerator's shear_range=10 (degrees:
    # a shear factor of tan 10 deg = 0.18), zoom_range=0.1 and horizontal_flip; the best checkpoint is kept.
    "transfer": dict(epochs=20, progressive="none", optimizer="adam", lr=5e-4, weight_decay=0.0,
                     label_smoothing=0.0, schedule="none", warmup_epochs=0, augment="flip,zoom=0.1,shear=0.18",
                     dropout=0.5, patience=None, freeze_backbone=True, whiten=False),
}
# `long` (#28): the default's regularisation over 6x the epochs, the first three quarters at 128 px (about a third
# of a 256-px epoch's cost each, validation included), about 3.3x the default run's time (#28's budget: 4x); cosine
# decay to 0 makes the last epochs the best, so it does not stop early (docs/results/long-recipe.md). Without the
# default's whitening: not measured at this length where it would count (two of three seeds collapsed in bfloat16
# on an AMX CPU, docs/results/long-recipe-whiten-bf16.md).
RECIPES["long"] = dict(RECIPES["default"], epochs=120, progressive="128:0.75", patience=120, whiten=False)
for _recipe in RECIPES.values():  # the from-scratch recipes train every layer
    _recipe.setdefault("freeze_backbone", False)
