"""One flat run: fit (fresh or resumed; with --fine-tune, then its second phase), then score the best checkpoint
once on the test split and write the run folder's reports."""
from cnn import runfolder as rf
from cnn.data.labels_csv import check_extra_csvs, check_training_splits, extra_csvs
from cnn.training import log
from cnn.training.engine import FitPlan, RunContext, compile_model, fit_stages, largest_share, train_rows
from cnn.training.runstate import check_run_dir, continued_run, fresh_run, write_config
from cnn.training.tricks import prepare, wrapped
from common.errors import UsageError
from common.tfenv import quiet_backend


def train_flat(run_dir, *, resume=False, callbacks=(), typed):
    """Train (or continue) the flat run in `run_dir` (None: a new runs/<arch>-<n>); return (run folder,
    metrics), or (run folder, None) on a multiworker worker that is not the chief."""
    done = rf.finished_epochs(run_dir) if run_dir is not None else None
    pending = done is None and run_dir is not None and rf.report_pending(run_dir)
    if resume and done is None and not pending:
        raise UsageError(f"nothing to resume in {run_dir}: no {rf.BACKUP}/ (the run finished or never started)")
    options, df = (continued_run(run_dir, typed) if done is not None or pending else fresh_run(typed))
    classes = check_training_splits(df, options.labels)
    check_extra_csvs(extra_csvs(options.also_score), classes)  # before any training, as the labels CSV is
    run_dir = run_dir if run_dir is not None else rf.default_run_dir(options.arch)
    quiet_backend()
    if pending:
        return finish_report(run_dir, df, classes, options)
    from cnn.models.transfer import prepare
    from cnn.training.precision import precision_policy
    from cnn.training.distribute.strategy import chief_process, distribution, workspace

    if chief_process(options.strategy):  # only the chief's folder is its own
        check_run_dir(run_dir, done, classes)
    dist = distribution(options.strategy)  # before any other TensorFlow work: multiworker needs it so
    prepare(options)  # the starting weights load (before the lock makes the run folder)
    with workspace(dist, run_dir, (rf.BACKUP, rf.HISTORY)) as folder, rf.locked(folder), \
            precision_policy(options.precision) as policy:
        context = RunContext(run_dir=folder, options=options, class_weight=class_weights(df, classes, options),
                             callbacks=tuple(callbacks), dist=dist, rows=train_rows(df),
                             val_share=largest_share(df, "val"))
        return fit_and_report(context, done, df, classes, policy)


def finish_report(run_dir, df, classes, options):
    """A run whose training is over but whose reports a kill cut short: write them now, then the marker."""
    from cnn.training.precision import precision_policy
    from cnn.training.runstate import check_same_classes

    rf.refuse_if_in_use(run_dir)
    check_same_classes(run_dir, classes)
    log(f"{run_dir} finished training but not its report (interrupted); writing it now")
    with rf.locked(run_dir), precision_policy(options.precision):
        return report(run_dir, df, classes, options, None)


def class_weights(df, classes, options):
    """--class-weight balanced's weights over the train split, or None."""
    from cnn.data.datasets import balanced_class_weights

    if options.class_weight != "balanced":
        return None
    return balanced_class_weights(df.label[df.split == "train"], classes)


def fit_and_report(context, done, df, classes, policy):
    """Fit every phase under the context's strategy, then (on the chief) score the best checkpoint once and write
    the reports."""
    import keras

    run_dir, options, dist = context.run_dir, context.options, context.dist
    rf.remove_partial_files(run_dir)
    keras.utils.set_random_seed(options.seed)
    # The first phase (the only one without --fine-tune), unless it finished: built before anything is written,
    # so a bad option leaves no run folder behind.
    first = None if (run_dir / rf.PHASE).is_file() else first_phase(df, classes, options, dist, done)
    if done is None:
        write_config(run_dir, options, df, classes, policy, context.class_weight)
        rf.save_classes(run_dir, classes)
        (run_dir / rf.BACKUP).mkdir(exist_ok=True)  # "training not over" until every phase is fitted
        spread = "" if dist.name == "default" else f", strategy {dist.name}, {dist.replicas} replica(s)"
        log(f"training {options.arch} on {len(classes)} classes into {run_dir} (precision {policy}{spread})")
    else:
        log(f"resuming {run_dir} after epoch {done}")
    seconds = fit_stages(context, first, df, classes) if first else 0.0
    if options.fine_tune:
        from cnn.training.finetune import second_phase

        seconds += second_phase(context, done, df, classes)
    rf.remove_backup(run_dir)
    if dist.name == "multiworker" and dist.backend == "jax":  # the chief scores alone, on its own device
        from cnn.training.distribute.keras_distribution import local_again

        local_again()
    result = report(run_dir, df, classes, options, seconds) if dist.chief else (run_dir, None)
    if dist.name == "multiworker":
        from cnn.training.distribute.strategy import finish_together

        finish_together(dist)
    return result


def first_phase(df, classes, options, dist, done):
    """The first phase's FitPlan: the model from its starting weights and the image datasets, or with the feature
    cache its head and the features, computed once (saved: the full model)."""
    from cnn.data.datasets import make_datasets
    from cnn.models.transfer import build
    from cnn.training import feature_cache

    train_data, val_data = make_datasets(df, classes, options, dist)
    phase = 1 if options.fine_tune else None
    with dist.strategy.scope():
        model = build(options, classes)
        prepare(model, options, df[df.split == "train"])
        if dist.name == "default" and feature_cache.applies(model, options):
            head, train_data, val_data = feature_cache.cached_datasets(model, df, classes, options)
            return FitPlan(compile_model(head, options), train_data, val_data, options, done=done, saved=model,
                           phase=phase)
        # The tricks may wrap the model (--progressive's any-size twin, --teacher's distiller); model.keras keeps the
        # model itself.
        fitted = wrapped(model, options, classes)
        return FitPlan(compile_model(fitted, options), train_data, val_data, options, done=done,
                       saved=None if fitted is model else model, phase=phase)


def usable_history(run_dir, options):
    """history.csv's epochs with a finite validation loss; divergence (a NaN loss) is reported, or refused
    when no epoch before it is usable."""
    import numpy as np
    import pandas as pd

    history = pd.read_csv(run_dir / rf.HISTORY)
    last = history.iloc[-1]
    finite = history[np.isfinite(history["val_loss"])]
    if np.isfinite(last["loss"]) and np.isfinite(last["val_loss"]):
        return history
    epoch = int(last["epoch"]) + 1
    if finite.empty or not rf.model_loads(run_dir):
        raise UsageError(f"training diverged at epoch {epoch} (the loss became NaN) before any usable epoch; "
                         f"lower --lr (it was {options.lr}) and run again")
    log(f"warning: training diverged at epoch {epoch} (the loss became NaN); the report uses the best epoch before it")
    return finite


def check_collapse(history, df, best_epoch, options, precision):
    """(the epoch a collapse that ended the run began, logged as a warning, or None; the epochs rolled back during
    training, whose validation accuracy fell to the largest class's share); see cnn.training.collapse."""
    from cnn.training.collapse import ROLLBACKS, collapse_epochs, collapse_warning, collapsed_at, rolls_back

    share = largest_share(df, "train")
    epochs = collapse_epochs(history, largest_share(df, "val")) if rolls_back(options) else []
    epoch = collapsed_at(history, share)
    if epoch is None and len(epochs) > ROLLBACKS and epochs[-1] == int(history["epoch"].iloc[-1]) + 1:
        epoch = epochs[-1]  # the rollback gave up and stopped the run there
    if epoch is not None:
        log(collapse_warning(epoch, share, best_epoch, precision))
    return epoch, epochs[:ROLLBACKS]


def report_rows(df):
    """The test split, scored once after training (the val split when the CSV has no test rows)."""
    if (df.split == "test").any():
        return df[df.split == "test"], "test"
    log("warning: the labels CSV has no 'test' rows; the report scores the 'val' split instead")
    return df[df.split == "val"], "val"


def report(run_dir, df, classes, options, seconds):
    """Score the best checkpoint once on the test split, write the reports and then the finished marker, log the
    headline figures (`seconds`: this attempt's training time, None when only the report was left to write)."""
    from cnn.evaluation.error_maps import write_error_maps
    from cnn.evaluation.evaluate import score_extra_csvs
    from cnn.evaluation.html_report import write_html_report
    from cnn.evaluation.reports import summary_lines, write_reports
    from cnn.evaluation.scoring import fit_run_temperature, score
    from cnn.runs.predictor import from_run

    history = usable_history(run_dir, options)
    best = history.loc[history["val_loss"].idxmin()]
    took = "" if seconds is None else f"; this attempt took {seconds:.0f} s"
    log(f"{len(history)} epochs in history.csv; model.keras is epoch {int(best.epoch) + 1} "
        f"(val_loss {best.val_loss:.4f}, val_accuracy {best.val_accuracy:.4f}){took}")
    rows, split = report_rows(df)
    run = rf.load_run(run_dir)
    if options.calibrate == "temperature":
        temperature, doubts = fit_run_temperature(run, df[df.split == "val"], options.batch_size,
                                                  options.skip_missing, options.data)
        log(f"temperature scaling on the val split: T = {temperature:.3f} (calibration.json); the report's "
            f"probabilities are calibrated" + "".join(f"; warning: {d}" for d in doubts))
    predictor = from_run(run)
    _, _, metrics = score(predictor, rows, options.batch_size, options.skip_missing, options.data)
    metrics.update(split=split, labels=str(options.labels), train_seconds=None if seconds is None else round(seconds, 1),
                   epochs_run=len(history), best_epoch=int(best.epoch) + 1)
    also = extra_csvs(options.also_score)
    if also:
        metrics["also_scored"] = score_extra_csvs(run_dir, predictor, also, options.batch_size, options.skip_missing)
    metrics["collapsed_at_epoch"], metrics["rolled_back_epochs"] = check_collapse(
        history, df, int(best.epoch) + 1, options, run.config.get("precision"))
    write_reports(run_dir, metrics, classes, run_dir / rf.HISTORY)
    write_error_maps(run_dir, run, metrics["worst_errors"])
    write_html_report(run_dir)
    rf.remove_partial_files(run_dir)  # what a report killed before this attempt left
    rf.mark_finished(run_dir)
    for line in summary_lines(metrics):
        log(line)
    log(f"run folder: {run_dir} (report.html, report.txt, metrics.json, curves.png, confusion.png, reliability.png)")
    return run_dir, metrics
