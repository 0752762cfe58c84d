"""Checks of where a command may write, made before any work: outside the dataset it reads, and a path that can
be created (a file where a file goes, a folder where a folder goes)."""
import os
import tempfile
from pathlib import Path

from common.errors import UsageError


def dataset_clash(target, image_paths, whole_tree=False):
    """The image folder that `target` lies in or above, or with `whole_tree` the tree holding them all when
    `target` lies inside it and the command does not run inside it (DeepFashion's img/); None when `target` is
    outside the dataset."""
    folders = sorted({os.path.dirname(os.path.abspath(p)) for p in image_paths})
    if not folders:
        return None
    target = os.path.abspath(target)
    clash = next((f for f in folders if os.path.commonpath([f, target]) in (f, target)), None)
    tree = os.path.commonpath(folders)
    if (whole_tree and clash is None and os.path.commonpath([tree, os.getcwd()]) != tree
            and os.path.commonpath([tree, target]) == tree):
        clash = tree
    return clash


def check_outside_dataset(target, image_paths, option, prog, whole_tree=False):
    """Refuse `target` (an output file or folder) in or above a folder of the dataset's images (or inside their
    tree, `whole_tree`): `prog` only reads the dataset."""
    clash = dataset_clash(target, image_paths, whole_tree)
    if clash is not None:
        raise UsageError(f"{option} {target} is in or above the image folder {clash}, which {prog} only reads; "
                         f"choose a place outside the dataset")


def _writable_parent(path, option):
    """Refuse a path whose nearest existing ancestor is not a folder we can write in."""
    parent = Path(os.path.abspath(path)).parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: {parent} is a file, so nothing can be created under it; choose another path")
    check_writable_folder(parent, f"{option} {path}")


def check_writable_folder(folder, what):
    """Refuse a folder in which nothing can be created, found by creating (and removing) an empty folder there:
    permission bits do not tell for root, a read-only mount or /proc."""
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder, prefix=".write-check."))
    except OSError as error:
        raise UsageError(f"{what}: nothing can be written in {folder} ({error.strerror}); choose another path") from None


def check_output_folder(path, option):
    """Refuse an output folder that is an existing file or cannot be created."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{option} {path} is a file; give a folder")
    if not os.path.isdir(path):
        _writable_parent(path, option)


def check_output_file(path, option):
    """Refuse an output file that is an existing folder or cannot be created."""
    if os.path.isdir(path):
        raise UsageError(f"{option} {path} is a folder; give a file name, e.g. {os.path.join(path, 'clean.csv')}")
    _writable_parent(path, option)


def check_report_outputs(labels, image_paths, out, clean, options, prog):
    """An audit's output folder and clean CSV (`options`: their flags), before any work: creatable, outside the
    dataset it reads, and the clean CSV never the labels CSV being audited."""
    out_option, clean_option = options
    check_output_folder(out, out_option)
    check_outside_dataset(out, image_paths, out_option, prog)
    if clean is None:
        return
    if os.path.realpath(clean) == os.path.realpath(labels):
        raise UsageError(f"{clean_option} {clean} is the labels CSV being audited; write the clean CSV elsewhere")
    check_output_file(clean, clean_option)
    check_outside_dataset(clean, image_paths, clean_option, prog)
