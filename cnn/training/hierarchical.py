"""train-cnn --hierarchy: a coarse model of the parents, then one model per parent of its labels, each trained by
`cnn.training.flat.train_flat` (same options, loader, recipe and reports) as a complete run in its own sub-folder; then the
cascade is scored once on the test split and reported in the top-level folder.

The top-level folder records the options (with `hierarchy`), the user's labels CSV and its hash, the mapping
as resolved (hierarchy.csv) and the fine classes, so it is reproducible and resumable on its own: a rerun
keeps finished sub-models and continues the one that was training.
"""
from pathlib import Path

from cnn import runfolder as rf
from cnn.data.hierarchy import (
    COARSE,
    FLAT,
    is_hierarchical,
    mapping_differences,
    mapping_record,
    resolve_mapping,
    sub_frames,
)
from cnn.data.labels_csv import check_training_splits
from cnn.training import log
from cnn.training.flat import report_rows, train_flat
from cnn.training.options import RESUMABLE, TrainOptions
from cnn.training.runstate import check_same_run, continued_run, fresh_run, write_config
from common.atomic import write_csv
from common.errors import UsageError
from common.tfenv import quiet_backend


def train_hierarchy(run_dir, *, resume=False, callbacks=(), typed):
    """Train (or continue) the hierarchical run in `run_dir` (None: a new runs/<arch>-<n>); return
    (run folder, the cascade's metrics)."""
    continuing = run_dir is not None and is_hierarchical(run_dir)
    check_start(run_dir, resume, continuing)
    options, df = continued_run(run_dir, typed) if continuing else fresh_run(typed)
    if continuing:
        changed = mapping_differences(rf.load_config(run_dir), options)
        if changed:
            raise UsageError(f"{run_dir} is an interrupted hierarchical run, but {changed[0]}; restore it to "
                             f"continue, or start a new run with another --out")
    classes = check_training_splits(df, options.labels)
    mapping = resolve_mapping(df, options.hierarchy, options.labels)
    frames = sub_frames(df, mapping, options.hierarchy, options.labels)
    run_dir = Path(run_dir) if run_dir is not None else rf.default_run_dir(options.arch)
    quiet_backend()  # before config.json's package versions import it
    with rf.locked(run_dir):
        if continuing:
            log(f"resuming the hierarchical run {run_dir}")
        else:
            write_record(run_dir, options, df, classes, mapping, frames)
        finished = train_sub_models(run_dir, options, list(frames), callbacks)
        return report_cascade(run_dir, df, classes, options, finished)


def check_start(run_dir, resume, continuing):
    """Refuse a finished hierarchical run, --resume with nothing to resume, and a folder holding a flat run."""
    if continuing and rf.run_finished(run_dir):
        raise UsageError(f"{run_dir} already holds a trained hierarchical run; choose another --out")
    if resume and not continuing:
        raise UsageError(f"nothing to resume in {run_dir}: it holds no unfinished hierarchical run")
    if not continuing and run_dir is not None and ((run_dir / rf.MODEL).exists() or (run_dir / rf.BACKUP).exists()):
        raise UsageError(f"{run_dir} holds a flat run; choose another --out for the hierarchical one")


def write_record(run_dir, options, df, classes, mapping, frames):
    """The top-level record: each sub-model's labels CSV, hierarchy.csv, classes.json, and config.json last
    (its presence marks the folder as a hierarchical run to continue)."""
    import pandas as pd

    from cnn.training.precision import resolve_precision

    for folder, rows in frames.items():
        write_csv(run_dir / folder / rf.SUB_LABELS, rows, index=False)
    write_csv(run_dir / rf.HIERARCHY, pd.DataFrame({"label": list(mapping), "parent": list(mapping.values())}),
              index=False)
    rf.save_classes(run_dir, classes)
    write_config(run_dir, options, df, classes, resolve_precision(options.precision), None,
                 hierarchy={**mapping_record(options.hierarchy), "models": list(frames)})
    parents = sorted(set(mapping.values()))
    log(f"hierarchical run into {run_dir}: a coarse model of {len(parents)} parents ({', '.join(parents)}), then "
        f"{len(frames) - 1} model(s) of their labels ({', '.join(f for f in frames if f != COARSE)})")


def sub_options(options, sub_dir):
    """A sub-model's train-cnn options: the run's own, on the sub-model's labels CSV (by its absolute path, so a
    rerun naming --out differently, relative or absolute, finds the same sub-models), flat."""
    return {**options.to_dict(), "labels": str((sub_dir / rf.SUB_LABELS).resolve()), "hierarchy": FLAT}


def train_sub_models(run_dir, options, folders, callbacks):
    """Train each sub-model in turn (a finished one is kept, an interrupted one continues); return
    {folder: its metrics}."""
    finished = {}
    for i, folder in enumerate(folders, start=1):
        sub_dir = run_dir / folder
        typed = sub_options(options, sub_dir)
        if rf.run_finished(sub_dir):
            check_same_run(sub_dir, TrainOptions(**typed), allowed=RESUMABLE)
            log(f"sub-model {i} of {len(folders)} ({folder}) already finished, kept")
        else:
            log(f"sub-model {i} of {len(folders)}: {folder} into {sub_dir}")
            train_flat(sub_dir, callbacks=callbacks, typed=typed)
        finished[folder] = rf.read_json(sub_dir / rf.METRICS)
    return finished


def report_cascade(run_dir, df, classes, options, finished):
    """Score the cascade once on the test split, write the top-level reports, log the headline figures."""
    from cnn.evaluation.scoring import score
    from cnn.runs.predictor import open_run
    from cnn.evaluation.html_report import write_html_report
    from cnn.evaluation.reports import summary_lines, write_reports

    rows, split = report_rows(df)
    _, _, metrics = score(open_run(run_dir), rows, options.batch_size, options.skip_missing)
    # A sub-model whose report was written after a kill has no training time: it counts as 0 s.
    metrics.update(split=split, labels=str(options.labels),
                   train_seconds=round(sum(m.get("train_seconds") or 0 for m in finished.values()), 1),
                   epochs_run=sum(m.get("epochs_run", 0) for m in finished.values()),
                   sub_models={folder: {k: m.get(k) for k in ("top1", "epochs_run", "best_epoch", "train_seconds")}
                               for folder, m in finished.items()})
    write_reports(run_dir, metrics, classes)
    write_html_report(run_dir)
    rf.remove_partial_files(run_dir)  # what a report killed before this attempt left
    rf.mark_finished(run_dir)
    for line in summary_lines(metrics):
        log(line)
    times = ", ".join(f"{folder} {m.get('train_seconds') or 0:.0f} s" for folder, m in finished.items())
    log(f"training took {metrics['train_seconds']:.0f} s over {len(finished)} sub-models ({times})")
    log(f"run folder: {run_dir} (report.txt, metrics.json, confusion.png; sub-models in {', '.join(finished)})")
    return run_dir, metrics
