"""The model registry: names, options validated from builders' type hints, clear errors."""

from typing import Literal

import numpy as np
import pytest
from torch import nn

from suite.errors import SuiteError
from suite.models import create_model, get_model_info, list_models, register_model
from suite.models.registry import _REGISTRY


@pytest.fixture
def toy_model():
    @register_model(input_size=16, paper={"params_m": 0.0})
    def toy_net(*, width: int = 4, act: Literal["relu", "gelu"] = "relu", scale: float = 1.0,
                sizes: tuple[int, ...] = (1, 2), bias: bool = False) -> nn.Module:
        return nn.Conv2d(3, width, 1, bias=bias)

    yield "toy_net"
    del _REGISTRY["toy_net"]


def test_register_and_create(toy_model):
    assert toy_model in list_models("toy*")
    info = get_model_info(toy_model)
    assert info.input_size == 16 and info.family == "test_registry"
    assert info.source == "test_registry" and get_model_info("ran56").source == "suite"  # `suite models` says so
    assert info.defaults == {"width": 4, "act": "relu", "scale": 1.0, "sizes": (1, 2), "bias": False}
    model = create_model(toy_model, width=8, act="gelu", scale=2, sizes=[3])
    assert model.out_channels == 8


def test_a_model_is_labelled_as_the_papers_name_it(toy_model):
    """Reports show the paper's name; a model no paper names keeps its registry name."""
    assert get_model_info(toy_model).label == "toy_net"
    assert [get_model_info(n).label for n in ("ran92_cifar", "ran92", "resnet164_cifar", "san10_pairwise",
                                               "resnext101_32x4d")] == \
        ["Attention-92", "Attention-92", "ResNet-164", "SAN10-pair.", "ResNeXt-101 (32x4d)"]
    assert all(get_model_info(n).label for n in list_models())


def _register_notebook_cell(width: int) -> None:
    """A notebook cell, run once per call: the same builder, edited between runs."""
    @register_model(input_size=16)
    def cell_net(*, num_classes: int = 10) -> nn.Module:
        return nn.Conv2d(3, width, 1)


def test_a_builder_registered_again_from_where_it_was_replaces_itself():
    """Running a notebook cell that registers a model again (after editing it), or reloading its
    module, replaces the model: it raised "registered already, by the suite itself", which named the
    wrong holder and left the edited builder out. Another builder taking the name is still refused,
    naming the module that holds it."""
    try:
        _register_notebook_cell(width=4)
        _register_notebook_cell(width=6)
        assert create_model("cell_net").out_channels == 6
        with pytest.raises(RuntimeError, match=r"^model 'cell_net' is registered already, by module "
                                               r"'test_registry' \(_register_notebook_cell.<locals>.cell_net\)$"):
            @register_model
            def cell_net(*, num_classes: int = 10) -> nn.Module:
                return nn.Identity()
        with pytest.raises(RuntimeError, match=r"^model 'ran56' is registered already, by the suite itself$"):
            @register_model
            def ran56(*, num_classes: int = 10) -> nn.Module:
                return nn.Identity()
    finally:
        _REGISTRY.pop("cell_net", None)


def test_list_models_patterns():
    names = list_models()
    assert names.index("ran56") < names.index("ran92") < names.index("ran128_cifar")  # natural order
    assert names.index("resnet50") < names.index("resnet164_cifar") < names.index("san10_pairwise")
    assert list_models(["resnet2*", "resnet5*"]) == ["resnet26", "resnet50", "resnet200"]
    assert list_models("nothing*") == []


def test_a_family_no_model_has_is_named_not_an_empty_list():
    """`list_models(family="SAN")` returned [] as if the suite had no SAN models; a family is one
    the registry has (the module that registered it), so a wrong one is a SuiteError with them."""
    assert list_models("*_pairwise", family="san") == [
        "san10_pairwise", "san15_pairwise", "san19_pairwise"]
    with pytest.raises(SuiteError, match=r"^family: unknown model family 'SAN'; did you mean 'san'.*"
                                         r"\(valid: .*ran, resnet, san"):
        list_models(family="SAN")


def test_unknown_model_lists_close_matches():
    with pytest.raises(SuiteError) as err:
        create_model("resnet62")
    assert "did you mean 'resnet26'" in str(err.value)
    assert err.value.key == "name" and "resnet50" in err.value.choices  # the argument the caller typed


@pytest.mark.parametrize("name", [3, None, ["resnet26"]])
def test_a_model_name_that_is_no_string_is_a_type_error_saying_so(name):
    """`create_model(None)` (a notebook's unset variable) was "AttributeError: 'NoneType' object has no
    attribute 'lower'", from the close-match search; it is a TypeError saying what a name is."""
    for call in (create_model, get_model_info):
        with pytest.raises(TypeError, match=rf"^a model's name is a string such as 'ran56_cifar', got "
                                            rf"{type(name).__name__} "):
            call(name)


def test_a_models_prefix_is_answered_with_the_models_it_starts():
    """`create_model("san10")` said only "unknown model 'san10'" and listed every name
    alphabetically (ran128_cifar before ran56): difflib finds nothing that close. The models the
    name starts are suggested, and the list is in the natural order `list_models` gives."""
    with pytest.raises(SuiteError) as err:
        create_model("san10")
    assert "unknown model 'san10'; did you mean 'san10_pairwise' or 'san10_patchwise'?" in str(err.value)
    assert err.value.choices == list_models()


@pytest.mark.parametrize(
    "kwargs, key, fragment",
    [
        ({"widht": 3}, "widht", "did you mean 'width'"),
        ({"width": 2.5}, "width", "expected an integer"),
        ({"width": True}, "width", "expected an integer"),
        ({"act": "tanh"}, "act", "valid: relu, gelu"),
        ({"scale": "big"}, "scale", "expected a number"),
        ({"sizes": 3}, "sizes", "expected a list"),
        ({"bias": "yes"}, "bias", "expected true or false"),
    ],
)
def test_invalid_options_name_the_key(toy_model, kwargs, key, fragment):
    with pytest.raises(SuiteError) as err:
        create_model(toy_model, **kwargs)
    assert err.value.key == key
    assert fragment in str(err.value)


def test_numpy_scalars_count_as_the_python_values_they_hold(toy_model):
    model = create_model(toy_model, width=np.int64(8), act=np.str_("gelu"), scale=np.float32(2), bias=np.bool_(True))
    assert model.out_channels == 8 and type(model.out_channels) is int and model.bias is not None
    with pytest.raises(SuiteError, match="expected an integer"):
        create_model(toy_model, width=np.float64(8))


def test_name_is_not_an_option(toy_model):
    with pytest.raises(SuiteError, match="has no option 'name'"):
        create_model(toy_model, name="x")


def test_builders_must_take_keyword_only_options():
    with pytest.raises(TypeError, match="keyword-only"):
        @register_model
        def bad_net(width: int = 3) -> nn.Module:  # positional: rejected at registration
            return nn.Identity()
    assert "bad_net" not in _REGISTRY


def test_an_option_called_name_is_refused_at_registration():
    """A config's model section holds the model's name and its options side by side, so an option
    `name` overwrote it: the run recorded model.name='x' and failed as an unknown model 'x'."""
    with pytest.raises(TypeError, match="option 'name' would be the model's own name"):
        @register_model
        def named_net(*, name: str = "x") -> nn.Module:
            return nn.Identity()
    assert "named_net" not in _REGISTRY


def test_every_shipped_model_says_what_it_is():
    """`help(san10_pairwise)` in a notebook showed no text for the SAN and SASA-ResNet builders:
    every shipped builder (and the SAN class they build) has a docstring."""
    from suite.models.san import SAN

    undocumented = [n for n in list_models() if get_model_info(n).source == "suite"
                    and not (get_model_info(n).builder.__doc__ or "").strip()]
    assert undocumented == [] and SAN.__doc__


def test_every_paper_figure_cites_one_of_the_tables_labels():
    """One label per paper table (suite/models/papers.py): a source spelled in place would read
    as another table beside the same one (5.52 for Attention-56 was 'RAN Table 1/3', leaving out
    Table 4, which prints it too)."""
    from suite.models import papers

    labels = {v for k, v in vars(papers).items() if k.isupper() and isinstance(v, str)}
    shipped = [n for n in list_models() if get_model_info(n).source == "suite" and get_model_info(n).paper]
    cited = {n: get_model_info(n).paper.get("source") for n in shipped}
    assert cited and {n: s for n, s in cited.items() if s not in labels} == {}
    assert cited["ran56_cifar"] == papers.RAN_CIFAR_ABLATIONS


# Every shipped registration's figures, as the project's record of the papers prints them
# (the reference ran.md, section 3, and san.md, section 4.1; line numbers there): the table,
# the row, the column, the unit. test_measure checks each count against its model; this checks
# what no model can: the errors, and that a figure sits in the right row and column (a CIFAR-100
# error under CIFAR-10, a top-5 under top-1, Table 2's 6.2 GFLOPs for Table 7's 6.3).
_T6, _T7, _SAN = "RAN Table 6 (CIFAR)", "RAN Table 7 (ImageNet, single crop)", "SAN (Zhao et al. 2020) Table 2"
PAPERS = {
    # RAN Table 7 (ran.md 159-167): params (M), FLOPs (G) at 224, test size, top-1 / top-5 error (%)
    "resnet152": {"params_m": 60.2, "gmacs": 11.3, "top1_err": 22.16, "top5_err": 6.16, "source": _T7},
    "ran56": {"params_m": 31.9, "gmacs": 6.3, "top1_err": 21.76, "top5_err": 5.9, "source": _T7},
    "resnext101_32x4d": {"params_m": 44.5, "gmacs": 7.8, "top1_err": 21.2, "top5_err": 5.6, "source": _T7},
    "ranext56": {"params_m": 31.9, "gmacs": 6.3, "top1_err": 21.2, "top5_err": 5.6, "source": _T7},
    "resnet200": {"params_m": 64.7, "gmacs": 15.0, "top1_err": 20.1, "top5_err": 4.8, "eval_size": 320,
                  "source": _T7},
    "ran92": {"params_m": 51.3, "gmacs": 10.4, "top1_err": 19.5, "top5_err": 4.8, "eval_size": 320, "source": _T7},
    # RAN Table 6 (ran.md 145-151): params (M), CIFAR-10 and CIFAR-100 top-1 error (%)
    "resnet164_cifar": {"params_m": 1.7, "cifar10_top1_err": 5.46, "cifar100_top1_err": 24.33, "source": _T6},
    "resnet1001_cifar": {"params_m": 10.3, "cifar10_top1_err": 4.64, "cifar100_top1_err": 22.71, "source": _T6},
    "wrn16_8_cifar": {"params_m": 11.0, "cifar10_top1_err": 4.81, "cifar100_top1_err": 22.07, "source": _T6},
    "wrn28_10_cifar": {"params_m": 36.5, "cifar10_top1_err": 4.17, "cifar100_top1_err": 20.50, "source": _T6},
    "ran92_cifar": {"params_m": 1.9, "cifar10_top1_err": 4.99, "cifar100_top1_err": 21.71, "source": _T6},
    "ran236_cifar": {"params_m": 5.1, "cifar10_top1_err": 4.14, "cifar100_top1_err": 21.16, "source": _T6},
    "ran452_cifar": {"params_m": 8.6, "cifar10_top1_err": 3.90, "cifar100_top1_err": 20.45, "source": _T6},
    # RAN Tables 1, 3 and 4 (ran.md 108, 118): Attention-56, mixed mask, ARL, encoder-decoder; CIFAR-10 only
    "ran56_cifar": {"cifar10_top1_err": 5.52, "source": "RAN Tables 1, 3 and 4 (CIFAR-10, Attention-56)"},
    # SAN Table 2 (san.md 101-109): top-1 / top-5 *accuracy* there, errors here (100 - accuracy)
    "resnet26": {"params_m": 13.7, "gmacs": 2.4, "top1_err": 26.4, "top5_err": 8.3, "source": _SAN},
    "san10_pairwise": {"params_m": 10.5, "gmacs": 2.2, "top1_err": 25.1, "top5_err": 7.9, "source": _SAN},
    "san10_patchwise": {"params_m": 11.8, "gmacs": 1.9, "top1_err": 22.9, "top5_err": 6.5, "source": _SAN},
    "resnet38": {"params_m": 19.6, "gmacs": 3.2, "top1_err": 24.0, "top5_err": 7.0, "source": _SAN},
    "san15_pairwise": {"params_m": 14.1, "gmacs": 3.0, "top1_err": 23.4, "top5_err": 6.9, "source": _SAN},
    "san15_patchwise": {"params_m": 16.2, "gmacs": 2.6, "top1_err": 22.0, "top5_err": 6.1, "source": _SAN},
    "resnet50": {"params_m": 25.6, "gmacs": 4.1, "top1_err": 23.1, "top5_err": 6.5, "source": _SAN},
    "san19_pairwise": {"params_m": 17.6, "gmacs": 3.8, "top1_err": 23.1, "top5_err": 6.6, "source": _SAN},
    "san19_patchwise": {"params_m": 20.5, "gmacs": 3.3, "top1_err": 21.8, "top5_err": 6.1, "source": _SAN},
}


def test_every_shipped_models_figures_are_the_papers_row():
    """Each registration's `paper=` is its row of the papers' tables, value by value; a model the
    papers do not print (ranext92, the CIFAR Attention-128 and -164 of Table 3, whose figures the
    reference leaves unverified) has none."""
    shipped = {n: dict(get_model_info(n).paper) for n in list_models() if get_model_info(n).source == "suite"}
    assert {n: p for n, p in shipped.items() if p} == PAPERS
