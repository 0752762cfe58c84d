"""train-cnn --tensorboard: event files with per-epoch scalars, the learning rate, the graph and a confusion image."""
from collections import defaultdict

import pytest

from common.tfenv import quiet_tensorflow
from conftest import TINY
from cnn.training.train import train


def read_events(folder):
    """{tag: [step, ...]} of every summary in the event files under `folder`."""
    tf = quiet_tensorflow()
    tags = defaultdict(list)
    for path in folder.rglob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags[value.tag].append(event.step)
    return tags


@pytest.mark.train
def test_tensorboard_logs(sample_labels, tmp_path):
    sample_labels.to_csv(tmp_path / "labels.csv", index=False)
    run, _ = train(out=tmp_path / "run", labels=str(tmp_path / "labels.csv"), tensorboard=True,
                   **dict(TINY, epochs=2))
    tags = read_events(run / "tensorboard")
    assert sorted(tags["learning_rate"]) == [0, 1] and sorted(tags["confusion_matrix"]) == [0, 1]
    assert sorted(tags["epoch_loss"]) == [0, 0, 1, 1]  # train and validation writers
    assert tags["keras"] == [0]  # the model's graph, as TensorBoard's Graphs tab draws it
