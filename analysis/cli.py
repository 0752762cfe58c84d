"""analyze-model: per-layer FLOPs, receptive field (theoretical and effective) and measured time of a Keras CNN,
printed as tables and saved as CSV/JSON."""
import argparse
import sys

from cnn.models.architectures import ARCHITECTURES, DEFAULT_ARCH, MIN_IMAGE_SIZE
from common.command import ArgumentParser, run_command
from common.console import writer

PROG = "analyze-model"
say = writer(PROG)
FORMATS = ("table", "markdown", "csv", "json")
DEFAULT_ONLY = ("--input-size", "--classes", "--arch")
MAX_INPUT_SIZE = 2048  # analysis builds the model: at 2048 px the card's Dense layer already holds 380M weights
ERF_ONLY = ("layers", "n", "images", "plot")  # options of --effective-rf (None when not given)
TIMING_ONLY = ("batch_size", "repeats", "training_step")
ERF_N = {"random": 16, "images": 64}  # default number of inputs the ERF is averaged over
PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except the uninformative None/False of optional paths and flags."""

    def _get_help_string(self, action):
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def build_parser():
    """analyze-model's options."""
    parser = ArgumentParser(
        prog=PROG, formatter_class=_HelpFormatter,
        description="Explain a Keras model: what each layer costs (MACs, FLOPs) and what each layer can see "
                    "(receptive field), where it really looks (effective receptive field) and how long each layer "
                    "takes. With none of --flops, --receptive-field, --effective-rf, --timing: the first two.")
    parser.add_argument("model", nargs="?", metavar="MODEL_OR_RUN",
                        help="a .keras/.h5 model file or a train-cnn run folder (its model.keras); "
                             "omitted: the default train-cnn architecture")
    parser.add_argument("--flops", action="store_true", help="print the per-layer MACs/FLOPs table")
    parser.add_argument("--receptive-field", action="store_true", help="print the per-layer receptive-field table")
    parser.add_argument("--empirical", action="store_true",
                        help="also measure each receptive field by gradients and print it beside the analytic one "
                             "(one backward pass per layer)")
    _add_measurement_options(parser)
    parser.add_argument("--convention", choices=("standard", "tf-profiler"), default="standard",
                        help="FLOPs column: 'standard' (1 MAC = 2 FLOPs, rules printed with the table) or what "
                             "TensorFlow's profiler (tf.compat.v1.profiler float_operation) counts")
    parser.add_argument("--input-size", type=int, default=256,
                        help="input height and width in pixels of the default architecture (no MODEL_OR_RUN only)")
    parser.add_argument("--classes", type=int, default=46,
                        help="number of classes of the default architecture (no MODEL_OR_RUN only)")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default=DEFAULT_ARCH,
                        help="the train-cnn architecture to build (no MODEL_OR_RUN only)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="how to print the tables")
    parser.add_argument("--out", metavar="DIR",
                        help="write analysis_flops.csv, analysis_receptive_field.csv, analysis_effective_rf.csv, "
                             "analysis_timing.csv (those computed) and analysis.json here "
                             "(default: into the run folder when MODEL_OR_RUN is one, else nowhere)")
    return parser


def _add_measurement_options(parser):
    """--effective-rf and --timing, with their own options."""
    erf = parser.add_argument_group("effective receptive field (gradients of each layer's centre unit)")
    erf.add_argument("--effective-rf", action="store_true",
                     help="measure each layer's effective receptive field (Luo et al. 2016) beside its theoretical one")
    erf.add_argument("--layers", type=_names, metavar="NAME,NAME",
                     help="layers to measure (default: every convolution, pooling or padding layer)")
    erf.add_argument("--n", type=int, metavar="N",
                     help=f"inputs to average over (default {ERF_N['random']}, or {ERF_N['images']} with --images)")
    erf.add_argument("--images", metavar="CSV",
                     help="a labels CSV: average over its images (`path` column) with the model's own weights "
                          "(default: random weights and random pixels)")
    erf.add_argument("--plot", metavar="FILE",
                     help="draw the ERF heatmaps beside the theoretical fields (.png, .svg, .pdf, .jpg)")
    timing = parser.add_argument_group("measured time per layer")
    timing.add_argument("--timing", action="store_true",
                        help="time every layer on its real inputs, and the whole model, on this machine")
    timing.add_argument("--batch-size", type=int, metavar="B", help="images per timed call (default 32)")
    timing.add_argument("--repeats", type=int, metavar="R", help="timed calls per layer, after a warm-up (default 10)")
    timing.add_argument("--training-step", action="store_true", default=None,
                        help="time forward + backward (gradients w.r.t. inputs and weights) instead of inference")


def _names(text):
    """NAME,NAME -> a tuple of names (blanks dropped)."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one layer name")
    return names


def _check_measurement_options(parser, args):
    """Options of --effective-rf or --timing need it; counts must be positive; fill in their defaults."""
    for flag, options in (("--effective-rf", ERF_ONLY), ("--timing", TIMING_ONLY)):
        given = [name for name in options if getattr(args, name) is not None]
        if given and not getattr(args, flag[2:].replace("-", "_")):
            parser.error(f"{', '.join('--' + name.replace('_', '-') for name in given)} need {flag}")
    for name in ("n", "batch_size", "repeats"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be 1 or more, not {getattr(args, name)}")
    if args.plot and not args.plot.lower().endswith(PLOT_SUFFIXES):
        parser.error(f"--plot {args.plot}: name a {', '.join(PLOT_SUFFIXES)} file")
    args.n = args.n or ERF_N["images" if args.images else "random"]
    args.batch_size, args.repeats = args.batch_size or 32, args.repeats or 10
    args.training_step = bool(args.training_step)


def parse_args(argv):
    """Parse and cross-check the options: --input-size, --classes and --arch shape the default model only."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.flops or args.receptive_field or args.effective_rf or args.timing):
        args.flops = args.receptive_field = True
    _check_measurement_options(parser, args)
    if args.empirical and not args.receptive_field:
        parser.error("--empirical measures receptive fields: add --receptive-field (or drop --flops)")
    if args.classes < 2:
        parser.error(f"--classes must be 2 or more, not {args.classes}")
    low = MIN_IMAGE_SIZE[args.arch]
    if not low <= args.input_size <= MAX_INPUT_SIZE:
        parser.error(f"--input-size {args.input_size}: must be between {low} (the smallest input --arch {args.arch} "
                     f"can take) and {MAX_INPUT_SIZE}")
    given = [opt for opt in DEFAULT_ONLY if any(arg == opt or arg.startswith(opt + "=") for arg in argv)]
    if args.model and given:
        parser.error(f"{', '.join(given)} shape the default architecture only; a saved model has its own")
    return args


def main(argv=None):
    """analyze-model: print the requested tables; exit 0, 2 with one line for a user error, 130 on Ctrl-C."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    return run_command(PROG, lambda: analyze_command(args))


def analyze_command(args):
    """Load or build the model, analyse it, print the tables and write the files."""
    from analysis.analyze import analyze
    from analysis.loading import load_model
    from analysis.report import render, write_files

    for flag, what in ((args.empirical, "receptive fields by gradients (one backward pass per layer)"),
                       (args.effective_rf, f"effective receptive fields over {args.n} inputs"),
                       (args.timing, f"the time of every layer ({args.repeats} repeats, batch {args.batch_size})")):
        if flag:
            say(f"measuring {what}...")
    model, source, run_dir = load_model(args.model, input_size=args.input_size, classes=args.classes, arch=args.arch)
    tables, meta = analyze(model, flops=args.flops, receptive_field=args.receptive_field,
                           empirical=args.empirical, convention=args.convention, source=source,
                           effective_rf=_erf_options(args), timing=_timing_options(args))
    for warning in meta["warnings"]:
        say(f"warning: {warning}")
    sys.stdout.write(render(tables, args.format, meta))
    if args.format == "csv":
        for table in tables:
            print("\n".join(table.summary), file=sys.stderr)
    out_dir = args.out or run_dir
    if out_dir:
        written = write_files(tables, meta, out_dir)
        say(f"wrote {', '.join(map(str, written))}")


def _erf_options(args):
    """The ErfOptions of --effective-rf, or None."""
    if not args.effective_rf:
        return None
    from analysis.effective_rf import ErfOptions

    return ErfOptions(layers=args.layers, n=args.n, images=args.images, plot=args.plot)


def _timing_options(args):
    """The TimingOptions of --timing, or None."""
    if not args.timing:
        return None
    from analysis.timing import TimingOptions

    return TimingOptions(batch_size=args.batch_size, repeats=args.repeats, training_step=args.training_step)
