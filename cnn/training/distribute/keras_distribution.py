"""--strategy on Keras's JAX backend: keras.distribution instead of tf.distribute, with model.fit as on one device.

`mirrored` (or `auto` with several local devices) is DataParallel over this machine's devices; `multiworker` joins
the processes named by Keras's environment variables (KERAS_DISTRIBUTION_JOB_ADDRESSES: the coordinator's
host:port first; KERAS_DISTRIBUTION_NUM_PROCESSES; KERAS_DISTRIBUTION_PROCESS_ID) through
keras.distribution.initialize, then DataParallel over every device of every process. Each process feeds its own
share of the training rows (auto_shard_dataset=False), in batches of --batch-size / processes, and the chief
(process 0) alone writes the run folder. On CPUs the processes talk through gloo, JAX's CPU collectives.
"""
import contextlib
import os
import sys

from cnn.training import log
from cnn.training.distribute.rendezvous import ENVIRONMENT, JOIN_TIMEOUT, meet
from common.errors import UsageError


class Placement:
    """What the trainer asks of a strategy (a scope to build the model in, the replicas a batch splits over); under
    keras.distribution the global distribution places the variables, so the scope is empty."""

    def __init__(self, replicas):
        self.num_replicas_in_sync = replicas

    @staticmethod
    def scope():
        return contextlib.nullcontext()


def processes(environ=os.environ):
    """(process count, this process's id) from Keras's environment variables; a one-line error when absent."""
    missing = [name for name in ENVIRONMENT if not environ.get(name)]
    if missing:
        raise UsageError(f"--strategy multiworker on the jax backend needs {', '.join(missing)} (the coordinator's "
                         f"host:port, the process count, this process's id); see docs/guides/full-size.md")
    try:
        count, index = int(environ[ENVIRONMENT[1]]), int(environ[ENVIRONMENT[2]])
    except ValueError:
        raise UsageError(f"{ENVIRONMENT[1]} and {ENVIRONMENT[2]} must be whole numbers") from None
    if count < 1:
        raise UsageError(f"{ENVIRONMENT[1]}={count} must be 1 or more (the number of processes)")
    if not 0 <= index < count:
        raise UsageError(f"{ENVIRONMENT[2]}={index} must be in 0..{count - 1}")
    coordinator(environ[ENVIRONMENT[0]])
    return count, index


def coordinator(addresses):
    """The coordinator's (host, port): the first of KERAS_DISTRIBUTION_JOB_ADDRESSES, which must be host:port."""
    first = addresses.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{ENVIRONMENT[0]}={addresses!r}: the first address must be host:port (the coordinator's, "
                         f"e.g. 10.0.0.1:1234)")
    return host, int(port)


def keras_distribution(choice, make):
    """The Distribution (`make`: cnn.training.distribute.strategy.Distribution) for --strategy `choice` on JAX, after setting
    Keras's global distribution; call before any JAX computation (initialize must come first)."""
    import jax
    import keras

    count, index = processes() if choice == "multiworker" else (1, 0)
    if choice == "multiworker":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes' collectives (GPUs: NCCL)
        host, port = coordinator(os.environ[ENVIRONMENT[0]])
        log(f"process {index} of {count}: waiting for every process at the coordinator {host}:{port} (up to "
            f"{JOIN_TIMEOUT // 60} minutes)")
        meet(host, port, count=count, index=index)
        keras.distribution.initialize()  # reads ENVIRONMENT; before anything starts JAX's backend
    devices = jax.devices()
    name = {"auto": "mirrored" if len(devices) > 1 else "default"}.get(choice, choice)
    if name != "default":
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices,
                                                                            auto_shard_dataset=count == 1))
    return make(name, Placement(count if count > 1 else len(devices)), workers=count, index=index, chief=index == 0)


@contextlib.contextmanager
def stop_when_a_process_fails():
    """A process that dies breaks the others' collectives: each then stops with one line saying how to continue
    (BackupAndRestore resumes the last finished epoch), and leaves at once rather than wait for the dead one in
    JAX's shutdown."""
    import jax

    try:
        yield
    except (jax.errors.JaxRuntimeError, ValueError) as error:
        if isinstance(error, ValueError) and "UNKNOWN:" not in str(error):  # a collective failing in a callback
            raise
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        log(f"error: a process of the cluster failed ({first}); restart every process with the same command to "
            f"continue from the last finished epoch")
        sys.stderr.flush()
        os._exit(1)


def local_again():
    """Drop the global distribution (after fitting): the chief then scores and reports alone, on its own device."""
    import keras

    keras.distribution.set_distribution(None)


def finish_together():
    """Wait until every process is done (the chief after its report), so that none leaves while another needs it."""
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices("train-cnn finished")
