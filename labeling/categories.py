"""DeepFashion's clothing categories and their body type: the built-in list and a reader for the official file."""
from labeling.annotations import read_listing

TYPE_NAMES = {1: "upper", 2: "lower", 3: "full"}

# Anno/list_category_cloth.txt of DeepFashion's Category and Attribute Prediction Benchmark, in its order
# (category_label N in list_category_img.txt is entry N here, 1-based). Type 1 upper, 2 lower, 3 full body.
DEEPFASHION_CATEGORIES = (
    ("Anorak", 1),
    ("Blazer", 1),
    ("Blouse", 1),
    ("Bomber", 1),
    ("Button-Down", 1),
    ("Cardigan", 1),
    ("Flannel", 1),
    ("Halter", 1),
    ("Henley", 1),
    ("Hoodie", 1),
    ("Jacket", 1),
    ("Jersey", 1),
    ("Parka", 1),
    ("Peacoat", 1),
    ("Poncho", 1),
    ("Sweater", 1),
    ("Tank", 1),
    ("Tee", 1),
    ("Top", 1),
    ("Turtleneck", 1),
    ("Capris", 2),
    ("Chinos", 2),
    ("Culottes", 2),
    ("Cutoffs", 2),
    ("Gauchos", 2),
    ("Jeans", 2),
    ("Jeggings", 2),
    ("Jodhpurs", 2),
    ("Joggers", 2),
    ("Leggings", 2),
    ("Sarong", 2),
    ("Shorts", 2),
    ("Skirt", 2),
    ("Sweatpants", 2),
    ("Sweatshorts", 2),
    ("Trunks", 2),
    ("Caftan", 3),
    ("Cape", 3),
    ("Coat", 3),
    ("Coverup", 3),
    ("Dress", 3),
    ("Jumpsuit", 3),
    ("Kaftan", 3),
    ("Kimono", 3),
    ("Nightdress", 3),
    ("Onesie", 3),
    ("Robe", 3),
    ("Romper", 3),
    ("Shirtdress", 3),
    ("Sundress", 3),
)


def read_categories(path):
    """[(name, type name), ...] from an official list_category_cloth.txt, in file order."""
    def body_type(value):
        if value not in ("1", "2", "3"):
            raise ValueError(f"category_type must be 1 (upper), 2 (lower) or 3 (full), got {value!r}")
        return TYPE_NAMES[int(value)]

    return list(read_listing(path, body_type, "CATEGORY_NAME  CATEGORY_TYPE").items())


def builtin_categories():
    """[(name, type name), ...] of the built-in DeepFashion list, for trees without their own category file."""
    return [(name, TYPE_NAMES[kind]) for name, kind in DEEPFASHION_CATEGORIES]
