"""Garment silhouettes for the sample generator: each returns polygons in a unit square (x right, y down).

Proportions are jittered by the caller's random generator so no two garments are identical, while each
category keeps a shape of its own (sleeves, hood, legs, flare), which is what a CNN has to learn.
"""


def _j(rng, value, spread=0.04):
    """`value` jittered by up to +-spread."""
    return value + rng.uniform(-spread, spread)


def tee(rng):
    """Boxy torso with short sleeves angled out."""
    w, top, bottom = _j(rng, 0.22), _j(rng, 0.2), _j(rng, 0.85)
    sleeve = _j(rng, 0.18)
    torso = [(0.5 - w, top), (0.5 + w, top), (0.5 + w, bottom), (0.5 - w, bottom)]
    left = [(0.5 - w, top), (0.5 - w - sleeve, top + 0.12), (0.5 - w - sleeve + 0.06, top + 0.25), (0.5 - w, top + 0.2)]
    right = [(1 - x, y) for x, y in left]
    return [torso, left, right]


def hoodie(rng):
    """Torso with long sleeves reaching down and a rounded hood above the neckline."""
    w, top, bottom = _j(rng, 0.2), _j(rng, 0.3), _j(rng, 0.9)
    torso = [(0.5 - w, top), (0.5 + w, top), (0.5 + w, bottom), (0.5 - w, bottom)]
    left = [(0.5 - w, top), (0.5 - w - 0.16, top + 0.1), (0.5 - w - 0.12, bottom), (0.5 - w - 0.04, bottom), (0.5 - w, top + 0.2)]
    right = [(1 - x, y) for x, y in left]
    hood_w = _j(rng, 0.12, 0.02)
    hood = [(0.5 - hood_w, top + 0.02), (0.5 - hood_w * 1.1, top - 0.12), (0.5, top - 0.2),
            (0.5 + hood_w * 1.1, top - 0.12), (0.5 + hood_w, top + 0.02)]
    return [torso, left, right, hood]


def dress(rng):
    """Narrow bodice with straps, flaring into a long skirt."""
    top, waist, hem = _j(rng, 0.1), _j(rng, 0.4), _j(rng, 0.95)
    bodice, flare = _j(rng, 0.12, 0.02), _j(rng, 0.36)
    body = [(0.5 - bodice, top), (0.5 + bodice, top), (0.5 + bodice * 0.9, waist),
            (0.5 + flare, hem), (0.5 - flare, hem), (0.5 - bodice * 0.9, waist)]
    return [body]


def skirt(rng):
    """A short trapezoid hanging from a waistband."""
    top, hem = _j(rng, 0.35), _j(rng, 0.75)
    waist, flare = _j(rng, 0.16, 0.02), _j(rng, 0.32)
    return [[(0.5 - waist, top), (0.5 + waist, top), (0.5 + flare, hem), (0.5 - flare, hem)]]


def _trousers(rng, length):
    """A waistband with two legs of the given length, separated by a crotch gap."""
    top, waist = _j(rng, 0.15), _j(rng, 0.2, 0.02)
    bottom = top + length
    crotch = top + _j(rng, 0.22, 0.02)
    gap = _j(rng, 0.03, 0.01)
    left = [(0.5 - waist, top), (0.5, top), (0.5, crotch), (0.5 - gap, bottom), (0.5 - waist - 0.02, bottom)]
    right = [(1 - x, y) for x, y in left]
    return [left, right]


def shorts(rng):
    """Trousers cut just below the crotch."""
    return _trousers(rng, _j(rng, 0.38))


def jeans(rng):
    """Full-length trousers."""
    return _trousers(rng, _j(rng, 0.75))


# DeepFashion category name -> silhouette function; the sample tree has one category per entry.
SILHOUETTES = {"Tee": tee, "Hoodie": hoodie, "Dress": dress, "Skirt": skirt, "Shorts": shorts, "Jeans": jeans}
