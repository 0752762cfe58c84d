"""A run whose training accuracy fell to the largest class's share after it had learned, and stayed there (every
image predicted as one class: seen with mixed bfloat16 on AMX CPUs, docs/results/amx-bf16.md), is reported as
collapsed rather than passed off as an ordinary finished run."""
MARGIN = 0.02  # training accuracy within this of the largest class's share counts as "one class for everything"
LEARNED = 0.2  # ... after some epoch had beaten that share by at least this much


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
