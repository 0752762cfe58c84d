"""pack-shards and --data: round trip, raw pixels equal to the files loader's, training from shards equal to training
from files, interrupted packs, reuse, and one-line errors."""
import json
import os
import signal

import numpy as np
import pandas as pd
import pytest

from conftest import start_cnn, tiny_argv, wait_for
from cnn.cli import evaluate_main, pack_shards_main, show_batch_main, train_main
from cnn.data.loader import decode_and_resize
from cnn.data.shards import images_at, read_index, read_rows, records
from common.errors import UsageError

SIZE = 32


@pytest.fixture(scope="module")
def workdir(labelled_folder, sample_labels):
    """A folder with labels.csv for the sample tree plus one undecodable image in the train split."""
    folder = labelled_folder("shards")
    broken = folder / "bad" / "broken.jpg"
    broken.parent.mkdir()
    broken.write_bytes(b"\xff\xd8\xff not really a JPEG")
    broken_row = {"path": str(broken), "label": "Tee", "group": "broken", "split": "train"}
    table = pd.concat([sample_labels, pd.DataFrame([broken_row])], ignore_index=True)
    table.to_csv(folder / "labels.csv", index=False)  # in place of the sample's own
    return folder


def pack(workdir, out, *extra):
    """pack-shards labels.csv OUT at SIZE px from `workdir`; its exit status."""
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        return pack_shards_main(["labels.csv", str(out), "--image-size", str(SIZE), *extra])
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def raw_shards(workdir):
    assert pack(workdir, "raw", "--raw") == 0
    return workdir / "raw"


@pytest.fixture(scope="module")
def jpeg_shards(workdir):
    assert pack(workdir, "jpeg", "--shard-mb", "0.02") == 0  # ~40 images a shard: several per split
    return workdir / "jpeg"


def read_records(folder):
    """Every record of a shards folder as (shard, string features) read back with TensorFlow alone."""
    import tensorflow as tf

    out = []
    index = read_index(folder)
    for split in ("train", "val", "test"):
        for name in index["shards"][split]:
            for record in records([str(folder / name)]):
                features = tf.train.Example.FromString(record.numpy()).features.feature
                out.append({k: features[k].bytes_list.value[0].decode() for k in ("path", "label", "group", "split")})
    return pd.DataFrame(out)


@pytest.mark.parametrize("fixture", ["raw_shards", "jpeg_shards"])
def test_round_trip_keeps_labels_groups_splits_and_paths(fixture, workdir, request):
    folder = request.getfixturevalue(fixture)
    source = pd.read_csv(workdir / "labels.csv", dtype=str, keep_default_na=False)
    good = source[source.group != "broken"]
    key = ["path", "label", "group", "split"]
    stored = read_records(folder)
    assert sorted(map(tuple, stored[key].to_numpy())) == sorted(map(tuple, good[key].to_numpy()))
    rows = read_rows(folder)
    assert rows[key].equals(stored[key])  # rows.csv lists the records in packed order
    index = read_index(folder)
    for split in ("train", "val", "test"):
        assert index["counts"][split] == good[good.split == split].label.value_counts().sort_index().to_dict()
    assert index["classes"] == sorted(set(good.label))
    assert index["skipped"] == [str(workdir / "bad" / "broken.jpg")]  # undecodable: skipped and listed


def test_jpeg_shards_are_cut_by_size_and_pixels_close_to_the_files(jpeg_shards, workdir):
    index = read_index(jpeg_shards)
    assert len(index["shards"]["train"]) == -(-index["images"]["train"] // 40) > 1
    rows = read_rows(jpeg_shards).iloc[::25]
    for image, path in zip(images_at(jpeg_shards, rows), rows.path):
        files = decode_and_resize(workdir / path, (SIZE, SIZE))
        assert image.shape == (SIZE, SIZE, 3) and np.abs(image - files).mean() < 4  # JPEG q95 4:4:4 re-encoding


def test_raw_shards_hold_exactly_the_files_loaders_pixels(raw_shards, workdir):
    rows = read_rows(raw_shards)
    for image, path in zip(images_at(raw_shards, rows), rows.path):
        assert np.array_equal(image.astype(np.float32), decode_and_resize(workdir / path, (SIZE, SIZE)))


def train_in(workdir, out, *extra):
    """train-cnn at SIZE px, 2 epochs, float32, from `workdir`; its exit status."""
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        return train_main([*tiny_argv(image_size=SIZE, epochs=2, seed=3), "--out", str(out), *extra])
    finally:
        os.chdir(cwd)


@pytest.mark.train
def test_training_from_raw_shards_repeats_training_from_the_files(raw_shards, workdir):
    # The files loader given the rows in packed order meets the same pixels in the same shuffled order.
    read_rows(raw_shards)[["path", "label", "group", "split"]].to_csv(workdir / "packed-order.csv", index=False)
    # --data resolves the default recipe's --whiten off (its statistics are read from image files): so do the files.
    assert train_in(workdir, "runs/files", "--labels", "packed-order.csv", "--no-whiten") == 0
    assert train_in(workdir, "runs/shards", "--data", "raw") == 0
    files, shards = workdir / "runs" / "files", workdir / "runs" / "shards"
    h_files, h_shards = pd.read_csv(files / "history.csv"), pd.read_csv(shards / "history.csv")
    np.testing.assert_allclose(h_shards.to_numpy(), h_files.to_numpy(), rtol=1e-5)
    m_files, m_shards = (json.loads((r / "metrics.json").read_text()) for r in (files, shards))
    for key in ("top1", "top3", "balanced_accuracy", "macro_f1", "images"):
        assert m_shards[key] == pytest.approx(m_files[key])
    assert json.loads((shards / "config.json").read_text())["options"]["data"] == "raw"
    assert json.loads((shards / "config.json").read_text())["options"]["whiten"] is False


@pytest.mark.train
def test_evaluate_and_show_batch_read_shards(raw_shards, workdir, monkeypatch, capsys):
    run = workdir / "runs" / "shards"
    if not (run / "metrics.json").is_file():
        assert train_in(workdir, "runs/shards", "--data", "raw") == 0
    monkeypatch.chdir(workdir.parent)  # the run's own shards resolve from where it trained
    before = json.loads((run / "metrics.json").read_text())
    assert evaluate_main([str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["top1"] == pytest.approx(before["top1"])
    assert evaluate_main([str(run), "--data", str(raw_shards), "--split", "val"]) == 0
    assert (run / "eval-raw-val" / "metrics.json").is_file()
    monkeypatch.chdir(workdir)
    assert show_batch_main(["--data", "raw", "-n", "6", "-o", "grid.png"]) == 0
    drawn = pd.read_csv(workdir / "grid.csv")
    assert len(drawn) == 6 and set(drawn.path) <= set(read_rows(raw_shards).path)


def test_killed_pack_leaves_nothing_complete_and_a_rerun_keeps_finished_shards(workdir, tmp_path):
    out = tmp_path / "killed"
    slow = ("import time, cnn.data.pack\nwrite = cnn.data.pack.example\n"  # 20 ms a record: the kill lands mid-pack
            "cnn.data.pack.example = lambda *a: (time.sleep(0.02), write(*a))[1]")
    process = start_cnn(["pack-shards", "labels.csv", str(out), "--image-size", str(SIZE), "--shard-mb", "0.01",
                         "--workers", "1"], cwd=workdir, code=slow)
    try:
        assert wait_for(lambda: len(list(out.glob("train-*.json"))) >= 2, process, seconds=120)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert not (out / "index.json").exists() and not (out / "rows.csv").exists()
    with pytest.raises(UsageError, match="unfinished pack"):
        read_index(out)
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tfrecord") if p.with_suffix(".json").is_file()}
    assert pack(workdir, out, "--shard-mb", "0.01") == 0
    assert {n: (out / n).stat().st_mtime_ns for n in finished} == finished  # kept, not rewritten
    assert not list(out.glob(".*"))  # the killed run's temporary file is gone
    assert sum(read_index(out)["images"].values()) == len(read_rows(out)) == len(pd.read_csv(workdir / "labels.csv")) - 1


def one_line_error(capsys, prog):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), lines
    return lines[0]


def test_user_errors_are_one_line_exit_2(raw_shards, workdir, tmp_path, capsys):
    assert pack_shards_main([str(tmp_path / "none.csv"), str(tmp_path / "out")]) == 2
    assert "none.csv not found" in one_line_error(capsys, "pack-shards")
    assert pack(workdir, tmp_path / "big", "--image-size", "4096") == 2
    assert "--image-size 4096" in one_line_error(capsys, "pack-shards")
    with pytest.raises(SystemExit) as stop:
        pack(workdir, tmp_path / "zero", "--image-size", "0")
    assert stop.value.code == 2
    one_line_error(capsys, "pack-shards")
    inside = pd.read_csv(workdir / "labels.csv").path.iloc[0].rsplit("/", 1)[0] + "/shards"
    assert pack(workdir, inside) == 2
    assert "which pack-shards only reads" in one_line_error(capsys, "pack-shards")
    assert pack(workdir, "raw") == 2  # other options than the pack already there
    assert "holds shards of other inputs" in one_line_error(capsys, "pack-shards")
    assert train_in(workdir, "runs/bad", "--data", "raw", "--image-size", "48") == 2
    assert "packed at 32 px" in one_line_error(capsys, "train-cnn")
    assert train_in(workdir, "runs/bad", "--data", str(tmp_path)) == 2
    assert "no index.json" in one_line_error(capsys, "train-cnn")


@pytest.mark.parametrize("fixture", ["raw_shards", "jpeg_shards"])  # one train shard; several
def test_two_workers_read_disjoint_shares_covering_the_split(fixture, request):
    from cnn.data.batching import Batching
    from cnn.data.shards import flow_from_shards

    folder = request.getfixturevalue(fixture)
    rows = read_rows(folder)
    train = rows[rows.split == "train"]
    shares = [flow_from_shards(folder, ["train"], sorted(set(rows.label)), shard=(i, 2),
                               batching=Batching(batch_size=16))
              for i in range(2)]
    assert sorted(shares[0].file_paths + shares[1].file_paths) == sorted(train.path)
    assert not set(shares[0].file_paths) & set(shares[1].file_paths)
    for share in shares:  # what each worker's dataset yields is the share it names
        assert sum(int(images.shape[0]) for images, _ in share.dataset) == len(share.file_paths)


def test_progress_lines_count_images_and_time_left(workdir, tmp_path, monkeypatch, capsys):
    import re

    import cnn.data.pack

    monkeypatch.setattr(cnn.data.pack, "PROGRESS_SECONDS", 0)  # a line per image instead of every 5 s
    assert pack(workdir, tmp_path / "progress", "--raw") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "left" in line]
    total = len(pd.read_csv(workdir / "labels.csv"))
    counts = [int(re.match(rf"pack-shards: (\d+)/{total} images, \d+/3 shards, [\d.]+ images/s, about "
                           rf"(\d+ min )?\d+ s left$", line).group(1)) for line in lines]
    assert len(counts) > total / 2 and counts == sorted(counts) and counts[-1] <= total
