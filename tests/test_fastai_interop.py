"""fastai interop (optional extra): the labels CSV from make-labels loads in ImageDataLoaders.from_df.

Skipped unless fastai is installed (`pip install -e '.[fastai]'`, which pulls in PyTorch).
"""
import pandas as pd
import pytest

pytest.importorskip("fastai", reason="fastai is an optional extra: pip install -e '.[fastai]' (pulls in PyTorch)")


@pytest.fixture
def labels_frame(sample_tree, tmp_path, monkeypatch):
    """make-labels run in a folder holding the sample tree (relative ROOT, as the recipe says); cwd stays there."""
    from labeling.cli import main as make_labels

    (tmp_path / "deepfashion").symlink_to(sample_tree, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    assert make_labels(["deepfashion", "-o", "labels.csv"]) == 0
    return pd.read_csv("labels.csv")


def test_labels_csv_loads_with_from_df_and_show_batch_draws(labels_frame, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from fastai.vision.all import ImageDataLoaders, Resize

    df = labels_frame[labels_frame.split != "test"].copy()  # fastai knows train/valid; keep test for later
    df["is_valid"] = df.split == "val"
    dls = ImageDataLoaders.from_df(df, path=".", fn_col="path", label_col="label", valid_col="is_valid",
                                   item_tfms=Resize(64), bs=8, num_workers=0)
    assert list(dls.vocab) == sorted(df.label.unique())
    assert len(dls.train_ds) == (df.split == "train").sum()
    assert len(dls.valid_ds) == (df.split == "val").sum()
    images, targets = dls.one_batch()
    assert tuple(images.shape) == (8, 3, 64, 64) and tuple(targets.shape) == (8,)
    assert [dls.vocab[int(dls.valid_ds[i][1])] for i in range(3)] == list(df[df.is_valid].label[:3])

    dls.show_batch(max_n=9)
    plt.gcf().savefig(tmp_path / "fastai_batch.png")
    assert (tmp_path / "fastai_batch.png").stat().st_size > 10_000
