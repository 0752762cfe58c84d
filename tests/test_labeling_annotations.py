"""DeepFashion listing files: categories, image labels, partition; malformed lines reported as file:line."""
from pathlib import Path

import pytest

from common.errors import UsageError
from labeling.annotations import read_category_images, read_partition
from labeling.categories import DEEPFASHION_CATEGORIES, TYPE_NAMES, builtin_categories, read_categories

SHARED_LIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "deepfashion" / "list_category_cloth.txt"


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_image_labels_with_runs_of_spaces(tmp_path):
    path = write(tmp_path / "list_category_img.txt", [
        "3", "image_name  category_label",
        "img/Sheer_Pleated-Front_Blouse/img_00000001.jpg                         3",
        "img/Ombr&eacute;_Contrast_Workout_Tank/img_00000002.jpg    17",
        "img/Caf&eacute;_Tee/img_00000001.jpg 18"])
    assert read_category_images(path, 50) == {
        "img/Sheer_Pleated-Front_Blouse/img_00000001.jpg": 3,
        "img/Ombr&eacute;_Contrast_Workout_Tank/img_00000002.jpg": 17,
        "img/Caf&eacute;_Tee/img_00000001.jpg": 18}


def test_reads_partition(tmp_path):
    path = write(tmp_path / "p.txt", ["2", "image_name  evaluation_status", "img/a/1.jpg  train", "img/b/1.jpg  val"])
    assert read_partition(path) == {"img/a/1.jpg": "train", "img/b/1.jpg": "val"}


@pytest.mark.parametrize("rows, line, message", [
    (["img/a/1.jpg  1", "img/a/2.jpg"], 4, "expected 'IMAGE_NAME  CATEGORY_LABEL'"),
    (["img/a/1.jpg  1", "img/a/2.jpg  x"], 4, "category_label must be a number from 1 to 50, got 'x'"),
    (["img/a/1.jpg  51", "img/a/2.jpg  1"], 3, "from 1 to 50, got '51'"),
    (["img/a/1.jpg  0", "img/a/2.jpg  1"], 3, "got '0'"),
    (["img/a/1.jpg  1", "img/a/1.jpg  2"], 4, "'img/a/1.jpg' is listed twice"),
    (["img/a/1.jpg  1", "", "img/a/2.jpg  1"], 4, "expected 'IMAGE_NAME  CATEGORY_LABEL', got ''"),
])
def test_malformed_line_is_reported_with_file_and_line(tmp_path, rows, line, message):
    path = write(tmp_path / "list_category_img.txt", [str(len(rows)), "image_name  category_label"] + rows)
    with pytest.raises(UsageError) as error:
        read_category_images(path, 50)
    assert str(error.value).startswith(f"{path}:{line}: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_count_line_must_match_and_be_a_number(tmp_path):
    path = write(tmp_path / "a.txt", ["5", "image_name  category_label", "img/a/1.jpg  1"])
    with pytest.raises(UsageError, match=r"a\.txt:1: the file says 5 entries but lists 1"):
        read_category_images(path, 50)
    write(path, ["many", "image_name  category_label", "img/a/1.jpg  1"])
    with pytest.raises(UsageError, match=r"a\.txt:1: expected the number of entries, got 'many'"):
        read_category_images(path, 50)
    write(path, ["1"])
    with pytest.raises(UsageError, match="expected a count line and a header line"):
        read_category_images(path, 50)


def test_bad_partition_status_names_the_line(tmp_path):
    path = write(tmp_path / "p.txt", ["2", "image_name  evaluation_status", "img/a/1.jpg  train", "img/b/1.jpg  dev"])
    with pytest.raises(UsageError, match=r"p\.txt:4: evaluation_status must be one of train, val, test, got 'dev'"):
        read_partition(path)


def test_category_list_parsing_and_type_check(tmp_path):
    path = write(tmp_path / "c.txt", ["3", "category_name  category_type", "Anorak         1", "Capris  2",
                                      "Dress 3"])
    assert read_categories(path) == [("Anorak", "upper"), ("Capris", "lower"), ("Dress", "full")]
    write(path, ["1", "category_name  category_type", "Anorak  4"])
    with pytest.raises(UsageError, match=r"c\.txt:3: category_type must be 1 \(upper\), 2 \(lower\) or 3"):
        read_categories(path)


def test_unreadable_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read"):
        read_partition(tmp_path / "absent.txt")


def test_builtin_list_has_50_categories_with_the_46_used_and_known_types():
    names = [name for name, _ in DEEPFASHION_CATEGORIES]
    assert len(names) == len(set(names)) == 50
    assert {"Cape", "Nightdress", "Shirtdress", "Sundress"} <= set(names)
    types = dict(builtin_categories())
    assert (types["Blouse"], types["Jeans"], types["Dress"]) == ("upper", "lower", "full")
    assert set(types.values()) == set(TYPE_NAMES.values())


@pytest.mark.slow
def test_builtin_list_equals_the_official_file():
    if not SHARED_LIST.is_file():
        pytest.skip(f"{SHARED_LIST} is absent")
    assert read_categories(SHARED_LIST) == builtin_categories()
