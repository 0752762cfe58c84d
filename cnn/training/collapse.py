"""Collapse: every image predicted as one class after the network had learned (seen with mixed bfloat16 on AMX CPUs,
docs/results/amx-bf16.md). An epoch whose validation accuracy falls to the largest class's share is undone during
training (its weights go back to where the epoch began, as large-model training restarts before a loss spike:
Chowdhery et al. 2022); a run whose training accuracy stayed there to the end is reported as collapsed rather than
passed off as an ordinary finished run."""
import math

MARGIN = 0.02  # accuracy within this of the largest class's share counts as "one class for everything"
LEARNED = 0.1  # ... after some epoch had beaten that share by at least this much (0.2 missed a real collapse
# whose best epoch had beaten it by 0.199: docs/results/amx-bf16.md)
ROLLBACKS = 3  # collapses undone in one run; at the next one the run stops


def collapsed_at(history, largest_share):
    """The first epoch (1-based) of a collapse that lasted to the end of `history` (history.csv's rows), or None."""
    if "accuracy" not in history:
        return None
    accuracy = history["accuracy"].to_numpy()
    low = accuracy <= largest_share + MARGIN
    if not len(accuracy) or not low[-1] or accuracy.max() < largest_share + LEARNED:
        return None
    start = len(low) - 1
    while start > 0 and low[start - 1]:
        start -= 1
    return int(history["epoch"].iloc[start]) + 1


def collapse_warning(epoch, share, best_epoch, precision):
    """The report's line for a run that collapsed at `epoch`, naming the way out."""
    fix = ("train again with --precision float32" if precision == "mixed_bfloat16"
           else "train again with a lower --lr")
    return (f"warning: training collapsed at epoch {epoch}: from there on every training image was predicted as "
            f"one class (training accuracy at the largest class's share, {share:.3f}); model.keras is epoch "
            f"{best_epoch}, from before it; {fix}")


def rolls_back(options):
    """Whether a run with these TrainOptions rolls collapses back: not with --ema (its swapped weights would be mixed
    up) nor in TensorFlow's own multiworker loop (which has no per-epoch weight edits)."""
    return not options.ema and not options.tensorflow_loop


def fell_to_share(val_accuracy, best_before, val_share):
    """Whether an epoch's validation accuracy fell to the val split's largest class share after an earlier epoch's
    (best_before) had beaten it by LEARNED: the weights stopped telling the classes apart."""
    return val_accuracy <= val_share + MARGIN and best_before >= val_share + LEARNED


def collapse_epochs(history, val_share):
    """The epochs (1-based) of history.csv's rows whose validation accuracy fell to the share (fell_to_share)."""
    best, epochs = -math.inf, []
    for epoch, accuracy in zip(history.get("epoch", ()), history.get("val_accuracy", ())):
        if fell_to_share(accuracy, best, val_share):
            epochs.append(int(epoch) + 1)
        best = max(best, accuracy)
    return epochs

