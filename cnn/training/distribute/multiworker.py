"""train-cnn --strategy multiworker: the epochs as a custom loop under tf.distribute.MultiWorkerMirroredStrategy.

Keras 3's model.fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585; reproduced with TF 2.21
and Keras 3.15: "Attempt to convert a value (PerReplica...) with an unsupported type"), so this module runs
the loop TensorFlow's multi-worker custom-loop tutorial prescribes: the strategy distributes each worker's
batches and all-reduces the gradients (Keras's optimizer calls the replica context's all_reduce), we write
only the loop. The run folder's Keras callbacks (schedule, history, best model, BackupAndRestore, early
stopping) are called at the points model.fit calls them, so the run folder is the same as a one-machine run's.
"""
import math
import time

from cnn.training import log

# What this loop runs besides plain training, declared once: the tricks (cnn.training.tricks) it supports, by option
# name. --whiten (the default recipe's) sets the first layer before the loop starts; each of the others needs
# model.fit's wrappers or per-batch callbacks this loop does not call.
SUPPORTS = frozenset({"whiten"})
UNSUPPORTED = ("is not supported with --strategy multiworker on TensorFlow (its training loop is our own; on the jax "
               "backend it is model.fit)")


def per_worker_batch(dist, batch_size):
    """--batch-size is the global batch, split evenly over the replicas; anything else is a UsageError."""
    from common.errors import UsageError

    if batch_size % dist.replicas:
        raise UsageError(f"--batch-size {batch_size}: the global batch must divide evenly over the "
                         f"{dist.replicas} replicas of --strategy {dist.name}")
    return batch_size // dist.replicas


def train_step(dist, model, loss_fn, class_weights, global_batch):
    """A tf.function running one distributed step; returns the global (sum of losses, correct, images)."""
    import tensorflow as tf

    weights = None if class_weights is None else tf.constant(
        [class_weights[i] for i in range(len(class_weights))], tf.float32)

    def step(images, onehot):
        with tf.GradientTape() as tape:
            probs = model(images, training=True)
            per_example = loss_fn(onehot, probs)
            if weights is not None:
                per_example *= tf.gather(weights, tf.argmax(onehot, axis=1))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            scaled = model.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables))  # all-reduces across replicas
        return tf.reduce_sum(per_example), correct(onehot, probs), tf.cast(tf.shape(images)[0], tf.float32)

    @tf.function
    def run(iterator):
        totals = dist.strategy.run(step, args=next(iterator))
        return [dist.strategy.reduce(tf.distribute.ReduceOp.SUM, t, axis=None) for t in totals]

    return run


def correct(onehot, probs):
    """How many predictions are the true class (float32)."""
    import tensorflow as tf

    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(onehot, 1), tf.argmax(probs, 1)), tf.float32))


def validation(model, loss_fn):
    """(val_loss, val_accuracy) over a whole dataset; every worker scores all of it, so all decide alike."""
    import tensorflow as tf

    @tf.function
    def step(images, onehot):
        probs = model(images, training=False)
        return tf.reduce_sum(loss_fn(onehot, probs)), correct(onehot, probs), tf.cast(tf.shape(images)[0], tf.float32)

    def evaluate(dataset):
        totals = [0.0, 0.0, 0.0]
        for images, onehot in dataset:
            totals = [a + float(b) for a, b in zip(totals, step(images, onehot))]
        return totals[0] / max(totals[2], 1), totals[1] / max(totals[2], 1)

    return evaluate


def fit_multiworker(context, plan, callbacks, steps):
    """Run the plan's epochs `done`..--epochs on every worker (cnn.training.engine's RunContext and FitPlan); the callbacks write the run folder. Returns seconds.

    A worker that dies breaks the collectives of the others: each then stops with one line saying how to
    continue (restart every worker with the same command; BackupAndRestore resumes the last finished epoch).
    """
    import tensorflow as tf

    started = time.perf_counter()
    try:
        with context.dist.strategy.scope():  # BackupAndRestore builds the optimizer's variables: inside the scope
            epochs(context, plan, callbacks, steps)
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
            tf.errors.DeadlineExceededError) as error:
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        log(f"error: a worker of the cluster failed ({type(error).__name__}: {first}); restart every worker with "
            f"the same command to continue from the last finished epoch")
        raise SystemExit(1) from None
    return time.perf_counter() - started


def mean_across(dist, value):
    """The mean of a number over every replica of the cluster (a collective: each worker blocks until all join)."""
    import tensorflow as tf

    @tf.function  # in a graph: MultiWorkerMirroredStrategy warns about eager collectives
    def mean():
        values = dist.strategy.run(tf.constant, args=(float(value),))
        return dist.strategy.reduce(tf.distribute.ReduceOp.MEAN, values, axis=None)

    return float(mean())


def check_same_start(dist, done):
    """Refuse to train when the workers would start from different epochs (a backup one of them cannot read)."""
    from common.errors import UsageError

    mean = mean_across(dist, done)
    if mean != done:
        raise UsageError(f"this worker would start after epoch {done} but the others after {mean:g} on average: "
                         f"every worker must read the chief's --out (put it on a shared filesystem)")


def finish_together(dist):
    """Wait until every worker is done (the chief after its report), so that none leaves while another still
    needs it: a worker that exits early is reported by the others' coordination service as a failure."""
    import tensorflow as tf

    try:
        mean_across(dist, 0)
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError) as error:
        log(f"error: a worker of the cluster stopped before the end ({type(error).__name__})")
        raise SystemExit(1) from None


def epochs(context, plan, callbacks, steps):
    """The loop: per epoch, `steps` distributed steps, a validation pass, the callbacks' epoch end."""
    import keras

    dist, model, options, done = context.dist, plan.model, plan.options, plan.done
    train_data, val_data = plan.train_data, plan.val_data
    check_same_start(dist, done or 0)
    loss_fn = keras.losses.CategoricalCrossentropy(label_smoothing=options.label_smoothing, reduction=None)
    iterator = iter(dist.strategy.distribute_datasets_from_function(lambda context: train_data.dataset.repeat()))
    step = train_step(dist, model, loss_fn, context.class_weight, options.batch_size)
    evaluate = validation(model, loss_fn)
    calls = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    calls.on_train_begin()
    for epoch in range(done or 0, options.epochs):
        began = time.perf_counter()
        calls.on_epoch_begin(epoch)
        totals = [0.0, 0.0, 0.0]
        for batch in range(steps):
            calls.on_train_batch_begin(batch)
            totals = [a + float(b) for a, b in zip(totals, step(iterator))]
        val_loss, val_accuracy = evaluate(val_data.dataset)
        logs = {"accuracy": totals[1] / totals[2], "loss": totals[0] / totals[2], "val_accuracy": val_accuracy,
                "val_loss": val_loss}
        log(f"epoch {epoch + 1}/{options.epochs}: {steps} steps of {options.batch_size} images on {dist.workers} "
            f"workers, {time.perf_counter() - began:.0f} s - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        calls.on_epoch_end(epoch, logs)
        if model.stop_training or not math.isfinite(logs["loss"]):
            break
    calls.on_train_end()
