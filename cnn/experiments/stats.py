"""Summary statistics over seeds, in plain Python: mean, sample standard deviation, and a paired difference's
95% interval from the t distribution (so a difference smaller than the seed noise is called so)."""
import math

# Two-sided 95% critical values of Student's t for 1..30 degrees of freedom (beyond: the normal's 1.96).
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
       2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
       2.045, 2.042)


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
    n = stats["n"]
    half = (T95[n - 2] if n - 1 <= len(T95) else 1.96) * stats["sd"] / math.sqrt(n) if n > 1 else math.inf
    low, high = stats["mean"] - half, stats["mean"] + half
    return {"mean": stats["mean"], "low": low, "high": high, "n": n, "distinguishable": low > 0 or high < 0}
