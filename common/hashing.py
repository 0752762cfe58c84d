"""File hashing: the SHA-256 a run records of every file it depends on (labels CSV, weights, models, mappings)."""
import hashlib


def sha256_file(path):
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
