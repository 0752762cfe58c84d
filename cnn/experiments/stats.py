"""Summary statistics over seeds: mean, sample standard deviation, and a paired difference's 95% interval from
Student's t distribution (scipy.stats.t), so a difference smaller than the seed noise is called so."""
import math


def t95(dof):
    """The two-sided 95% critical value of Student's t with `dof` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def half_width(values):
    """Half the 95% t interval of the mean of `values` (0 for one value)."""
    n = len(values)
    return t95(n - 1) * describe(values)["sd"] / math.sqrt(n) if n > 1 else 0.0


def describe(values):
    """{mean, sd (n-1 in the denominator; 0 for one value), min, max, n} of a list of numbers."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "sd": sd, "min": min(values), "max": max(values), "n": n}


def paired_difference(values, baseline):
    """Mean of values[i] - baseline[i] with its 95% t interval, and whether the interval excludes 0."""
    diffs = [a - b for a, b in zip(values, baseline)]
    stats = describe(diffs)
    half = half_width(diffs) if stats["n"] > 1 else math.inf
    low, high = stats["mean"] - half, stats["mean"] + half
    return {"mean": stats["mean"], "low": low, "high": high, "n": stats["n"], "distinguishable": low > 0 or high < 0}
