"""Training-only augmentation that runs in parallel and still repeats with its seed.

Each batch draws its transforms with TensorFlow's stateless random ops from a seed pair of its own,
taken from `tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`: a stream fixed by the run's
seed that differs from epoch to epoch. No op holds random state, so the batches can be transformed in
parallel (`num_parallel_calls`) in any order and the same seed still gives the same pictures.
`crop` is a random-resized crop (a square of 1-crop to 1 times the side, anywhere in the image, resized
back: `crop_and_resize`, cheap); rotation, zoom, shear and shift are one affine transform per image
(reflect-padded, bilinear, about 7x the crop's cost on CPU), as Keras's RandomRotation/RandomZoom/
RandomShear/RandomTranslation layers do one at a time. `colour` jitters brightness, contrast and
saturation (timm's and Ultralytics' colour jitter); `erase` is random erasing (Zhong et al. 2017, which
Ultralytics' classifier applies with probability 0.4): a rectangle filled with the image's mean colour.
"""
import math

# Augmentation recipe of the clothing write-ups (`--augment default`): flips, small rotations, zoom,
# shear and shifts. Factors as Keras's preprocessing layers take them (rotation: fraction of a full turn;
# zoom: +- fraction of the size; shear: +- the shear factor; shift: +- fraction of the size).
DEFAULT_AUGMENT = {"flip": True, "rotation": 0.1, "zoom": 0.2, "shear": 0.2, "shift": 0.1}
AUGMENT_KEYS = ("flip", "rotation", "zoom", "shear", "shift", "crop", "colour", "erase")
AFFINE_KEYS = ("rotation", "zoom", "shear", "shift")
ERASED_AREA = (0.02, 1 / 3)  # random erasing's share of the image, and its aspect range (Zhong et al.)
ERASED_ASPECT = (0.3, 1 / 0.3)


def parse_augment(text):
    """An augmentation spec from CLI text: 'default', or e.g. 'flip,rotation=0.1,zoom=0.2,shear=0.2,shift=0.1'
    (colour=c: brightness, contrast and saturation factors in 1 +- c; erase=p: random erasing with probability p)."""
    text = text.strip()
    if text == "default":
        return dict(DEFAULT_AUGMENT)
    spec = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        key = key.strip()
        if key == "flip":
            spec[key] = value.strip().lower() not in ("0", "false", "no", "off")
            continue
        try:
            spec[key] = float(value)
        except ValueError:
            raise ValueError(f"{item!r} needs a number, e.g. {key}=0.1") from None
    return check_augment(spec)


def check_augment(spec):
    """Validate an augmentation dict (known keys, factors in [0, 1)); returns it."""
    unknown = sorted(set(spec) - set(AUGMENT_KEYS))
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(unknown)}; known: {', '.join(AUGMENT_KEYS)}")
    for key in AUGMENT_KEYS[1:]:
        if key in spec and not 0 <= spec[key] < 1:
            raise ValueError(f"{key}={spec[key]} is out of range; use a fraction in [0, 1)")
    if not any(spec.values()):
        raise ValueError("the augmentation spec turns nothing on; use e.g. 'flip,rotation=0.1' or 'default'")
    return spec


def augment_batches(ds, spec, seed=None):
    """Map `augment_batch` over a dataset of (images, labels) batches, in parallel, one seed pair per batch."""
    import tensorflow as tf

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip(ds, seeds).map(lambda batch, pair: (augment_batch(batch[0], pair, spec), batch[1]),
                                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def augment_batch(images, pair, spec):
    """Randomly flip and affine-transform each image of a float32 [B, H, W, 3] batch, drawn from seed `pair`."""
    import tensorflow as tf

    shape = tf.shape(images)
    draws = tf.random.stateless_uniform([shape[0], 9], seed=pair, minval=-1.0, maxval=1.0)
    flip = draws[:, 5] < 0 if spec.get("flip") else None
    if spec.get("crop"):
        boxes = crop_boxes(draws[:, 6:9], spec["crop"])
        if flip is not None:  # a box with x1 > x2 comes out mirrored: the flip costs nothing extra
            boxes = tf.where(flip[:, None], tf.gather(boxes, [0, 3, 2, 1], axis=1), boxes)
            flip = None
        images = tf.image.crop_and_resize(images, boxes, tf.range(shape[0]), shape[1:3])
    if any(spec.get(key) for key in AFFINE_KEYS):
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=affine_transforms(draws, spec, shape[1], shape[2]), output_shape=shape[1:3],
            fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")
    if flip is not None:
        images = tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
    if spec.get("colour") or spec.get("erase"):  # draws of their own, so the geometric ones stay as they were
        more = tf.random.stateless_uniform([shape[0], 8], seed=tf.random.experimental.stateless_fold_in(pair, 1))
        if spec.get("colour"):
            images = jitter_colour(images, more[:, :3], spec["colour"])
        if spec.get("erase"):
            images = erase(images, more[:, 3:], spec["erase"])
    return images


def jitter_colour(images, draws, strength):
    """Scale each image's brightness, contrast (about its mean) and saturation (about its grey) by factors
    1 + (2u - 1) x strength, from [B, 3] uniform draws u in [0, 1); pixels stay in 0..255."""
    import tensorflow as tf

    factors = 1.0 + (2.0 * draws - 1.0) * strength
    images = images * factors[:, 0, None, None, None]
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    images = mean + (images - mean) * factors[:, 1, None, None, None]
    grey = tf.reduce_mean(images, axis=3, keepdims=True)
    images = grey + (images - grey) * factors[:, 2, None, None, None]
    return tf.clip_by_value(images, 0.0, 255.0)


def erase_masks(draws, probability, height, width):
    """[B, H, W, 1] booleans: with probability `probability` an image gets a rectangle of ERASED_AREA of its
    area and log-uniform ERASED_ASPECT placed uniformly inside it, from [B, 5] uniform draws in [0, 1)."""
    import tensorflow as tf

    low, high = math.log(ERASED_ASPECT[0]), math.log(ERASED_ASPECT[1])
    area = ERASED_AREA[0] + draws[:, 1] * (ERASED_AREA[1] - ERASED_AREA[0])
    aspect = tf.exp(low + draws[:, 2] * (high - low))
    h, w = tf.minimum(tf.sqrt(area * aspect), 1.0), tf.minimum(tf.sqrt(area / aspect), 1.0)
    top, left = draws[:, 3] * (1.0 - h), draws[:, 4] * (1.0 - w)
    rows = (tf.range(height, dtype=tf.float32) + 0.5) / tf.cast(height, tf.float32)
    cols = (tf.range(width, dtype=tf.float32) + 0.5) / tf.cast(width, tf.float32)
    inside_rows = (rows[None, :] >= top[:, None]) & (rows[None, :] < (top + h)[:, None])
    inside_cols = (cols[None, :] >= left[:, None]) & (cols[None, :] < (left + w)[:, None])
    chosen = draws[:, 0] < probability
    return (inside_rows[:, :, None] & inside_cols[:, None, :] & chosen[:, None, None])[..., None]


def erase(images, draws, probability):
    """Random erasing: each image's `erase_masks` rectangle filled with the image's mean colour."""
    import tensorflow as tf

    shape = tf.shape(images)
    mask = erase_masks(draws, probability, shape[1], shape[2])
    return tf.where(mask, tf.reduce_mean(images, axis=[1, 2], keepdims=True), images)


def crop_boxes(draws, crop):
    """[B, 4] normalised boxes (y1, x1, y2, x2) from [B, 3] uniform draws in [-1, 1]: a square of side
    1 - u x crop (u uniform in [0, 1]) placed uniformly inside the image."""
    import tensorflow as tf

    unit = (draws + 1) / 2
    side = 1.0 - unit[:, 0] * crop
    top, left = (1.0 - side) * unit[:, 1], (1.0 - side) * unit[:, 2]
    return tf.stack([top, left, top + side, left + side], axis=1)


def affine_transforms(draws, spec, height, width):
    """[B, 8] projective transforms (output pixel -> input pixel) about the image centre, from uniform draws.

    input = centre + A (output - centre) + shift, with A = zoom x rotation x shear:
    a rotation by r turns, a zoom by a factor in 1 +- z, a shear of x by y, shifts as fractions of the size.
    """
    import tensorflow as tf

    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    angle = draws[:, 0] * spec.get("rotation", 0.0) * 2 * math.pi
    zoom = 1.0 + draws[:, 1] * spec.get("zoom", 0.0)
    shear = draws[:, 2] * spec.get("shear", 0.0)
    tx, ty = draws[:, 3] * spec.get("shift", 0.0) * w, draws[:, 4] * spec.get("shift", 0.0) * h
    cos, sin = tf.cos(angle) * zoom, tf.sin(angle) * zoom
    a, b = cos, cos * shear - sin  # [[cos, -sin], [sin, cos]] @ [[1, shear], [0, 1]], scaled by zoom
    d, e = sin, sin * shear + cos
    cx, cy = (w - 1) / 2, (h - 1) / 2
    zero = tf.zeros_like(a)
    return tf.stack([a, b, cx + tx - a * cx - b * cy, d, e, cy + ty - d * cx - e * cy, zero, zero], axis=1)
