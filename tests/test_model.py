import pytest
import torch

from lenet.config import ModelConfig
from lenet.nn.torch_model import NETWORKS, build_model, count_parameters, init_weights


def shapes(model, x):
    """Output shape of each layer of the text's figure (`layers`)."""
    return {name: tuple(out.shape[1:]) for name, out in model.layers(x)}


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_lenet5_matches_the_text(activation):
    model = build_model(ModelConfig("lenet5", activation))
    assert count_parameters(model) == 61_706
    assert shapes(model, torch.zeros(2, 1, 28, 28)) == {
        "c1": (6, 28, 28), "s2": (6, 14, 14), "c3": (16, 10, 10), "s4": (16, 5, 5),
        "c5": (120, 1, 1), "f6": (84,), "output": (10,),
    }
    assert isinstance(model.c5, torch.nn.Conv2d)  # a convolution, not a dense layer
    assert isinstance(model.s2, torch.nn.AvgPool2d) and isinstance(model.s4, torch.nn.MaxPool2d)


def test_seed_matches_the_keras_code():
    model = build_model(ModelConfig("seed"))
    assert count_parameters(model) == 545_546
    assert shapes(model, torch.zeros(2, 1, 28, 28)) == {
        "c1": (6, 28, 28), "s2": (6, 14, 14), "c3": (16, 14, 14), "s4": (16, 7, 7),
        "c5": (120, 7, 7), "f6": (84,), "output": (10,),
    }


@pytest.mark.parametrize("arch, activation", [("lenet5", "sigmoid"), ("lenet5", "tanh"), ("lenet5", "relu"),
                                              ("seed", "sigmoid")])
def test_forward_is_the_figure_computed_faster(arch, activation):
    """`forward` fuses and reorders layers for speed: same outputs and same gradients as `layers`."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch, activation))
    init_weights(model, "xavier")
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    *_, (_, reference) = model.layers(x)
    torch.nn.functional.cross_entropy(reference, y).backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    out = model(x)
    torch.nn.functional.cross_entropy(out, y).backward()
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-6, msg=name)
    # Channels-last memory (as training and evaluation run) gives the same outputs too.
    model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(model(x.contiguous(memory_format=torch.channels_last)), reference, rtol=1e-5, atol=1e-5)


def test_fast_in_evaluation_folds_batch_norm_into_the_convolutions_exactly():
    torch.manual_seed(0)
    model = build_model(ModelConfig("fast", "relu"))
    for _ in range(3):
        model(torch.randn(64, 1, 28, 28))  # running statistics away from 0 and 1
    for bn in (model.bn1, model.bn3, model.bn5):
        torch.nn.init.uniform_(bn.weight, -2, 2)  # negative scales too: the fold must not assume a sign
        torch.nn.init.uniform_(bn.bias, -1, 1)
    model.eval()
    F, m, x = torch.nn.functional, model, torch.randn(16, 1, 28, 28)
    x_ = F.relu(m.s2(m.bn1(m.c1(x))))
    x_ = F.relu(m.s4(m.bn3(m.c3(x_))))
    x_ = F.relu(m.bn5(m.c5(x_))).flatten(1)
    expected = m.output(F.relu(m.f6(x_)))
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_fast_is_lenet_sized():
    assert count_parameters(build_model(ModelConfig("fast"))) <= 100_000


@pytest.mark.parametrize("arch", ["lenet5", "seed", "fast"])
def test_classes_follow_the_config_and_outputs_are_finite(arch):
    model = build_model(ModelConfig(arch, "relu", num_classes=26))
    init_weights(model, "xavier")
    out = model(torch.randn(4, 1, 28, 28) * 100)
    assert out.shape == (4, 26) and torch.isfinite(out).all()


def test_xavier_zeroes_biases_and_bounds_weights():
    model = build_model(ModelConfig("lenet5"))
    init_weights(model, "xavier")
    assert all((m.bias == 0).all() for m in (model.c1, model.c3, model.c5, model.f6, model.output))
    bound = (6 / (6 * 25 + 16 * 25)) ** 0.5  # Glorot: fan_in = 6*5*5, fan_out = 16*5*5
    assert model.c3.weight.abs().max() <= bound
    assert model.c3.weight.abs().max() > 0.9 * bound


@pytest.mark.parametrize("arch", sorted(NETWORKS))
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_declared_modules_are_the_description(arch, activation):
    """Each network class declares, in order, exactly the modules its description builds."""
    import inspect

    model = build_model(ModelConfig(arch, activation))
    declared = inspect.get_annotations(NETWORKS[arch], eval_str=True)
    built = {name: type(module) for name, module in model.named_children()}
    assert list(declared) == list(built)
    assert declared == built
