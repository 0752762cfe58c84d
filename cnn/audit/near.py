"""Sets of copies: exact (the same decoded pixels) and near (re-encoded, resized, slightly cropped), found
without comparing every pair.

Candidates: a KD-tree (scipy's cKDTree) over each image's 15 lowest-frequency DCT coefficients of its 32x32
grayscale thumbnail, each image's NEIGHBOURS nearest within RADIUS: a tree query, not a quadratic scan.
Confirmation: the two images at 64x64, one of them centre-cropped by each of SCALES so a cropped copy lines
up with its original (a pair that misses by less than 3x is looked at again with crops 0.01 apart: FINE_SCALES);
at the best alignment, two 99th percentiles over pixels must both be small: of the
largest RGB channel difference (0-1 pixels; colour), at most RGB_LIMIT, and of the difference of the
standardised grayscale images (in standard deviations; shape and texture, whatever the exposure), at most
GRAY_LIMIT. A copy differs by noise everywhere; two garments on the same bed, wall or hanger differ a lot
somewhere, which a hash or a correlation over the whole picture hides. The distance reported is the larger
of the two ratios to their limits (1 = the threshold). Measured on the generated sample's planted copies
(exact, re-encoded at quality 60, resized to 3/4, 5% cropped from each side): RGB <= 0.118 and gray <= 0.38;
on distinct images that pass the other test: RGB >= 0.25 (same shapes, other colours) or gray >= 0.72
(other shapes, same colours; two shirts on one hanger in clothing-dataset-small: 1.57).
"""
import numpy as np

RADIUS = 0.35  # candidate distance in the DCT space (planted 5% crops of the sample: <= 0.19; real photos
# cropped 3% a side, resized to 0.7 and saved at quality 60: up to 0.27)
NEIGHBOURS = 16  # at most this many nearest candidates per image: the checks grow as n, not n^2, however alike
# the photos are (a larger set of copies is still joined, through the chain of its members' nearest ones)
RGB_LIMIT = 0.18  # the aligned 99th-percentile channel difference (0-1 pixels) a copy stays under
GRAY_LIMIT = 0.6  # ... and of the standardised grayscale difference (standard deviations)
SCALES = (1.0, 0.95, 0.9, 0.85)  # centre crops tried to line a cropped copy up with its original
FINE_SCALES = tuple(round(1 - k / 100, 2) for k in range(16))  # 1.0 .. 0.85, 0.01 apart: a borderline pair's second look
REFINE_BELOW = 3.0  # a pair whose coarse distance is over 1 but under this is compared again at FINE_SCALES
SIDE = 64  # the confirming view's side
CACHED_VIEWS = 20_000  # images whose views are kept in memory (49 KB each as uint8: about 1 GB at most)


def low_frequencies(thumb):
    """The 4x4 lowest DCT coefficients of a normalised thumbnail, the constant one left out."""
    from scipy.fft import dctn

    return dctn(thumb, norm="ortho")[:4, :4].ravel()[1:]


def views(path, scales=SCALES):
    """The image at SIDE x SIDE RGB (uint8), for each centre crop of `scales`: (len(scales), SIDE, SIDE, 3)."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    out = []
    for s in scales:
        w, h = rgb.width * s, rgb.height * s
        box = ((rgb.width - w) / 2, (rgb.height - h) / 2, (rgb.width + w) / 2, (rgb.height + h) / 2)
        out.append(np.asarray(rgb.crop(box).resize((SIDE, SIDE), Image.BILINEAR)))
    return np.stack(out)


def standardised_gray(views_rgb):
    """Each view as grayscale (ITU-R 601 weights), zero mean and unit standard deviation: (..., SIDE * SIDE)."""
    gray = views_rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    gray -= gray.mean(axis=-1, keepdims=True)
    return gray / np.maximum(gray.std(axis=-1, keepdims=True), 1e-6)


def q99(differences):
    """The 99th percentile over the last axis (by partition: no full sort)."""
    k = int(0.99 * (differences.shape[-1] - 1))
    return np.partition(differences, k, axis=-1)[..., k]


def aligned_differences(a, others):
    """For one image's views `a` and the views of each of `others`: the distance at the best alignment (either
    image cropped to line up with the other), max(RGB q99 / RGB_LIMIT, gray q99 / GRAY_LIMIT); 0 for the same
    pixels, <= 1 for a copy. One numpy pass over all of them."""
    scales = len(a)
    a = np.asarray(a, np.float32).reshape(1, scales, SIDE * SIDE, 3) / 255
    b = np.asarray(others, np.float32).reshape(len(others), scales, SIDE * SIDE, 3) / 255
    rgb = q99(np.concatenate([np.abs(a - b[:, :1]), np.abs(a[:, :1] - b)], axis=1).max(axis=-1))
    ga, gb = standardised_gray(a), standardised_gray(b)
    gray = q99(np.concatenate([np.abs(ga - gb[:, :1]), np.abs(ga[:, :1] - gb)], axis=1))
    return np.maximum(rgb / RGB_LIMIT, gray / GRAY_LIMIT).min(axis=1)


def refined(path, others, differences):
    """`differences` (of the image at `path` to each of `others`) with every borderline one (over 1, under
    REFINE_BELOW) measured again at FINE_SCALES, 0.01 apart: a crop between two coarse scales (3% a side lies
    between 0.95 and 0.9) is misaligned by up to 2.5% of the side, enough to fail a copy of a garment's sharp
    edges. The image's own fine views are made once for all its borderline partners."""
    borderline = [k for k, d in enumerate(differences) if 1.0 < d < REFINE_BELOW]
    if not borderline:
        return list(differences)
    fine = aligned_differences(views(path, FINE_SCALES), [views(others[k], FINE_SCALES) for k in borderline])
    again = dict(zip(borderline, fine))
    return [again.get(k, d) for k, d in enumerate(differences)]


def exact_sets(fingerprints):
    """[[index, ...], ...]: images whose decoded pixels are identical, each set of two or more."""
    groups = {}
    for i, fp in enumerate(fingerprints):
        if fp.exact is not None:
            groups.setdefault(fp.exact, []).append(i)
    return [members for members in groups.values() if len(members) > 1]


def candidates(fingerprints):
    """{i: [j, ...]} (i < j): each image's NEIGHBOURS nearest by their thumbnails' low frequencies, within RADIUS,
    pixels not equal."""
    from scipy.spatial import cKDTree

    usable = [i for i, fp in enumerate(fingerprints) if fp.thumb is not None]
    if len(usable) < 2:
        return {}
    points = np.stack([low_frequencies(fingerprints[i].thumb) for i in usable])
    _, nearest = cKDTree(points).query(points, k=min(NEIGHBOURS + 1, len(usable)), distance_upper_bound=RADIUS)
    pairs = {tuple(sorted((usable[a], usable[b]))) for a, row in enumerate(nearest) for b in row
             if b < len(usable) and b != a}  # the tree marks "none within RADIUS" with len(usable)
    found = {}
    for i, j in sorted(pairs):
        if fingerprints[i].exact != fingerprints[j].exact:  # the same pixels are an exact set already
            found.setdefault(i, []).append(j)
    return found


def near_pairs(fingerprints, paths, progress=None):
    """[(i, j, difference), ...]: confirmed near copies among images whose pixels differ; progress(done, total)
    after each image's candidates."""
    from functools import lru_cache

    found = candidates(fingerprints)
    confirmed = []
    view = lru_cache(maxsize=CACHED_VIEWS)(lambda k: views(paths[k]))

    for done, (i, others) in enumerate(sorted(found.items()), start=1):
        differences = aligned_differences(view(i), [view(j) for j in others])
        differences = refined(paths[i], [paths[j] for j in others], differences)
        confirmed += [(i, j, float(d)) for j, d in zip(others, differences) if d <= 1.0]
        if progress is not None:
            progress(done, len(found))
    return confirmed


def merge(n, pairs):
    """Union-find: the sets (two or more members, sorted) that the index pairs join."""
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        parent[root(i)] = root(j)
    sets = {}
    for i in range(n):
        sets.setdefault(root(i), []).append(i)
    return sorted((sorted(m) for m in sets.values() if len(m) > 1), key=lambda m: m[0])
