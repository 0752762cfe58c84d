"""A run's probabilities at its calibrated temperature: softmax(log p / T) (temperature scaling, Guo et al. 2017;
fitted by cnn.evaluation.calibration)."""
import numpy as np

EPS = 1e-12  # probabilities are clipped here before the log


def scaled(probs, temperature):
    """softmax(log p / T): the probabilities at temperature T."""
    logits = np.log(np.clip(probs, EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def at_temperature(probs, temperature):
    """`probs` (any array of softmax outputs) as float64 at `temperature`; unchanged at T = 1."""
    probs = np.asarray(probs, dtype=np.float64)
    return probs if temperature == 1.0 else scaled(probs, temperature)
