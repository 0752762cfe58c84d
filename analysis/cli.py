"""analyze-model: per-layer FLOPs and receptive field of a Keras CNN, printed as tables and saved as CSV/JSON."""
import argparse
import sys

from cnn.models import ARCHITECTURES, MIN_IMAGE_SIZE
from common.command import ArgumentParser, run_command

PROG = "analyze-model"
FORMATS = ("table", "markdown", "csv", "json")
DEFAULT_ONLY = ("--input-size", "--classes", "--arch")
MAX_INPUT_SIZE = 2048  # analysis builds the model: at 2048 px the card's Dense layer already holds 380M weights


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
                    "(receptive field). With neither --flops nor --receptive-field, both are printed.")
    parser.add_argument("model", nargs="?", metavar="MODEL_OR_RUN",
                        help="a .keras/.h5 model file or a train-cnn run folder (its model.keras); "
                             "omitted: the default train-cnn architecture")
    parser.add_argument("--flops", action="store_true", help="print the per-layer MACs/FLOPs table")
    parser.add_argument("--receptive-field", action="store_true", help="print the per-layer receptive-field table")
    parser.add_argument("--empirical", action="store_true",
                        help="also measure each receptive field by gradients and print it beside the analytic one "
                             "(one backward pass per layer)")
    parser.add_argument("--convention", choices=("standard", "tf-profiler"), default="standard",
                        help="FLOPs column: 'standard' (1 MAC = 2 FLOPs, rules printed with the table) or what "
                             "TensorFlow's profiler (tf.compat.v1.profiler float_operation) counts")
    parser.add_argument("--input-size", type=int, default=256,
                        help="input height and width in pixels of the default architecture (no MODEL_OR_RUN only)")
    parser.add_argument("--classes", type=int, default=46,
                        help="number of classes of the default architecture (no MODEL_OR_RUN only)")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="cnn",
                        help="the train-cnn architecture to build (no MODEL_OR_RUN only)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="how to print the tables")
    parser.add_argument("--out", metavar="DIR",
                        help="write analysis_flops.csv, analysis_receptive_field.csv and analysis.json here "
                             "(default: into the run folder when MODEL_OR_RUN is one, else nowhere)")
    return parser


def parse_args(argv):
    """Parse and cross-check the options: --input-size, --classes and --arch shape the default model only."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not (args.flops or args.receptive_field):
        args.flops = args.receptive_field = True
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

    if args.empirical:
        print(f"{PROG}: measuring receptive fields by gradients (one backward pass per layer)...", file=sys.stderr)
    model, source, run_dir = load_model(args.model, input_size=args.input_size, classes=args.classes, arch=args.arch)
    tables, meta = analyze(model, flops=args.flops, receptive_field=args.receptive_field,
                           empirical=args.empirical, convention=args.convention, source=source)
    for warning in meta["warnings"]:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    sys.stdout.write(render(tables, args.format, meta))
    if args.format == "csv":
        for table in tables:
            print("\n".join(table.summary), file=sys.stderr)
    out_dir = args.out or run_dir
    if out_dir:
        written = write_files(tables, meta, out_dir)
        print(f"{PROG}: wrote {', '.join(map(str, written))}", file=sys.stderr)
