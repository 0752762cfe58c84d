"""Labels from folder names: the last '_' word after HTML-unescaping."""
import pytest

from labeling.names import label_from_folder


@pytest.mark.parametrize("folder, label", [
    ("Sheer_Pleated-Front_Blouse", "Blouse"),
    ("Lace_Swing_Tank", "Tank"),
    ("Ombr&eacute;_Contrast_Workout_Tank", "Tank"),  # the entity's ';' must not matter
    ("Caf&eacute;_Tee", "Tee"),  # escaped naively this would end in 'eacute;_Tee'
    ("Faux_Leather_Button-Down", "Button-Down"),  # hyphens are part of a word
    ("Tom&amp;Jerry_Hoodie", "Hoodie"),
    ("Shorts&#95;Set_Romper", "Romper"),  # &#95; is '_': unescaped first, then split
    ("t-shirt", "t-shirt"),  # no '_': the whole name is the label (class-per-folder trees)
    ("Ombr&eacute;", "Ombré"),
    ("Trailing_Tee_", "Tee"),  # empty words are ignored
])
def test_label_is_last_underscore_word_after_unescaping(folder, label):
    assert label_from_folder(folder) == label
