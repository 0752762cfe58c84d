"""train-cnn --strategy: which tf.distribute strategy trains, and this process's part in it.

`default` is TensorFlow's default strategy (one device); `mirrored` is MirroredStrategy (every GPU of the
machine, through model.fit as Keras documents); `multiworker` is MultiWorkerMirroredStrategy across the
machines of TF_CONFIG, trained by cnn.training.distribute.multiworker's loop. Only the chief writes the run folder: the other
workers write into a temporary folder that is removed when they finish.
"""
import contextlib
import json
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common.errors import UsageError

STRATEGIES = ("auto", "default", "mirrored", "multiworker")


@dataclass
class Distribution:
    """The strategy of a run and this process's role: `workers` processes, this one `index`, `chief` or not."""

    name: str
    strategy: object
    workers: int = 1
    index: int = 0
    chief: bool = True
    backend: str = "tensorflow"  # Keras's: tf.distribute on tensorflow, keras.distribution on jax

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync


def resolve_strategy(choice):
    """The strategy `auto` stands for: mirrored when more than one GPU is visible, else default."""
    if choice != "auto":
        return choice
    from common.tfenv import quiet_tensorflow

    return "mirrored" if len(quiet_tensorflow().config.list_physical_devices("GPU")) > 1 else "default"


def chief_process(choice):
    """Whether this process writes the run folder: always, but under --strategy multiworker only the chief (TF_CONFIG's
    first worker on TensorFlow, process 0 on JAX). Known before the cluster forms, so a bad --out fails fast."""
    import keras

    if choice != "multiworker":
        return True
    if keras.backend.backend() == "jax":
        from cnn.training.distribute.keras_distribution import processes

        return processes()[1] == 0
    return cluster_role()[2]


def finish_together(dist):
    """Under --strategy multiworker, wait until every process is done (the chief after its report)."""
    if dist.backend == "jax":
        from cnn.training.distribute.keras_distribution import finish_together as wait_for_all

        wait_for_all()
    else:
        from cnn.training.distribute.multiworker import finish_together as wait_for_all

        wait_for_all(dist)


def cluster_role(environ=os.environ):
    """(workers, this worker's index, chief?) from TF_CONFIG; a missing or malformed one is a UsageError."""
    text = environ.get("TF_CONFIG")
    if not text:
        raise UsageError("--strategy multiworker needs TF_CONFIG (the cluster's workers and this one's task); "
                         "see docs/guides/full-size.md")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        workers = len(cluster.get("chief", [])) + len(cluster["worker"])
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UsageError(f"TF_CONFIG is not valid JSON with cluster.worker and task.type/index: {text[:120]}") from None
    check_cluster(cluster, kind, index)
    # The chief is task "chief", or worker 0 of a cluster without one (TensorFlow's convention).
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return workers, (index + len(cluster.get("chief", [])) if kind == "worker" else 0), chief


def check_cluster(cluster, kind, index):
    """TF_CONFIG must be consistent: this task is one of the cluster's (a known type, an index inside its list),
    at most one chief, and every address a host:port string; TensorFlow would fail later with a traceback."""
    tasks = {k: v for k, v in cluster.items() if k in ("chief", "worker")}
    extra = sorted(set(cluster) - set(tasks))
    if extra:
        raise UsageError(f"TF_CONFIG: cluster has {', '.join(extra)} tasks; --strategy multiworker takes 'chief' "
                         f"and 'worker' only")
    addresses = [a for v in tasks.values() for a in (v if isinstance(v, list) else [v])]
    if not all(isinstance(v, list) for v in tasks.values()) or not all(
            isinstance(a, str) and a.rpartition(":")[2].isdigit() for a in addresses):
        raise UsageError("TF_CONFIG: cluster.chief and cluster.worker must be lists of 'host:port' addresses")
    if len(tasks.get("chief", [])) > 1:
        raise UsageError(f"TF_CONFIG: cluster names {len(tasks['chief'])} chiefs; a cluster has at most one")
    if kind not in tasks:
        raise UsageError(f"TF_CONFIG: task.type {kind!r} is not in the cluster ({', '.join(tasks)})")
    if not 0 <= index < len(tasks[kind]):
        raise UsageError(f"TF_CONFIG: task index {index} is past the cluster's {len(tasks[kind])} {kind} task(s) "
                         f"(indices start at 0)")


def distribution(choice):
    """The Distribution for --strategy `choice`; create it before any other TensorFlow work (multiworker needs it)."""
    import functools

    import keras

    from common.tfenv import quiet_tensorflow

    if keras.backend.backend() == "jax":
        from cnn.training.distribute.keras_distribution import keras_distribution

        return keras_distribution(choice, functools.partial(Distribution, backend="jax"))
    if keras.backend.backend() != "tensorflow":
        raise UsageError(f"train-cnn trains on Keras's tensorflow or jax backend, not {keras.backend.backend()}")
    tf = quiet_tensorflow()
    name = resolve_strategy(choice)
    if name == "default":
        return Distribution(name, tf.distribute.get_strategy())
    if name == "mirrored":
        return Distribution(name, tf.distribute.MirroredStrategy())
    workers, index, chief = cluster_role()
    return Distribution(name, tf.distribute.MultiWorkerMirroredStrategy(), workers, index, chief)


@contextlib.contextmanager
def workspace(dist, run_dir, carried):
    """The folder this process writes: the run folder on the chief; elsewhere a temporary folder holding a copy
    of the chief's `carried` files and folders (its backup, so a restarted worker restores the same epoch; its
    history, so its callbacks take the chief's decisions, as JAX's collectives need), removed on exit."""
    if dist.chief:
        yield Path(run_dir)
        return
    folder = Path(tempfile.mkdtemp(prefix=f"train-cnn-worker-{dist.index}-"))
    try:
        for name in carried:
            source = Path(run_dir) / name
            if source.is_dir():
                shutil.copytree(source, folder / name)
            elif source.is_file():
                shutil.copy2(source, folder / name)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def free_loopback_ports(n):
    """n TCP ports free on 127.0.0.1 (bound together, then released): a TF_CONFIG for n local workers."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
