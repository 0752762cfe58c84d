"""make-labels: scan a folder tree of clothing photos and write the labels CSV (path,label,group,split)."""
import sys

from common.command import ArgumentParser, run_command
from common.console import writer
from common.schema import IMAGE_EXTENSIONS
from labeling.choices import SOURCES, SPLIT_METHODS, UNKNOWN_ACTIONS

PROG = "make-labels"


def build_parser():
    """The argument parser; every option maps onto a keyword of labeling.labels.make_labels."""
    parser = ArgumentParser(
        prog=PROG,
        description=f"Scan ROOT for images ({' '.join('.' + e for e in sorted(IMAGE_EXTENSIONS))}, any case), label each by its folder "
                    "name's last '_' word, split train/val/test, and write the labels CSV (stdout unless -o). "
                    "A summary table and warnings go to stderr.")
    parser.add_argument("root", metavar="ROOT", help="folder holding the images, e.g. deepfashion/ (img/, Anno/, "
                                                     "Eval/) or a train/ val/ test/ tree of class folders")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the CSV to FILE (atomically) and the summary to FILE's stem + .summary.json "
                             "instead of the CSV to stdout")
    parser.add_argument("--source", choices=SOURCES, default="suffix",
                        help="labels from folder names (suffix), from Anno/list_category_img.txt (official), or "
                             "from folder names with an official_label column and an agreement report (check)")
    parser.add_argument("--split", choices=SPLIT_METHODS, default="auto",
                        help="train/ val|validation/ test/ folders on disk (folders), Eval/list_eval_partition.txt "
                             "(official), seeded stratified split by product folder (group), no split (none); "
                             "auto picks folders > official > group")
    parser.add_argument("--val-frac", type=float, default=0.1, metavar="F",
                        help="fraction of each label's images for validation (--split group)")
    parser.add_argument("--test-frac", type=float, default=0.1, metavar="F",
                        help="fraction of each label's images for testing (--split group)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the group split (same seed, same CSV)")
    parser.add_argument("--min-images", type=int, default=0, metavar="N",
                        help="drop labels with fewer than N images (0 keeps all)")
    parser.add_argument("--unknown", choices=UNKNOWN_ACTIONS, default="keep",
                        help="what to do with images whose folder label is not in Anno/list_category_cloth.txt "
                             "(only when ROOT has that file)")
    parser.add_argument("--verify", action="store_true",
                        help="decode every image (in parallel threads) and drop, with a report, those that fail")
    return parser


def main(argv=None):
    """Run make-labels; 0 on success, 2 on a user's mistake (one-line message on stderr), 130 on Ctrl-C."""
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: make_labels_command(args))


def make_labels_command(args):
    """Label the tree, then write the CSV (stdout or -o FILE, with its summary JSON) and the summary table."""
    from common.atomic import write_stream
    from labeling.labels import make_labels
    from labeling.output import check_destination, stream_csv, stream_json, summary_path
    from labeling.summary import format_summary

    if args.output:
        check_destination(args.output, args.root)
    table, summary = make_labels(args.root, source=args.source, split=args.split, val_frac=args.val_frac,
                                 test_frac=args.test_frac, seed=args.seed, min_images=args.min_images,
                                 unknown=args.unknown, verify=args.verify, progress=_progress)
    if args.output:
        write_stream(args.output, stream_csv, table)
        write_stream(summary_path(args.output), stream_json, summary)
    else:
        stream_csv(table, sys.stdout)
        sys.stdout.flush()
    print(format_summary(table, summary), file=sys.stderr)


def _progress(message):
    """Periodic counts of long work, on stderr."""
    writer(PROG)(message)
