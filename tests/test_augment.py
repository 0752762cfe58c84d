"""Stateless augmentation: the affine transform by hand, and parallel batches that repeat with their seed."""
import numpy as np

from cnn.data.augment import affine_transforms, augment_batch, augment_batches
from common.tfenv import quiet_tensorflow

tf = quiet_tensorflow()


def test_zero_draws_are_the_identity():
    transforms = affine_transforms(tf.zeros((2, 6)), {"rotation": 0.1, "zoom": 0.2, "shear": 0.2, "shift": 0.1},
                                   8, 10).numpy()
    np.testing.assert_allclose(transforms, [[1, 0, 0, 0, 1, 0, 0, 0]] * 2, atol=1e-6)


def test_a_shift_moves_pixels_by_the_drawn_amount():
    image = tf.reshape(tf.range(16 * 16 * 3, dtype=tf.float32), (1, 16, 16, 3))
    draws = tf.constant([[0, 0, 0, 0.5, 0, 0]], tf.float32)  # shift x by +0.5 x 0.25 x 16 = 2 pixels
    transforms = affine_transforms(draws, {"shift": 0.25}, 16, 16)
    moved = tf.raw_ops.ImageProjectiveTransformV3(images=image, transforms=transforms, output_shape=[16, 16],
                                                  fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")
    np.testing.assert_allclose(moved[0, :, :14].numpy(), image[0, :, 2:].numpy())  # output x reads input x + 2


def test_a_quarter_turn_rotates_about_the_centre():
    image = tf.random.stateless_uniform((1, 9, 9, 1), seed=(1, 2)) * 255
    draws = tf.constant([[1, 0, 0, 0, 0, 0]], tf.float32)  # rotation 0.25 turn
    turned = tf.raw_ops.ImageProjectiveTransformV3(images=image, transforms=affine_transforms(draws, {"rotation": 0.25},
                                                   9, 9), output_shape=[9, 9], fill_value=0.0,
                                                   interpolation="BILINEAR", fill_mode="REFLECT")
    np.testing.assert_allclose(turned[0, :, :, 0].numpy(), np.rot90(image[0, :, :, 0].numpy(), k=1), atol=1e-3)


def batches(seed, spec, parallel_images=24):
    images = tf.random.stateless_uniform((parallel_images, 12, 12, 3), seed=(3, 4)) * 255
    ds = tf.data.Dataset.from_tensor_slices((images, tf.zeros(parallel_images))).batch(4)
    augmented = augment_batches(ds, spec, seed)
    return [np.concatenate([x.numpy() for x, _ in augmented]) for _ in range(2)], images.numpy()


def test_parallel_batches_repeat_with_the_seed_and_change_each_epoch():
    spec = {"flip": True, "rotation": 0.1, "zoom": 0.2, "shear": 0.2, "shift": 0.1, "colour": 0.2, "erase": 0.5}
    (first, second), plain = batches(7, spec)
    (again, _), _ = batches(7, spec)
    (other, _), _ = batches(8, spec)
    np.testing.assert_array_equal(first, again)  # same seed, same pictures, whatever the thread order
    assert not np.allclose(first, second)  # a new draw each epoch
    assert not np.allclose(first, other) and not np.allclose(first, plain)
    assert first.min() >= 0 and first.max() <= 255.001


def test_flip_alone_mirrors_about_half_the_images():
    images = tf.random.stateless_uniform((64, 6, 6, 3), seed=(5, 6))
    out = augment_batch(images, tf.constant([1, 2], tf.int64), {"flip": True}).numpy()
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images.numpy())]
    kept = [np.array_equal(o, i) for o, i in zip(out, images.numpy())]
    assert all(f or k for f, k in zip(flipped, kept)) and 16 < sum(flipped) < 48


def test_crop_boxes_stay_inside_and_have_the_drawn_side():
    from cnn.data.augment import crop_boxes

    draws = tf.random.stateless_uniform((500, 3), seed=(9, 9), minval=-1.0, maxval=1.0)
    boxes = crop_boxes(draws, 0.2).numpy()
    sides = boxes[:, 2] - boxes[:, 0]
    np.testing.assert_allclose(sides, boxes[:, 3] - boxes[:, 1], atol=1e-6)  # square
    np.testing.assert_allclose(sides, 1 - (draws.numpy()[:, 0] + 1) / 2 * 0.2, atol=1e-6)
    assert boxes.min() >= 0 and boxes.max() <= 1 + 1e-6 and sides.min() >= 0.8 - 1e-6


def test_a_full_box_crop_is_the_identity_and_a_half_crop_is_the_top_left_quarter():
    image = tf.reshape(tf.range(8 * 8 * 3, dtype=tf.float32), (1, 8, 8, 3))
    full = augment_batch(image, tf.constant([0, 0], tf.int64), {"crop": 1e-9})
    np.testing.assert_allclose(full.numpy(), image.numpy(), atol=1e-3)
    quarter = tf.image.crop_and_resize(image, [[0.0, 0.0, 3 / 7, 3 / 7]], [0], (4, 4))
    np.testing.assert_allclose(quarter.numpy(), image.numpy()[:, :4, :4], atol=1e-4)


def test_crop_and_flip_together_mirror_the_crop():
    """With crop and flip, the flip rides in the crop box (x1 > x2): each output is its crop, mirrored or not."""
    images = tf.random.stateless_uniform((32, 10, 10, 3), seed=(4, 2)) * 255
    pair = tf.constant([3, 1], tf.int64)
    both = augment_batch(images, pair, {"crop": 0.3, "flip": True}).numpy()
    crop = augment_batch(images, pair, {"crop": 0.3}).numpy()
    mirrored = [np.allclose(b, c[:, ::-1], atol=1e-3) for b, c in zip(both, crop)]
    same = [np.allclose(b, c, atol=1e-3) for b, c in zip(both, crop)]
    assert all(m or s for m, s in zip(mirrored, same)) and 6 < sum(mirrored) < 26


def test_colour_jitter_scales_brightness_contrast_and_saturation_by_hand():
    from cnn.data.augment import jitter_colour

    images = tf.random.stateless_uniform((3, 5, 5, 3), seed=(7, 1)) * 200
    draws = tf.constant([[0.5, 0.5, 0.5], [1.0, 0.5, 0.5], [0.5, 0.0, 0.25]])  # identity; brighter; less contrast+grey
    out = jitter_colour(images, draws, 0.2).numpy()
    x = images.numpy().astype("float64")
    np.testing.assert_allclose(out[0], x[0], atol=1e-3)
    np.testing.assert_allclose(out[1], np.clip(x[1] * 1.2, 0, 255), atol=1e-3)
    mean = x[2].mean()
    y = mean + (x[2] - mean) * 0.8
    grey = y.mean(axis=2, keepdims=True)
    np.testing.assert_allclose(out[2], np.clip(grey + (y - grey) * 0.9, 0, 255), atol=1e-3)


def test_erasing_fills_one_rectangle_of_the_drawn_area_with_the_mean_colour():
    from cnn.data.augment import ERASED_AREA, erase

    images = tf.random.stateless_uniform((2, 40, 40, 3), seed=(2, 8)) * 255
    draws = tf.constant([[0.1, 0.5, 0.5, 0.25, 0.75], [0.9, 0.5, 0.5, 0.25, 0.75]])  # erased; kept (p = 0.4)
    out = erase(images, draws, 0.4).numpy()
    x = images.numpy()
    np.testing.assert_array_equal(out[1], x[1])
    changed = np.any(out[0] != x[0], axis=2)
    rows, cols = np.nonzero(changed)
    assert changed.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # one rectangle
    area = ERASED_AREA[0] + 0.5 * (ERASED_AREA[1] - ERASED_AREA[0])  # aspect 1 at the draw's middle: a square
    side = np.sqrt(area) * 40
    assert abs((rows.max() - rows.min() + 1) - side) <= 1 and abs((cols.max() - cols.min() + 1) - side) <= 1
    np.testing.assert_allclose(out[0][changed], np.broadcast_to(x[0].mean(axis=(0, 1)), (changed.sum(), 3)),
                               rtol=1e-5)


def test_colour_and_erase_leave_the_geometric_draws_as_they_were():
    images = tf.random.stateless_uniform((64, 12, 12, 3), seed=(1, 3)) * 255
    pair = tf.constant([5, 9], tf.int64)
    crop = augment_batch(images, pair, {"crop": 0.3, "flip": True}).numpy()
    erased = augment_batch(images, pair, {"crop": 0.3, "flip": True, "erase": 0.5}).numpy()
    kept = [np.array_equal(e, c) for e, c in zip(erased, crop)]
    assert 16 < len(kept) - sum(kept) < 48  # about half erased; the others are exactly the crop
    coloured = augment_batch(images, pair, {"crop": 0.3, "flip": True, "colour": 0.3}).numpy()
    assert coloured.min() >= 0 and coloured.max() <= 255 and not np.allclose(coloured, crop)
