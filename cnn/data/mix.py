"""--mix: mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) on training batches, reproducible from the seed.

Each batch draws, with TensorFlow's stateless random ops from a seed pair of its own (as cnn.data.augment
does), one mixing weight lam ~ Beta(alpha, alpha) and a permutation of the batch. mixup blends every image
with its partner, lam * x + (1 - lam) * x[perm], and the one-hot labels alike; CutMix pastes a box of the
partner covering a (1 - lam) share of the image and weighs the labels by the areas actually kept. With
`p` < 1 a batch is mixed with probability p (else lam = 1: left as it is). Labels stay sums of one.
"""
import math

MIX_KINDS = ("mixup", "cutmix")
SEED_OFFSET = 7919  # the mixing draws' stream, apart from the augmentation's (same run seed, other numbers)


def parse_mix(text):
    """(kind, alpha, p) from 'mixup=A' or 'cutmix=A', optionally ',p=P'; None for 'none'. ValueError otherwise."""
    text = text.strip()
    if text == "none":
        return None
    parts = dict(item.strip().partition("=")[::2] for item in text.split(",") if item.strip())
    kinds = [k for k in parts if k in MIX_KINDS]
    unknown = sorted(set(parts) - set(MIX_KINDS) - {"p"})
    if len(kinds) != 1 or unknown:
        raise ValueError("give one of mixup=ALPHA or cutmix=ALPHA, optionally with ,p=PROBABILITY")
    try:
        alpha, probability = float(parts[kinds[0]]), float(parts.get("p", 1.0))
    except ValueError:
        raise ValueError("alpha and p must be numbers, e.g. mixup=0.2,p=0.5") from None
    if not (math.isfinite(alpha) and alpha > 0) or not 0 < probability <= 1:  # nan and inf pass a plain '> 0'
        raise ValueError(f"alpha must be a finite number > 0 and p in (0, 1]; got {kinds[0]}={alpha}, p={probability}")
    return kinds[0], alpha, probability


def beta_sample(pair, alpha):
    """lam ~ Beta(alpha, alpha) from the stateless seed `pair` (a ratio of two Gamma draws)."""
    import tensorflow as tf

    g = tf.random.stateless_gamma([2], seed=pair, alpha=alpha)
    return g[0] / (g[0] + g[1])


def mix_batch(images, labels, pair, kind, alpha, probability=1.0):
    """(mixed images, mixed labels, lam kept, permutation) of one float32 [B, H, W, C] batch and its one-hot
    labels, drawn from seed `pair`."""
    import tensorflow as tf

    fold = tf.random.experimental.stateless_fold_in
    lam = beta_sample(pair, alpha)
    mixed = tf.random.stateless_uniform([], seed=fold(pair, 1)) < probability
    lam = tf.where(mixed, lam, 1.0)
    perm = tf.argsort(tf.random.stateless_uniform([tf.shape(images)[0]], seed=fold(pair, 2)))
    partner, partner_labels = tf.gather(images, perm), tf.gather(labels, perm)
    if kind == "cutmix":
        mask = cut_box(tf.shape(images), lam, fold(pair, 3))
        images = images * (1.0 - mask) + partner * mask
        lam = 1.0 - tf.reduce_mean(mask)  # the share of each image kept, as clipped at the border
    else:
        images = lam * images + (1.0 - lam) * partner
    return images, lam * labels + (1.0 - lam) * partner_labels, lam, perm


def cut_box(shape, lam, pair):
    """A [1, H, W, 1] mask of 1s over a box of about (1 - lam) of the image, centred at a uniform point and
    clipped at the border."""
    import tensorflow as tf

    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    side = tf.sqrt(1.0 - lam)
    centre = tf.random.stateless_uniform([2], seed=pair) * tf.stack([height, width])
    top, bottom = centre[0] - side * height / 2, centre[0] + side * height / 2
    left, right = centre[1] - side * width / 2, centre[1] + side * width / 2
    rows = tf.range(height)[:, None] + 0.5
    cols = tf.range(width)[None, :] + 0.5
    inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    return tf.cast(inside, tf.float32)[None, :, :, None]


def mix_batches(ds, mix, seed=None):
    """Map `mix_batch` over a dataset of (images, one-hot) batches, one seed pair per batch (reproducible)."""
    import tensorflow as tf

    kind, alpha, probability = parse_mix(mix) if isinstance(mix, str) else mix
    seeds = tf.data.Dataset.random(seed=None if seed is None else seed + SEED_OFFSET,
                                   rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(ds, seeds).map(
        lambda batch, pair: mix_batch(batch[0], batch[1], pair, kind, alpha, probability)[:2],
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
