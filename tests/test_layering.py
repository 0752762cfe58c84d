"""The architecture is enforced: import-linter's contracts hold, catch a wrong arrow, and fast commands stay TF-free."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("common", "labeling", "cnn", "analysis", "data")


def lint_imports(cwd):
    """Run import-linter with the contracts of pyproject.toml in `cwd`; (exit status, output)."""
    done = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})
    return done.returncode, done.stdout + done.stderr


def test_layering_contracts_are_kept():
    status, output = lint_imports(REPO)
    assert status == 0, output
    assert "6 kept, 0 broken" in output


@pytest.mark.parametrize("module, line", [
    ("labeling/scan.py", "from cnn import runfolder"),  # the producer of the CSV importing its consumer
    ("labeling/names.py", "import tensorflow"),  # make-labels must never load TensorFlow
    ("common/errors.py", "import labeling.scan"),  # the base importing a package above it
    ("analysis/graph.py", "from cnn.runfolder import MODEL"),  # only the CLI may use cnn.models.architectures
    ("cnn/evaluation/metrics.py", "from cnn.training import engine"),  # a wing importing one above it
    ("cnn/training/engine.py", "from cnn.inference import predict"),  # two sibling wings tied together
    ("cnn/data/loader.py", "def late():\n    from cnn.models import heads"),  # inside a function counts too
    ("cnn/runfolder.py", "from cnn.experiments import stats"),  # the floor of cnn importing its top
    ("cnn/training/tricks/ema.py", "from cnn.training.tricks import whiten"),  # one trick leaning on another
])
def test_contracts_catch_a_wrong_arrow(tmp_path, module, line):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    with open(tmp_path / module, "a") as f:
        f.write(f"\n{line}\n")
    status, output = lint_imports(tmp_path)
    assert status != 0 and "BROKEN" in output.upper()


def modules_after(code):
    """The set of top-level module names imported after running `code` in a fresh interpreter."""
    probe = code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
    return set(done.stdout.split()), done


@pytest.mark.parametrize("code", [
    "from labeling.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    "from analysis.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    "from cnn.cli import train_main\ntry:\n    train_main(['--help'])\nexcept SystemExit:\n    pass",
    "from cnn.cli import pack_shards_main\ntry:\n    pack_shards_main(['--help'])\nexcept SystemExit:\n    pass",
])
def test_help_never_imports_tensorflow_or_keras(code):
    modules, done = modules_after(code)
    assert "usage:" in done.stdout
    assert not modules & {"tensorflow", "keras"}


def test_make_labels_on_a_tree_never_imports_tensorflow_or_keras(sample_tree):
    modules, done = modules_after(f"from labeling.cli import main\nmain([{str(sample_tree)!r}])")
    assert "Dress" in done.stdout and "labels from folder names" in done.stderr
    assert not modules & {"tensorflow", "keras"}


def test_common_imports_nothing_heavy():
    modules, done = modules_after("import common.atomic, common.command, common.errors, common.keras_model, "
                                  "common.schema, common.tfenv")
    assert done.returncode == 0, done.stderr
    assert not modules & {"tensorflow", "keras", "pandas", "numpy"}
