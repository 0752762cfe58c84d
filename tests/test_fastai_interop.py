"""fastai interop (optional extra): the labels CSV from make-labels loads in ImageDataLoaders.from_df.

Skipped unless fastai is installed (`pip install -e '.[fastai]'`, which pulls in PyTorch).
"""
import importlib.util
import json
import subprocess
import sys

import pandas as pd
import pytest

if importlib.util.find_spec("fastai") is None:  # looked up, not imported: the recipe runs in its own process
    pytest.skip("fastai is an optional extra: pip install -e '.[fastai]' (pulls in PyTorch)", allow_module_level=True)


@pytest.fixture
def labels_frame(sample_tree, tmp_path, monkeypatch):
    """make-labels run in a folder holding the sample tree (relative ROOT, as the recipe says); cwd stays there."""
    from labeling.cli import main as make_labels

    (tmp_path / "deepfashion").symlink_to(sample_tree, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    assert make_labels(["deepfashion", "-o", "labels.csv"]) == 0
    return pd.read_csv("labels.csv")


# fastai in a process of its own, as a user runs it: PyTorch's CUDA build imported into a process that already
# loaded TensorFlow and jaxlib (the test suite's) segfaults in triton's import.
RECIPE = """
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from fastai.vision.all import ImageDataLoaders, Resize

df = pd.read_csv("labels.csv")
df = df[df.split != "test"].copy()  # fastai knows train/valid; keep test for later
df["is_valid"] = df.split == "val"
dls = ImageDataLoaders.from_df(df, path=".", fn_col="path", label_col="label", valid_col="is_valid",
                               item_tfms=Resize(64), bs=8, num_workers=0)
images, targets = dls.one_batch()
dls.show_batch(max_n=9)
plt.gcf().savefig(sys.argv[1])
json.dump({"vocab": list(dls.vocab), "train": len(dls.train_ds), "valid": len(dls.valid_ds),
           "images": list(images.shape), "targets": list(targets.shape),
           "first_valid": [dls.vocab[int(dls.valid_ds[i][1])] for i in range(3)]}, sys.stdout)
"""


def test_labels_csv_loads_with_from_df_and_show_batch_draws(labels_frame, tmp_path):
    done = subprocess.run([sys.executable, "-c", RECIPE, str(tmp_path / "fastai_batch.png")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    df = labels_frame[labels_frame.split != "test"]
    assert seen["vocab"] == sorted(df.label.unique())
    assert seen["train"] == (df.split == "train").sum() and seen["valid"] == (df.split == "val").sum()
    assert seen["images"] == [8, 3, 64, 64] and seen["targets"] == [8]
    assert seen["first_valid"] == list(df[df.split == "val"].label[:3])
    assert (tmp_path / "fastai_batch.png").stat().st_size > 10_000
