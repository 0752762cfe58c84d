"""Command lines: train-cnn, evaluate-cnn, predict-cnn, and `python -m cnn train|evaluate|predict|show-batch`."""
import argparse
import sys
from pathlib import Path

from cnn.runs.tta import TTA
from cnn.evaluation.gradcam import DEFAULT_METHOD, METHODS
from cnn.training.options import add_to_parser, typed_options
from common.command import ArgumentParser, run_command
from common.console import writer
from common.tfenv import check_keras_backend


def _parser(prog, description):
    """An argparse parser with the project's conventions (defaults shown in --help)."""
    return ArgumentParser(prog=prog, description=description)


def _positive(kind):
    """An argparse type accepting numbers > 0 of `kind`."""
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
        return value
    return parse


def _add_cam_options(p):
    """--cam-layer and --cam-method: which feature map explains a class, and how (cnn.evaluation.gradcam)."""
    p.add_argument("--cam-layer", metavar="NAME", default=None, help="with --cam: the layer whose feature map "
                   "is explained; None: the last one with a spatial output (the map the Flatten or pooling head reads)")
    p.add_argument("--cam-method", choices=tuple(METHODS), default=DEFAULT_METHOD, help="with --cam: hirescam "
                   "(gradient x feature, position by position: each position's share of the logit behind Flatten, "
                   "the same as gradcam behind global pooling) or gradcam (channels weighted by their spatially "
                   "averaged gradient; behind the card's Flatten head often an empty map)")


def train_parser():
    """train-cnn's options: one per cnn.training.options.TrainOptions field, plus where the run goes."""
    p = ArgumentParser(prog="train-cnn", description="Train a CNN on a labels CSV (train/val splits) into "
                                "a run folder, then score it once on the test split.")
    add_to_parser(p)
    p.add_argument("--out", default=None, help="run folder (default: runs/<arch>-<n>, the next free n)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out (or, without "
                   "--out, the newest under runs/ with a backup/) with its recorded options; only --epochs and "
                   "--patience may change")
    p.add_argument("--repeats", type=_positive(int), default=1, help="train this many runs with seeds --seed, "
                   "--seed+1, ... into OUT/seed-<s>/ and summarise their test metrics (mean, sd, min, max) in "
                   "OUT/summary.csv and summary.json; a rerun keeps finished seeds")
    return p


def train_main(argv=None):
    """train-cnn: parse options, then cnn.training.train.train with exactly the options the user typed."""
    parser = train_parser()
    args = parser.parse_args(argv)
    if "labels" in vars(args) and "data" in vars(args):
        parser.error("--data reads the labels the shards were packed with (their rows.csv): drop --labels")
    if args.repeats > 1 and getattr(args, "strategy", None) == "multiworker":
        parser.error("--strategy multiworker trains one run per process: start one train-cnn per seed")
    if args.repeats > 1 and args.resume:
        parser.error("--repeats reruns its unfinished seeds by itself: drop --resume and run the same command again")

    def action():
        from cnn.training.train import train

        options = typed_options(args)
        if args.repeats == 1:
            return train(out=args.out, resume=args.resume, **options) and None
        from cnn.experiments.repeats import train_repeats
        from cnn.runfolder import default_run_dir

        seed = options.pop("seed", 0)
        out = args.out or default_run_dir(f"{options.get('arch', 'cnn')}-repeats")
        train_repeats(out, args.repeats, options, seed=seed)

    return run_keras_command("train-cnn", action, "interrupted; run the same command again, or train-cnn --resume, "
                                            "to continue from the last finished epoch")


def run_keras_command(prog, action, interrupted="interrupted"):
    """common.command.run_command for a command that loads Keras: KERAS_BACKEND is checked first, in one line."""
    def checked():
        check_keras_backend()
        return action()

    return run_command(prog, checked, interrupted)


def _split_at_separator(argv):
    """(the command's own arguments, the train-cnn options after `--`) of a command that trains several runs."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])


def _training_after_separator(p, shared, own_options):
    """The train-cnn options after `--`, parsed; --out, --resume, --repeats and `own_options` (the command's own)
    are refused there with p.error."""
    train_args = train_parser().parse_args(shared)
    typed = typed_options(train_args)
    if train_args.out or train_args.resume or train_args.repeats != 1 or any(o in typed for o in own_options):
        flags = ", ".join(["--out", "--resume", "--repeats", *(f"--{o}" for o in own_options)])
        p.error(f"after --, give only training options: {flags} are the {p.prog} command's own")
    return train_args


def sweep_main(argv=None):
    """sweep-cnn: every configuration of a grid of train-cnn options over the same seeds, compared."""
    own, shared = _split_at_separator(argv)
    p = _parser("sweep-cnn", "Train every combination of --grid values with --repeats seeds each (one train-cnn "
                             "--repeats folder per configuration under --out), then print and write (sweep.csv, "
                             "sweep.json, sweep.png) each configuration's test metrics as mean +- sd; options "
                             "after -- go to every run. A rerun keeps finished runs and continues interrupted ones.")
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                   help="a train-cnn option and its values, e.g. dropout=0,0.5 (separate them with ; where a value "
                        "holds commas: 'augment=none;flip,crop=0.2'); repeat for a bigger grid")
    p.add_argument("--repeats", type=_positive(int), default=3, help="seeds per configuration")
    p.add_argument("--seed", type=int, default=0, help="the first seed; runs use seed, seed+1, ...")
    p.add_argument("--baseline", metavar="KEY=V,...", default=None, help="the configuration the others are "
                   "compared with (paired difference over the same seeds, 95%% interval); None: no comparison")
    p.add_argument("--out", required=True, help="the sweep's folder")
    args = p.parse_args(own)
    train_args = _training_after_separator(p, shared, ("seed",))
    if getattr(train_args, "strategy", None) == "multiworker" or any(g.startswith("strategy=") for g in args.grid):
        p.error("--strategy multiworker trains one run per process: run train-cnn on every worker for each configuration")

    def action():
        from cnn.experiments.sweep import parse_grid, run_sweep

        run_sweep(out=args.out, grid=parse_grid(args.grid), shared=typed_options(train_args), repeats=args.repeats,
                  seed=args.seed, baseline=args.baseline)

    return run_keras_command("sweep-cnn", action, "interrupted; run the same command again to continue the sweep")


def export_main(argv=None):
    """export-model: a run as a deployable SavedModel, TFLite or ONNX artefact with its classes and metadata."""
    from cnn.inference.export import FORMATS, QUANTIZE

    p = _parser("export-model", "Export a trained run for deployment: a folder holding the model (raw 0-255 RGB "
                                "images of the run's size in, class probabilities out), classes.json and "
                                "export.json. predict-cnn accepts the folder as it accepts the run.")
    p.add_argument("run", help="a train-cnn run folder")
    p.add_argument("--format", choices=FORMATS, default="savedmodel", help="artefact format")
    p.add_argument("--quantize", choices=QUANTIZE, default="none", help="TFLite only: float16 weights, or int8 "
                   "weights and activations calibrated on training images")
    p.add_argument("--calibration", type=_positive(int), default=100, help="training images for int8 calibration")
    p.add_argument("-o", "--out", default=None, help="export folder (default: RUN/export/<format>[-<quantize>])")
    args = p.parse_args(argv)

    def action():
        from cnn.inference.export import export_run

        out = export_run(args.run, fmt=args.format, quantize=args.quantize, out=args.out,
                         calibration=args.calibration)
        writer("export-model")(f"wrote {out} ({args.format}, quantize {args.quantize})")

    return run_keras_command("export-model", action)


def evaluate_main(argv=None):
    """evaluate-cnn: score a run on a split of a labels CSV, print and write its report."""
    p = _parser("evaluate-cnn", "Score a trained run on a labels CSV split: top-1/3/5, balanced accuracy, "
                                "macro F1, per-class table, confusion matrix (for a hierarchical run: the soft "
                                "cascade's, with the hard cascade and the coarse model beside). The run's own test "
                                "split report goes to RUN/; others to RUN/eval-<split>/ or RUN/eval-<csv>-<split>/.")
    p.add_argument("run", help="a train-cnn run folder (flat or hierarchical)")
    p.add_argument("--labels", default=None, help="labels CSV to score, its labels among the run's classes; None: the "
                   "one the run trained on, its image paths resolved from where it trained")
    p.add_argument("--split", choices=("test", "val", "train", "all"), default="test", help="rows to score")
    p.add_argument("--tta", choices=TTA, default="none", help="test-time augmentation: flip averages each image's "
                   "probabilities with its mirror's (the report goes to RUN/eval-<split>-tta-flip/)")
    p.add_argument("--batch-size", type=_positive(int), default=32, help="images per batch")
    p.add_argument("--skip-missing", action="store_true", help="skip rows whose image file is missing")
    p.add_argument("--compare", metavar="OTHER_RUN", default=None, help="also score OTHER_RUN (e.g. a flat run "
                   "beside a hierarchical one, trained on the same labels CSV) on the same rows and print both side "
                   "by side (written to compare.txt and compare.json beside the report); None: off")
    p.add_argument("--data", metavar="SHARDS", default=None, help="score the images of a pack-shards folder "
                   "(packed at the run's size) instead of a CSV's files; None: what the run trained from")
    p.add_argument("--audit", metavar="DIR", action="append", default=[], help="attach an audit-data -o or "
                   "audit-labels --out folder to the run: its figures and picture join RUN/report.html "
                   "(RUN/audits.json; repeatable)")
    p.add_argument("--shifts", action="store_true", help="also score the split under changes of look (closer, "
                   "farther, darker, low contrast, colour cast, greyscale, JPEG, blur): how much of the top-1 "
                   "survives photos that do not look like the dataset's (written to <report folder>/shifts/)")
    p.add_argument("--also-score", metavar="CSV", action="append", default=[], help="also score every row of this "
                   "labels CSV (e.g. photos from outside the dataset; repeatable): its report goes to "
                   "RUN/eval-<name>-all/ and its figures into the report's metrics.json (also_scored)")
    args = p.parse_args(argv)
    if args.labels and args.data:
        p.error("give --labels or --data, not both")

    def action():
        from cnn.evaluation.compare import format_comparison
        from cnn.evaluation.evaluate import evaluate_run
        from cnn.evaluation.reports import format_report

        metrics, out = evaluate_run(args.run, labels=args.labels, split=args.split, batch_size=args.batch_size,
                                    tta=args.tta, audits=args.audit, shifts=args.shifts,
                                    skip_missing=args.skip_missing, compare=args.compare, data=args.data,
                                    also_score=args.also_score)
        print(format_report(metrics), end="")
        if args.shifts:
            from cnn.evaluation.shifts import format_shifts

            print("\nunder shifts of look:\n" + format_shifts(metrics["shifts"]["table"]))
        if args.compare:
            print("\n" + format_comparison(metrics["comparison"]))
        writer("evaluate-cnn")(f"report written to {out}")

    return run_keras_command("evaluate-cnn", action)


def predict_main(argv=None):
    """predict-cnn: print each image's top classes with probabilities (and with --cam draw Grad-CAM heatmaps)."""
    p = _parser("predict-cnn", "Classify images with a trained run or an export-model folder: each image's top "
                               "classes and probabilities.")
    p.add_argument("run", metavar="RUN_OR_EXPORT", help="a train-cnn run folder, or an export-model folder "
                   "(SavedModel, TFLite or ONNX)")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="image files, or folders scanned "
                   "recursively for image files")
    p.add_argument("--top", type=_positive(int), default=3, help="classes shown per image")
    p.add_argument("--tta", choices=TTA, default="none", help="test-time augmentation: flip averages each image's "
                   "probabilities with its mirror's")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    p.add_argument("--cam", metavar="OUTDIR", default=None, help="also write OUTDIR/<image stem>-cam.png per "
                   "image (the heatmap of its top class over it; beside it the true class's when --labels knows "
                   "another) and OUTDIR/cams.csv; None: off")
    _add_cam_options(p)
    p.add_argument("--labels", metavar="CSV", default=None, help="with --cam: a labels CSV whose path column "
                   "names the images, for their true classes; None: top class only")
    args = p.parse_args(argv)

    def action():
        from cnn.inference.predict import FORMATS, predict_images

        results = predict_images(args.run, args.images, top=args.top, tta=args.tta, cam_dir=args.cam,
                                 cam_layer=args.cam_layer, cam_method=args.cam_method, labels_csv=args.labels)
        print(FORMATS[args.format](results))

    return run_keras_command("predict-cnn", action)


def show_batch_main(argv=None):
    """show-batch: draw a titled grid of images from a labels CSV (or a run's worst predictions) to a PNG."""
    p = _parser("show-batch", "Draw a grid of images from a labels CSV, titled with label and split, or with "
                              "--errors RUN the run's worst predictions (lowest probability of the true class). "
                              "The drawn rows are also written to OUT.csv.")
    p.add_argument("--labels", default=None, help="labels CSV; None: labels.csv, or with --errors the "
                   "run's own CSV")
    p.add_argument("-o", "--out", default="batch.png", help="PNG file to write")
    p.add_argument("-n", type=_positive(int), default=16, help="images to draw")
    p.add_argument("--per-class", type=_positive(int), default=None, metavar="K", help="draw K images of every label "
                   "(one grid row each) instead of -n random ones; None: off")
    p.add_argument("--split", choices=("train", "val", "test"), default=None,
                   help="draw from this split only; None: all (test with --errors)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the pick")
    p.add_argument("--errors", metavar="RUN", default=None,
                   help="show this train-cnn run's worst predictions; None: off")
    p.add_argument("--data", metavar="SHARDS", default=None, help="draw the packed images of a pack-shards folder "
                   "(its rows.csv replaces --labels); None: the labels CSV's files")
    p.add_argument("--cols", type=_positive(int), default=None, help="grid columns; None: about square")
    p.add_argument("--cam", action="store_true", help="with --errors: overlay each image with the heatmap of "
                   "its predicted class")
    _add_cam_options(p)
    args = p.parse_args(argv)
    if args.errors and args.per_class:
        p.error("--errors shows the worst predictions overall; it cannot be combined with --per-class")
    if args.data and (args.labels or args.errors):
        p.error("--data draws the packed images of a shards folder; it cannot be combined with --labels or --errors")

    def action():
        from cnn.inference.show_batch import show_batch

        drawn = show_batch(labels_csv=args.labels, out_png=args.out, n=args.n, per_class=args.per_class,
                           split=args.split, seed=args.seed, errors_run=args.errors, cols=args.cols, cam=args.cam,
                           cam_layer=args.cam_layer, cam_method=args.cam_method, data=args.data)
        print(f"show-batch: drew {len(drawn)} images to {args.out} (table: {Path(args.out).with_suffix('.csv')})",
              file=sys.stderr)

    return run_keras_command("show-batch", action)


def pack_shards_main(argv=None):
    """pack-shards: a labels CSV's images as TFRecord shards (one set per split) with an index, for --data."""
    from cnn.data.pack import JPEG_QUALITY, SHARD_MB

    p = _parser("pack-shards", "Decode every image of a labels CSV once, resize it to the training size and write "
                               "it (JPEG, or raw pixels with --raw) with its label, group, split and path into "
                               "TFRecord shards, one set per split, with OUT/index.json and OUT/rows.csv; train-cnn, "
                               "evaluate-cnn and show-batch read them with --data OUT. A rerun with the same inputs "
                               "keeps the finished shards.")
    p.add_argument("labels", metavar="LABELS.csv", help="labels CSV (path,label,split); its image paths resolve from the current folder")
    p.add_argument("out", metavar="OUT", help="folder for the shards (new, or an earlier pack of the same inputs)")
    p.add_argument("--image-size", type=_positive(int), default=256, metavar="SIZE", help="images are resized to SIZE x SIZE "
                   "pixels (train with the same --image-size)")
    p.add_argument("--shard-mb", type=_positive(float), default=SHARD_MB, metavar="MIB", help="planned shard size in MiB")
    p.add_argument("--workers", type=_positive(int), default=None, metavar="N", help="decoding threads; None: one per CPU core")
    p.add_argument("--raw", action="store_true", help="store raw uint8 pixels (exactly the files loader's, 4-8x "
                   "the bytes of JPEG) instead of re-encoding as JPEG")
    p.add_argument("--quality", type=int, default=JPEG_QUALITY, metavar="Q", help="JPEG quality (1-100) of the re-encoded images")
    p.add_argument("--seed", type=int, default=0, help="seed of the train split's packed order (shards mix classes)")
    args = p.parse_args(argv)

    def action():
        from cnn.data.pack import pack_shards

        pack_shards(labels=args.labels, out=args.out, image_size=args.image_size, shard_mb=args.shard_mb,
                    workers=args.workers, raw=args.raw, quality=args.quality, seed=args.seed)

    return run_keras_command("pack-shards", action, "interrupted; run the same command again to keep the finished shards "
                                              "and pack the rest")


def audit_data_main(argv=None):
    """audit-data: duplicates and leaks across splits, shared product groups and odd images of a labels CSV."""
    p = _parser("audit-data", "Find exact duplicates (same decoded pixels) and near-duplicates (re-encoded, resized, "
                              "slightly cropped copies) within and across splits, product groups sharing images, "
                              "and odd images (tiny, extreme aspect, near-blank, grayscale, unreadable). Writes "
                              "OUT/duplicates.csv, odd_images.csv, audit.json and duplicates.png; the dataset and "
                              "the labels CSV are never changed.")
    p.add_argument("labels", metavar="LABELS.csv", help="labels CSV (path,label,split[,group]) whose images to audit")
    p.add_argument("-o", "--out", default="audit", metavar="DIR", help="folder for the audit's files")
    p.add_argument("--write-clean", metavar="CLEAN.csv", help="also write a labels CSV with one image of each "
                   "duplicate set kept (its train member when it has one) and the other copies dropped")
    p.add_argument("--workers", type=_positive(int), default=None, metavar="N", help="decoding threads; None: one per core")
    args = p.parse_args(argv)

    def action():
        from cnn.audit.audit_data import audit_data

        audit_data(args.labels, out=args.out, write_clean=args.write_clean, workers=args.workers)

    return run_keras_command("audit-data", action)


def audit_labels_main(argv=None):
    """audit-labels: likely label errors by confident learning on K-fold out-of-fold probabilities."""
    own, shared = _split_at_separator(argv)
    p = _parser("audit-labels", "Train K runs by group-aware cross-validation over the train split (OUT/fold-<k>/; a "
                                "rerun keeps finished folds), collect each image's out-of-fold probabilities and "
                                "rank likely label errors with cleanlab's confident learning: OUT/label_issues.csv, "
                                "audit_labels.json, suspects.png. Options after -- go to every fold's train-cnn.")
    p.add_argument("labels", metavar="LABELS.csv", help="labels CSV whose train split is audited")
    p.add_argument("--folds", type=_positive(int), default=5, metavar="K", help="cross-validation folds")
    p.add_argument("--out", required=True, help="the audit's folder")
    p.add_argument("--write-clean", metavar="CLEAN.csv", help="also write the labels CSV without the flagged images")
    p.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")
    args = p.parse_args(own)
    typed = typed_options(_training_after_separator(p, shared, ("labels",)))
    for seen in ("teacher", "init"):
        if typed.get(seen, "none") != "none":
            p.error(f"after --, --{seen} is refused: a run trained on this train split has seen every fold's held-out "
                    f"images, so the probabilities would not be out of fold")

    def action():
        from cnn.audit.label_issues import audit_labels

        audit_labels(args.labels, out=args.out, folds=args.folds, write_clean=args.write_clean, options=typed,
                     seed=args.seed)

    return run_keras_command("audit-labels", action, "interrupted; run the same command again to keep the finished folds")


def serve_main(argv=None):
    """serve-cnn: a run, ensemble or export behind HTTP (Open Inference Protocol, /predict, /metrics, a page)."""
    p = _parser("serve-cnn", "Serve a trained run over HTTP: the Open Inference Protocol (KServe V2), POST /predict "
                             "for an uploaded photo, GET /metrics (Prometheus) and a page at / (docs/serve.md).")
    p.add_argument("run", metavar="RUN_OR_EXPORT", help="a train-cnn run folder, a --repeats folder (its ensemble), "
                   "a hierarchical run or an export-model folder")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; any other than this machine's "
                   "loopback needs --token-file")
    p.add_argument("--port", type=_positive(int), default=8080, help="TCP port")
    p.add_argument("--max-batch", type=_positive(int), default=32, help="images in one model call: concurrent "
                   "requests are gathered up to this many")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long the first request of a batch waits for "
                   "others to join it")
    p.add_argument("--max-queue", type=_positive(int), default=256, help="requests in progress (being decoded or "
                   "waiting for the model); beyond it the server answers 503 with Retry-After at once")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds a request may wait for the model "
                   "before it is answered 504")
    p.add_argument("--max-mb", type=float, default=20.0, help="largest request body in MB (413 beyond it)")
    p.add_argument("--read-timeout", type=float, default=10.0, help="seconds a client may take to send its request "
                   "body (408 beyond it: a client sending a byte a second holds no connection for long)")
    p.add_argument("--workers", type=_positive(int), default=1, help="server processes, each with its own copy of "
                   "the model")
    p.add_argument("--token-file", metavar="F", default=None, help="a file holding the bearer token every request "
                   "but the page and health checks must send (Authorization: Bearer TOKEN); None: no token")
    p.add_argument("--tta", choices=TTA, default="none", help="test-time augmentation: flip averages each image's "
                   "probabilities with its mirror's")
    args = p.parse_args(argv)
    if args.max_wait_ms < 0 or min(args.timeout, args.max_mb, args.read_timeout) <= 0:
        p.error("--max-wait-ms must be 0 or more; --timeout, --max-mb and --read-timeout more than 0")

    def action():
        from cnn.serve.server import serve

        serve(args.run, host=args.host, port=args.port, workers=args.workers, token_file=args.token_file,
              tta=args.tta, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
              timeout_s=args.timeout, max_bytes=int(args.max_mb * 1_000_000), read_timeout_s=args.read_timeout)

    return run_keras_command("serve-cnn", action)


COMMANDS = {"train": train_main, "sweep": sweep_main, "evaluate": evaluate_main, "predict": predict_main,
            "show-batch": show_batch_main, "export": export_main,
            "pack-shards": pack_shards_main, "audit-data": audit_data_main,
            "audit-labels": audit_labels_main, "serve": serve_main}


def main(argv=None):
    """`python -m cnn COMMAND ...`: dispatch to one command's main."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m cnn {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    return COMMANDS[argv[0]](argv[1:])
