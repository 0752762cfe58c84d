"""TrainOptions: the recipes fill what the user left open, the user's values win, the schedule by hand."""
import argparse
import math
from dataclasses import fields

import pytest

from cnn.training.options import TrainOptions, add_to_parser, typed_options
from cnn.training.recipes import RECIPES
from cnn.training.schedule import rate_at
from common.errors import UsageError


def test_card_recipe_is_the_write_ups_original():
    card = TrainOptions(recipe="card")
    assert (card.optimizer, card.lr, card.augment, card.schedule, card.patience, card.dropout,
            card.label_smoothing, card.weight_decay) == ("adam", 1e-3, "none", "none", 3, 0.0, 0.0, 0.0)


def test_default_recipe_and_overrides():
    default = TrainOptions()
    assert default.recipe == "default" and default.optimizer == "adamw" and default.schedule == "cosine"
    assert default.augment != "none" and default.dropout == 0.5 and default.patience == max(5, 20 // 3)
    assert TrainOptions(epochs=60).patience == 20  # patience grows with --epochs
    mixed = TrainOptions(recipe="card", augment="flip", lr=5e-4)
    assert (mixed.augment, mixed.lr, mixed.optimizer) == ("flip", 5e-4, "adam")  # every option overrides
    assert TrainOptions(epochs=1).warmup_epochs == 0  # a one-epoch run keeps its only epoch for training


def test_every_recipe_sets_the_same_options():
    assert len({frozenset(values) for values in RECIPES.values()}) == 1


def test_parser_keeps_only_what_was_typed():
    parser = argparse.ArgumentParser()
    add_to_parser(parser)
    assert typed_options(parser.parse_args(["--epochs", "20", "--recipe", "card"])) == {"epochs": 20,
                                                                                        "recipe": "card"}
    assert typed_options(parser.parse_args([])) == {}


def test_warm_up_then_cosine_by_hand():
    options = TrainOptions(epochs=11, lr=0.002, warmup_epochs=1)
    assert rate_at(options, 0.5) == pytest.approx(0.001)  # halfway up the linear warm-up
    assert rate_at(options, 1.0) == pytest.approx(0.002)  # the peak
    assert rate_at(options, 6.0) == pytest.approx(0.002 * 0.5 * (1 + math.cos(math.pi * 0.5)))  # half of the decay
    assert rate_at(options, 11.0) == pytest.approx(0.0)
    assert rate_at(TrainOptions(recipe="card"), 7.3) == 1e-3  # no schedule: constant


def test_long_recipe_is_the_default_over_more_epochs_with_progressive_resizing():
    long, default = TrainOptions(recipe="long"), TrainOptions()
    assert (long.epochs, long.progressive, long.patience) == (120, "128:0.75", 120)
    same = ("optimizer", "lr", "weight_decay", "label_smoothing", "schedule", "warmup_epochs", "augment", "dropout")
    assert [getattr(long, name) for name in same] == [getattr(default, name) for name in same]
    assert (default.epochs, default.progressive) == (20, "none")
    assert TrainOptions(recipe="long", epochs=40, progressive="none").epochs == 40  # the user's values win
    with pytest.raises(UsageError, match=r"--recipe long sets it: pass --progressive none"):
        TrainOptions(recipe="long", image_size=128)


def test_the_manual_shows_every_option_as_the_code_has_it():
    """docs/train-cnn.md's synopsis is TrainOptions' (generated, so it cannot drift), and its options table names
    every option."""
    from pathlib import Path

    from cnn.training.options import TrainOptions, flag, synopsis

    page = (Path(__file__).resolve().parents[1] / "docs" / "train-cnn.md").read_text(encoding="utf-8")
    block = page[page.index("```\ntrain-cnn [") + 4:]
    assert block[:block.index("```")].rstrip("\n") == synopsis(), "regenerate the synopsis: options.synopsis()"
    table = "\n".join(line for line in page.splitlines() if line.startswith("| `"))
    assert [flag(f.name) for f in fields(TrainOptions) if f"`{flag(f.name)}" not in table] == []


@pytest.mark.parametrize("options, message", [
    (dict(distill_weight=0.3), "--distill-weight 0.3: needs --teacher"),
    (dict(distill_temperature=4.0), "--distill-temperature 4.0: needs --teacher"),
    (dict(progressive="128:0.02", epochs=20, image_size=256), "leaves no epoch at 128 px"),
    (dict(progressive="96,128:0.2", epochs=5, image_size=256), "leaves no epoch at 96 px"),  # once dropped silently
])
def test_options_that_would_do_nothing_are_refused(options, message):
    """Once accepted silently: distillation settings without a teacher, a --progressive stage with no epoch."""
    with pytest.raises(UsageError, match=message):
        TrainOptions(**options)


ON = dict(whiten=True, dirac=True, bias_lr=64.0, ema=0.99, lookahead="5:0.5", progressive="128:0.5",
          teacher="runs/teacher")  # a value that turns each trick on


def test_every_trick_is_an_option_with_a_value_that_turns_it_on():
    from cnn.training.tricks import TRICKS, active

    names = {f.name for f in fields(TrainOptions)}
    assert {t.option for t in TRICKS} == set(ON) and set(ON) <= names
    for trick in TRICKS:  # the card's recipe turns none on; the default recipe turns --whiten on
        assert [t.option for t in active(TrainOptions(recipe="card", **{trick.option: ON[trick.option]}))] == [
            trick.option]
    assert active(TrainOptions(recipe="card")) == [] and [t.option for t in active(TrainOptions())] == ["whiten"]


def test_the_default_recipe_whitens_only_a_network_it_starts_from_scratch():
    assert TrainOptions().whiten and TrainOptions(arch="cnn").whiten and not TrainOptions(whiten=False).whiten
    assert not TrainOptions(recipe="long").whiten and not TrainOptions(recipe="card").whiten
    assert TrainOptions(recipe="card", whiten=True).whiten  # asked for: on with any from-scratch recipe
    assert not TrainOptions(init="runs/earlier").whiten  # copied weights are kept
    assert not TrainOptions(arch="mobilenetv2").whiten and not TrainOptions(arch="mobilenetv2", recipe="default").whiten
    with pytest.raises(UsageError, match="--whiten True: would overwrite the weights --init copies"):
        TrainOptions(init="runs/earlier", whiten=True)  # asked for by name: refused, not dropped


@pytest.mark.parametrize("name", sorted(set(ON) - {"whiten"}))
def test_the_tensorflow_loop_refuses_each_trick_it_does_not_declare(name, monkeypatch):
    import cnn.training.tricks as tricks

    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert tricks.SUPPORTS == {"whiten"}  # the first layer is set before the loop starts (tested in test_strategy.py)
    with pytest.raises(UsageError, match=f"--{name.replace('_', '-')} .*not supported with --strategy multiworker"):
        TrainOptions(strategy="multiworker", **{name: ON[name]})
    monkeypatch.setattr(tricks, "SUPPORTS", tricks.SUPPORTS | {name})  # a loop that declares it: accepted
    assert TrainOptions(strategy="multiworker", **{name: ON[name]}).strategy == "multiworker"
