"""The fast tree walk: which files count as images, what is skipped and counted, progress reports."""
import os

from PIL import Image

from labeling import scan as scan_module
from labeling.scan import scan_images


def touch(path, data=b""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_finds_images_by_extension_in_any_case_and_skips_hidden_and_other_files(tmp_path):
    images = ["a/x.jpg", "a/y.JPG", "a/z.Jpeg", "b/c/p.png", "b/q.bmp", "b/r.gif", "b/s.webp", "top.jpg"]
    for rel in images:
        touch(tmp_path / rel)
    for rel in ["a/notes.txt", "a/jpg", "b/archive.jpg.zip", "b/c/README"]:  # not images
        touch(tmp_path / rel)
    for rel in [".hidden.jpg", "a/.DS_Store", ".cache/deep/x.jpg", "b/.thumbs/y.png"]:  # hidden, with contents
        touch(tmp_path / rel)
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "dir.jpg").mkdir()  # a folder with an image-like name is walked, not listed

    scan = scan_images(str(tmp_path))

    found = sorted(f"{folder}/{name}" if folder else name for folder, names in scan.folders for name in names)
    assert found == sorted(images)
    assert scan.n_images == len(images)
    assert scan.n_other == 4
    assert scan.n_hidden == 4  # .hidden.jpg, .DS_Store, .cache/, .thumbs/ (folders count once)
    assert scan.n_files == len(images) + 4
    # ROOT, a, b, b/c, empty_folder, dir.jpg: hidden folders are never listed
    assert scan.n_folders == 6
    assert scan.unreadable == []


def test_unreadable_subfolder_is_recorded_not_fatal(tmp_path, monkeypatch):
    touch(tmp_path / "ok" / "x.jpg")
    locked = tmp_path / "locked"
    touch(locked / "y.jpg")
    scandir = os.scandir

    def refuse_locked(path):
        """os.scandir as a folder without read permission answers it (chmod 0 does not stop root: CI)."""
        if os.path.abspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", path)
        return scandir(path)

    monkeypatch.setattr(scan_module.os, "scandir", refuse_locked)
    scan = scan_images(str(tmp_path))
    assert scan.unreadable == ["locked"]
    assert scan.n_images == 1


def test_progress_is_reported_every_so_many_files(tmp_path, monkeypatch):
    monkeypatch.setattr(scan_module, "PROGRESS_EVERY", 10)
    for folder in range(5):
        for i in range(7):
            touch(tmp_path / f"f{folder}" / f"{i}.jpg")
    seen = []
    scan_images(str(tmp_path), progress=lambda scan: seen.append(scan.n_files))
    # 35 files in folders of 7: a report when a folder takes the count past 10, 20 and 30
    assert len(seen) == 3
    assert all(b > a for a, b in zip(seen, seen[1:]))
    assert seen[-1] <= 35


def test_real_image_files_are_found(tmp_path):
    (tmp_path / "Caf&eacute;_Tee").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "Caf&eacute;_Tee" / "img_1.jpg")
    scan = scan_images(str(tmp_path))
    assert scan.folders == [("Caf&eacute;_Tee", ["img_1.jpg"])]
