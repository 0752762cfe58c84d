"""What a run starts from and what it trains: --weights, --init, --freeze-backbone and --fine-tune's unfreezing.

The backbone is every layer before the features layer (cnn.models.heads.FEATURES: the pooling that turns the
feature maps into one vector); the head is the rest. Freezing sets `trainable = False`, which in Keras 3
also keeps BatchNormalization in inference mode (its moving statistics are used and not updated).
"""
from cnn.models.heads import CLASSIFIER, FEATURES
from common.console import writer
from common.errors import UsageError

log = writer("train-cnn")  # transfer's lines belong to the training that builds the model


def prepare(options):
    """Before the run folder exists: the starting weights must load and --init must name a run of the same
    architecture (a one-line UsageError otherwise, and nothing is written)."""
    from cnn.models.backbones import check_weights
    from cnn.runfolder import load_config

    if options.weights != "none":
        check_weights(options.arch, options.image_size, options.weights)
    if options.init != "none":
        recorded = load_config(options.init)["options"].get("arch", "cnn")
        if recorded != options.arch:
            raise UsageError(f"--init {options.init} was trained with --arch {recorded}; pass --arch {recorded} "
                             f"to start from it")
    if options.freeze_backbone and options.weights == "none" and options.init == "none":
        log("warning: the frozen backbone keeps random weights (--weights none and no --init); only the head learns")


def build(options, classes):
    """The run's model: the architecture with its starting weights (--weights or --init), backbone frozen on
    request; not yet compiled."""
    from cnn.models.architectures import PRETRAINED, build_model

    size = options.image_size
    extra = {} if options.hidden is None else {"hidden": options.hidden}
    if options.arch in PRETRAINED:
        extra["weights"] = None if options.weights == "none" else options.weights
    else:
        extra.update(batch_norm=options.batch_norm, grid=options.progressive != "none")
    model = build_model(options.arch, len(classes), (size, size, 3), dropout=options.dropout, **extra)
    if options.init != "none":
        start_from(model, options.init, classes)
    if options.freeze_backbone:
        for layer in backbone_layers(model):
            layer.trainable = False
    return model


def features_index(model):
    """The position in model.layers of the features layer (the first of cnn.models.heads.FEATURES)."""
    names = [layer.name for layer in model.layers]
    for i, name in enumerate(names):
        if name in FEATURES:
            return i
    raise ValueError(f"model {model.name!r} has no features layer (one of {', '.join(FEATURES)})")


def backbone_layers(model):
    """The layers before the features layer, the input layer left out."""
    return model.layers[1:features_index(model)]


def start_from(model, run_dir, classes):
    """Copy every weight of RUN's model into `model`; the classifier starts afresh when RUN's classes differ."""
    from cnn.models.backbones import copy_weights
    from cnn.runfolder import load_run

    run = load_run(run_dir)
    keep = () if run.classes == list(classes) else (CLASSIFIER,)
    try:
        copied = copy_weights(run.model.layers, model.layers, keep=keep)
    except ValueError as error:
        raise UsageError(f"--init {run_dir}: {error}; give the --image-size (for a Flatten head) and --hidden "
                         f"it was trained with") from None
    what = "its classifier starts afresh (other classes)" if keep else "classifier included (same classes)"
    log(f"started from {run_dir}: {copied} layers' weights copied; {what}")


def unfreeze_top(model, n):
    """Make the top `n` backbone layers that hold weights trainable, BatchNormalization (and fixed
    preprocessing) left frozen so it stays in inference mode; returns their names, bottom first."""
    import keras

    from cnn.models.backbones import PREPROCESS

    frozen_kinds = (keras.layers.BatchNormalization, keras.layers.Normalization)  # statistics, not learnt weights
    candidates = [layer for layer in backbone_layers(model)  # the caffe preprocessing's constants stay fixed
                  if layer.weights and not isinstance(layer, frozen_kinds) and layer.name != PREPROCESS]
    chosen = candidates[-n:] if n else []
    if n > len(candidates):
        log(f"warning: --fine-tune {n}: the backbone has {len(candidates)} layers with weights; all are unfrozen")
    for layer in chosen:
        layer.trainable = True
    return [layer.name for layer in chosen]


def provenance(options):
    """config.json's record of what the run started from: the weights file's and the --init model's SHA-256
    and resolved paths, so the run folder names exactly the files it depends on."""
    from pathlib import Path

    from cnn.runfolder import MODEL
    from common.hashing import sha256_file

    record = {}
    if options.weights not in ("imagenet", "none"):
        record["weights"] = {"resolved": str(Path(options.weights).resolve()), "sha256": sha256_file(options.weights)}
    if options.init != "none":
        model = Path(options.init) / MODEL
        record["init"] = {"resolved": str(Path(options.init).resolve()), "model_sha256": sha256_file(model)}
    return record
