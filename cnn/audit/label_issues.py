"""audit-labels: likely label errors by confident learning (Northcutt et al. 2021) on out-of-fold probabilities.

The train split is cut into K folds stratified by label and grouped by product (scikit-learn's
StratifiedGroupKFold: every fold holds out about 1/K of each label, no product straddles two folds; a "group"
that is a whole class folder is no product and its images are dealt singly). Fold k trains a run on the other
folds with the train-cnn options given (OUT/fold-<k>/: resumable and kept when finished, like a sweep's runs)
and scores its held-out images; cleanlab's `find_label_issues` then ranks the images whose given label their
out-of-fold probabilities doubt most. cleanlab is the library chosen: it is confident learning's reference
implementation, and writing it again would be neither shorter nor better tested.
"""
from pathlib import Path

from cnn import runfolder as rf
from cnn.data.labels_csv import check_training_splits, read_labels
from cnn.training.options import TrainOptions
from cnn.training.runstate import check_same_run
from common.atomic import write_csv, write_json
from common.console import writer
from common.destinations import check_report_outputs
from common.hashing import sha256_file
from common.errors import UsageError

log = writer("audit-labels")
SUSPECTS_DRAWN = 24  # the picture grid's images: the most likely errors


def fold_groups(train, folds):
    """Each train row's group for the folds: its product group, or the image itself where the group is no product.
    A group holding more than 1/K of a label's train images (a folder per class, as make-labels writes for
    clothing-dataset-small) cannot be held out whole without starving some fold's training of that label."""
    groups = (train["group"] if "group" in train else train["path"]).astype(str)
    sizes = train.groupby([groups, train["label"]]).size()  # (group, label) -> images
    share = sizes / train["label"].value_counts()[sizes.index.get_level_values(1)].to_numpy()
    whole = sorted(set(share[share > 1 / folds].index.get_level_values(0)))
    if whole:
        log(f"{len(whole)} group(s) hold more than 1/{folds} of a label's train images (e.g. {whole[0]}): no product, "
            f"so their images are dealt to the folds one by one")
    return groups.where(~groups.isin(whole), train["path"].astype(str))


def fold_of_rows(train, folds, seed=0):
    """A fold number per train row: scikit-learn's StratifiedGroupKFold over the product groups (fold_groups), so
    each fold holds out about 1/K of every label and no product straddles two folds. A label with fewer train
    images than folds, or a fold whose training part lacks a label, is refused before anything trains."""
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    counts = train["label"].value_counts()
    if counts.min() < folds:
        raise UsageError(f"label {counts.idxmin()} has {counts.min()} image(s) in the train split, fewer than "
                         f"--folds {folds}; use --folds {max(2, counts.min())} or fewer, or drop the label")
    fold = np.empty(len(train), dtype=int)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed % 2**32)
    for k, (_, held) in enumerate(splitter.split(train, train["label"], fold_groups(train, folds))):
        fold[held] = k
    for k in range(folds):
        missing = sorted(set(train["label"]) - set(train["label"][fold != k]))
        if missing:
            raise UsageError(f"fold {k} would train without label {missing[0]} (its products all fall in one fold); "
                             f"use fewer --folds")
    return [int(f) for f in fold]


def fold_table(df, train, fold, k):
    """Fold k's labels CSV: the other folds' train rows as train, the val split as val, fold k's rows as test."""
    import pandas as pd

    held = train[[f == k for f in fold]]
    kept = train[[f != k for f in fold]]
    return pd.concat([kept.assign(split="train"), df[df.split == "val"], held.assign(split="test")],
                     ignore_index=True)


def out_of_fold(df, out, folds, options, seed=0):
    """(train rows, their out-of-fold probabilities at each fold's calibrated temperature, class names, each fold's
    figures on its held-out images)."""
    import numpy as np

    from cnn.training.train import train as train_run

    classes = check_training_splits(df, "the labels CSV")
    train = df[df.split == "train"].reset_index(drop=True)
    fold = fold_of_rows(train, folds, seed)
    probs, figures = np.full((len(train), len(classes)), np.nan), []
    for k in range(folds):
        csv, folder = Path(out) / f"fold-{k}.csv", Path(out) / f"fold-{k}"
        write_csv(csv, fold_table(df, train, fold, k), index=False)
        typed = {**options, "labels": str(csv.resolve())}
        if rf.run_finished(folder):
            check_same_run(folder, TrainOptions(**typed))
            log(f"fold {k + 1} of {folds} already trained, kept")
        else:
            log(f"fold {k + 1} of {folds}: training on the other folds into {folder}")
            train_run(out=folder, **typed)
        held = [i for i, f in enumerate(fold) if f == k]
        kept, fold_probs, top1 = score_fold(k, folder, train.iloc[held], classes)
        probs[[held[i] for i in kept]] = fold_probs
        figures.append({"fold": k, "held_out": len(held), "top1": top1})
    readable = ~np.isnan(probs).any(axis=1)
    return train[readable].reset_index(drop=True), probs[readable], classes, figures


def score_fold(k, folder, held, classes):
    """(positions of the readable held-out rows, their probabilities at the fold's temperature, top-1 on them).
    A fold whose model lacks a class or is no better than chance out of fold is refused, naming the fold: its
    probabilities would flag most images, not the mislabelled ones."""
    import numpy as np

    from cnn.evaluation.scoring import predict_rows
    from cnn.runs.temperature import scaled

    run = rf.load_run(folder)
    if run.classes != list(classes):
        raise UsageError(f"fold {k} ({folder}) predicts {len(run.classes)} classes, not the CSV's {len(classes)}; "
                         f"remove the folder and rerun")
    truth, outputs, skipped = predict_rows(run.model, held, run.classes, run.image_size)
    top1 = float(np.mean(outputs.argmax(axis=1) == truth))
    if top1 <= 1 / len(classes):
        raise UsageError(f"fold {k}'s model ({folder}) scores top-1 {top1:.3f} on its {len(truth)} held-out images, "
                         f"no better than chance (1/{len(classes)}); its probabilities cannot rank label errors: "
                         f"train the folds longer (options after --) and rerun")
    dropped = set(skipped)
    kept = [i for i, path in enumerate(held["path"]) if path not in dropped]
    return kept, scaled(outputs, run.temperature), top1


def rank_issues(train, probs, classes):
    """label_issues.csv's table: the images cleanlab flags, most likely error first, with the label their
    probabilities suggest and cleanlab's label-quality score (low = likely wrong)."""
    import numpy as np
    import pandas as pd
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    given = np.array([classes.index(label) for label in train["label"]])
    ranked = find_label_issues(labels=given, pred_probs=probs, return_indices_ranked_by="self_confidence")
    scores = get_label_quality_scores(given, probs)
    return pd.DataFrame({"rank": range(1, len(ranked) + 1), "path": train["path"].iloc[ranked].to_numpy(),
                         "given_label": [classes[given[i]] for i in ranked],
                         "suggested_label": [classes[int(probs[i].argmax())] for i in ranked],
                         "score": [round(float(scores[i]), 4) for i in ranked],
                         "p_given": [round(float(probs[i, given[i]]), 4) for i in ranked]})


def summarise_issues(train, issues):
    """audit_labels.json's figures: counts per class and the confusable pairs (given -> suggested)."""
    pairs = issues.groupby(["given_label", "suggested_label"]).size().sort_values(ascending=False)
    return {"images": int(len(train)), "flagged": int(len(issues)),
            "flagged_per_class": issues["given_label"].value_counts().to_dict(),
            "images_per_class": train["label"].value_counts().to_dict(),
            "confusable_pairs": [{"given": g, "suggested": s, "images": int(n)} for (g, s), n in pairs.items()]}


def draw_suspects(issues, path):
    """A picture grid of the most likely errors, each titled with its given and suggested label."""
    from cnn.evaluation.pictures import draw_sheet, open_image

    top = issues.head(SUSPECTS_DRAWN)
    draw_sheet([(cell, open_image(p), f"#{r} given {g}\nsuggested {s}") for cell, (p, r, g, s) in
                enumerate(zip(top["path"], top["rank"], top["given_label"], top["suggested_label"]))], 6, path)


def audit_labels(labels, *, out, folds=5, write_clean=None, options=None, seed=0):
    """Train `folds` fold runs (options: train-cnn keywords), rank likely label errors, write OUT/label_issues.csv,
    audit_labels.json, suspects.png (and the cleaned CSV); return the figures."""
    if folds < 2:
        raise UsageError(f"--folds {folds}: cross-validation needs at least 2 folds")
    df = read_labels(labels)
    df = df if "group" in df else df.assign(group=df["path"])
    check_report_outputs(labels, df["path"], out, write_clean, ("--out", "--write-clean"), "audit-labels")
    train, probs, classes, fold_figures = out_of_fold(df, out, folds, {**(options or {})}, seed)
    issues = rank_issues(train, probs, classes)
    figures = {**summarise_issues(train, issues), "folds": folds, "fold_scores": fold_figures, "labels": str(labels),
               "labels_sha256": sha256_file(labels),
               "method": "cleanlab.filter.find_label_issues on out-of-fold probabilities (self_confidence ranking)"}
    (Path(out) / rf.AUDIT_LABELS).unlink(missing_ok=True)  # written last: a killed rerun leaves no finished audit
    write_csv(Path(out) / "label_issues.csv", issues, index=False)
    draw_suspects(issues, Path(out) / "suspects.png")
    if write_clean is not None:
        write_csv(write_clean, df[~df["path"].isin(set(issues["path"]))], index=False)
    write_json(Path(out) / rf.AUDIT_LABELS, figures)
    log(f"{figures['flagged']} of {figures['images']} train images flagged as likely label errors; "
        f"written to {out}/ (label_issues.csv, audit_labels.json, suspects.png)")
    return figures
