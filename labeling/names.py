"""The label a folder name carries: its last '_'-separated word, read after HTML-unescaping."""
import html


def label_from_folder(name):
    """`Ombr&eacute;_Contrast_Workout_Tank` -> `Tank`; `t-shirt` -> `t-shirt` (no '_': the name is the label).

    Unescaping first keeps the ';' of an entity from splitting wrongly (`Caf&eacute;_Tee` -> `Tee`).
    """
    words = [word for word in html.unescape(name).split("_") if word]
    return words[-1] if words else name
