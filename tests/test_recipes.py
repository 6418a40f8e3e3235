"""The named recipes build what their summaries promise, and Adam's betas are checked like every knob."""

from __future__ import annotations

import pytest

from lenet.config import RECIPES, Recipe
from lenet.errors import UsageError
from lenet.training.optim import SGD, Adam, make_optimizer


def optimizer_of(name: str):
    from lenet.nn.torch_model import build_model

    recipe = RECIPES[name]
    return make_optimizer(build_model(recipe.model_config()), recipe)


def test_fast_adam_trains_with_adam_at_the_published_betas():
    """tuomaso's train_mnist_fast: Adam, lr 1e-2, betas (0.7, 0.9), batch 256, one epoch, one-cycle."""
    recipe = RECIPES["fast-adam"]
    assert (recipe.arch, recipe.batch_size, recipe.epochs, recipe.schedule) == ("fast", 256, 1, "onecycle")
    optimizer = optimizer_of("fast-adam")
    assert isinstance(optimizer, Adam)
    for group in optimizer.param_groups:
        assert group["lr"] == 1e-2 and group["betas"] == (0.7, 0.9) and not group["decoupled_weight_decay"]


def test_sprint_is_a_fixed_schedule_of_the_fast_network():
    """Time to 99.5%: a set number of epochs (nothing stops it on a score), the fast network."""
    sprint, fast = RECIPES["sprint"], RECIPES["fast"]
    assert sprint.arch == fast.arch == "fast" and sprint.epochs > fast.epochs and sprint.augment
    assert isinstance(optimizer_of("sprint"), Adam)


def test_the_other_recipes_keep_sgd():
    for name in ("fast", "lenet5", "best", "robust", "tutorial"):
        assert isinstance(optimizer_of(name), SGD), name


@pytest.mark.parametrize("field, value", [("beta1", 1.0), ("beta2", -0.1), ("beta1", float("nan")), ("beta2", "0.9")])
def test_bad_betas_are_refused_naming_the_flag(field, value):
    with pytest.raises(UsageError, match=f"--{field} must be a finite number >= 0 and < 1"):
        RECIPES["fast"].override(**{field: value})


def test_a_recipe_recorded_before_the_betas_existed_reads_with_adams_defaults():
    """Checkpoints and model files of earlier runs carry no beta1/beta2: they mean torch's defaults."""
    old = {k: v for k, v in RECIPES["fast"].to_dict().items() if k not in ("beta1", "beta2")}
    recipe = Recipe(**old)
    assert (recipe.beta1, recipe.beta2) == (0.9, 0.999)


def test_adams_decays_with_sgd_are_refused_naming_the_flags():
    from lenet.cli.commands import choose_recipe
    from lenet.cli.parser import build_parser
    from lenet.errors import UsageError

    parse = build_parser().parse_args
    with pytest.raises(UsageError, match="--beta1 set Adam's decays, and the optimizer is sgd"):
        choose_recipe(parse(["train", "--recipe", "fast", "--beta1", "0.5"]))
    assert choose_recipe(parse(["train", "--recipe", "fast", "--optimizer", "adam", "--beta1", "0.5"])).beta1 == 0.5
    assert choose_recipe(parse(["train", "--recipe", "sprint", "--optimizer", "sgd"])).optimizer == "sgd"
