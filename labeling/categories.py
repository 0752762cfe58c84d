"""DeepFashion's official category list (Anno/list_category_cloth.txt), built in so labels can be typed
without the annotation files. Type 1 = upper body, 2 = lower body, 3 = full body."""

_UPPER = ("Anorak Blazer Blouse Bomber Button-Down Cardigan Flannel Halter Henley Hoodie Jacket Jersey "
          "Parka Peacoat Poncho Sweater Tank Tee Top Turtleneck")
_LOWER = ("Capris Chinos Culottes Cutoffs Gauchos Jeans Jeggings Jodhpurs Joggers Leggings Sarong Shorts "
          "Skirt Sweatpants Sweatshorts Trunks")
_FULL = "Caftan Cape Coat Coverup Dress Jumpsuit Kaftan Kimono Nightdress Onesie Robe Romper Shirtdress Sundress"

# (name, type) in the official order: a label's 1-based position is its index in list_category_img.txt.
DEEPFASHION_CATEGORIES = tuple((name, kind) for kind, names in enumerate((_UPPER, _LOWER, _FULL), start=1)
                               for name in names.split())
CATEGORY_TYPE_NAMES = {1: "upper", 2: "lower", 3: "full"}
