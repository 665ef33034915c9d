"""Run configs: resolution, validation and the stability of run ids."""

import pytest

from suite.config import RunConfig, parse_overrides, resolve, rooted, run_id
from suite.errors import SuiteError

BASE = {"model": {"name": "resnet26"}, "data": {"name": "synthetic", "input_size": 32}}


def test_recipe_fills_training_keys_and_overrides_win():
    config = resolve({**BASE, "recipe": "ran_cifar", "lr": 0.05})
    assert (config.iterations, config.batch_size, config.nesterov, config.lr) == (160_000, 64, True, 0.05)
    assert config.lr_milestones == (0.4, 0.6) and config.epochs is None


def test_setting_epochs_clears_the_recipes_iterations():
    config = resolve({**BASE, "recipe": "ran_cifar", "epochs": 2})
    assert config.epochs == 2.0 and config.iterations is None


def test_data_set_decides_classes_and_size():
    config = resolve({"model.name": "resnet26", "data.name": "cifar100"})
    assert config.model.kwargs["num_classes"] == 100
    assert config.data.input_size == 32 and config.data.eval_size == 32
    assert resolve({"model.name": "resnet26", "data.name": "synthetic"}).data.input_size == 224


def test_run_id_ignores_key_order_defaults_execution_and_measure_keys():
    a = resolve({**BASE, "recipe": "smoke", "seed": 0})
    b = resolve({"seed": 0, "data.input_size": 32, "data.name": "synthetic", "model.name": "resnet26",
                 "model.zero_init_residual": False, "lr": 0.05, "device": "cpu", "data.workers": 9,
                 "data.root": "/elsewhere", "measure.batch_size": 64, "measure.steps": 3, "measure.throughput": False})
    assert a.run_id == b.run_id == run_id(a)
    assert len(a.run_id) == 12


@pytest.mark.parametrize("change", [{"seed": 1}, {"lr": 0.01}, {"model.zero_init_residual": True},
                                    {"data.clean_ratio": 0.5}, {"recipe": "san_imagenet"}, {"amp": "bf16"}])
def test_run_id_changes_with_what_is_trained(change):
    assert resolve(BASE).run_id != resolve({**BASE, **change}).run_id


def test_round_trip_through_the_stored_dict_keeps_the_id():
    config = resolve({**BASE, "recipe": "ran_cifar", "lr_milestones": [0.5], "model.zero_init_residual": True})
    again = resolve(config.to_dict())
    assert again == config and again.run_id == config.run_id


@pytest.mark.parametrize(
    "values, key, fragment",
    [
        ({"epoch": 3}, "epoch", "did you mean 'epochs'"),
        ({"data.nmae": "digits"}, "data.nmae", "did you mean 'data.name'"),
        ({"modle.base_width": 2}, "modle.base_width", "did you mean 'model.base_width'"),  # the section misspelt
        ({"amp": "fp8"}, "amp", "valid: fp32, bf16, fp16"),
        ({"data.name": "mnist"}, "data.name", "valid: digits"),
        ({"recipe": "smokey"}, "recipe", "did you mean 'smoke'"),
        ({"batch_size": 0}, "batch_size", "must be positive"),
        ({"data.clean_ratio": 1.5}, "data.clean_ratio", "(0, 1]"),
        ({"lr_milestones": [30, 60]}, "lr_milestones", "fractions"),
        ({"lr_milestones": [0.8, 0.3]}, "lr_milestones", "increasing"),
        ({"epochs": float("nan")}, "epochs", "finite"),
        ({"lr": None}, "lr", "an empty value: expected a number"),  # lr= on the command line
        ({"lr": float("inf")}, "lr", "finite"),
        ({"lr": -0.1}, "lr", "must not be negative"),
        ({"momentum": 1.5}, "momentum", "[0, 1)"),
        ({"nesterov": True, "momentum": 0}, "nesterov", "momentum > 0"),
        # the smoke recipe's nesterov: blamed on the user's momentum, not on the base that chose the recipe
        ({"momentum": 0}, "momentum", "with momentum 0 set nesterov: false too"),
        ({"data.eval_size": -1}, "data.eval_size", "must be positive"),
        ({"data.eval_size": 0}, "data.eval_size", "must be positive"),  # not "unset"
        ({"data.input_size": 0}, "data.input_size", "must be positive"),
        ({"measure.warmup": 0}, "measure.warmup", "must be positive"),  # was taken as the default, 3
        ({"model.name": "san10_pairwise"}, "model.padding", "inputs of 32 px"),  # checked without building it
        ({"model.name": "san10_pairwise", "model.padding": "zeros", "data.eval_size": 16}, "data.eval_size",
         "inputs of 16 px"),
        ({"epochs": 1, "iterations": 5}, "epochs", "exactly one"),
        ({"model.zero_init": True}, "model.zero_init", "did you mean 'zero_init_residual'"),
        ({"model.name": "resnet62"}, "model.name", "did you mean 'resnet26'"),
        ({"model.name": "ran56_cifar", "mask_norm": "spatial"}, "mask_norm", "did you mean 'model.mask_norm'"),
        ({"device": "gpu"}, "device", "valid: auto, cpu, cuda, cuda:N"),
        ({"data": "digits"}, "data", "expected a mapping of data keys, such as data: {name: ...}"),
        ({"measure": 3}, "measure", "expected a mapping of measure keys"),
        ({"seeds": 3}, "seeds", "a spec's seeds are its `seeds:`"),
        ({"seed": 2**64}, "seed", "64-bit seeds"),
        ({"seed": -1}, "seed", "[0, 2**63 - 1]"),
        ({"data.name": "digits", "model.num_classes": 5}, "model.num_classes", "digits has 10 classes but the model would predict 5"),
        ({"data.name": "cifar100", "model.num_classes": 10}, "model.num_classes", "cifar100 has 100 classes"),
        ({"lr_milestones": [0.5, "late"]}, "lr_milestones", "item 1 ('late'): expected a number"),
    ],
)
def test_errors_name_the_key(values, key, fragment):
    with pytest.raises(SuiteError) as err:
        resolve({**BASE, **values}, file="spec.yaml")
    assert err.value.key == key and err.value.file == "spec.yaml"
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "values, ending",
    [
        ({"lr": -1}, "lr: must not be negative, got -1"),  # YAML's -1, not the -1.0 it is checked as
        ({"lr": -1.0}, "lr: must not be negative, got -1.0"),  # a float stays a float
        ({"lr": -0.5}, "lr: must not be negative, got -0.5"),
        ({"epochs": -1}, "epochs: must be positive, got -1"),
        ({"epochs": 0}, "epochs: must be positive, got 0"),
        ({"momentum": 1}, "momentum: must be in [0, 1), got 1"),
        ({"data.clean_ratio": 0}, "data.clean_ratio: must be in (0, 1], got 0"),
        ({"measure.attack_eps": -8}, "measure.attack_eps: must be positive, got -8"),
        ({"lr_milestones": [30, 60]}, "lr_milestones: milestones are increasing fractions of training in (0, 1), "
                                      "got [30, 60]"),
        ({"batch_size": -1}, "batch_size: must be positive, got -1"),  # an integer key, as it was
        ({"model.name": "wrn16_8_cifar", "data.name": "cifar10", "model.dropout": 1},
         "model.dropout: invalid value 1: must be in [0, 1) (valid: 0 <= dropout < 1)"),
    ],
)
def test_a_range_error_echoes_the_value_as_written(values, ending):
    """A value is checked as its key's type (an integer as a float), but said as the user wrote it."""
    with pytest.raises(SuiteError) as err:
        resolve({**BASE, **values}, file="spec.yaml")
    assert str(err.value) == f"spec.yaml: {ending}"


def test_an_image_folder_decides_its_own_class_count():
    """An ImageNet subset (ImageNet-100 and the like) is checked against its folders when it loads."""
    config = resolve({**BASE, "data.name": "imagenet", "model.num_classes": 100, "data.input_size": 64})
    assert config.model.kwargs["num_classes"] == 100


def test_missing_model_is_an_error():
    with pytest.raises(SuiteError, match="model.name: missing"):
        resolve({"data.name": "digits"})


def test_parse_overrides_reads_yaml_values():
    assert parse_overrides(["lr=0.05", "model.mask_norm=spatial", "lr_milestones=[0.5, 0.75]", "nesterov=false",
                            "data.root="]) == {"lr": 0.05, "model.mask_norm": "spatial",
                                               "lr_milestones": [0.5, 0.75], "nesterov": False, "data.root": None}
    with pytest.raises(SuiteError, match="key=value"):
        parse_overrides(["lr"])
    with pytest.raises(SuiteError) as err:  # one line, not PyYAML's caret diagram
        parse_overrides(["lr_milestones=[0.5"])
    assert str(err.value) == ("lr_milestones: cannot parse value '[0.5' at column 5: expected ',' or ']', "
                              "but got '<stream end>'")
    with pytest.raises(SuiteError) as err:  # a control character: one line too, with its column
        parse_overrides(["lr=0.\x01"])
    assert str(err.value) == ("lr: cannot parse value '0.\\x01' at column 3: unacceptable character #x0001: special "
                              "characters are not allowed")
    with pytest.raises(SuiteError, match=r"given twice on the command line: 'lr=0.1' and 'lr=0.2'") as err:
        parse_overrides(["lr=0.1", "epochs=2", "lr=0.2"])  # the last would win silently
    assert err.value.key == "lr"
    with pytest.raises(SuiteError, match=r"given twice on the command line: 'model.t=3' and 'model=\{t: 2\}'") as err:
        parse_overrides(["model.t=3", "model={t: 2}"])  # the same key, once dotted and once nested
    assert err.value.key == "model.t"


@pytest.mark.parametrize("recipe", [["smoke"], {"smoke": 1}, 3])
def test_a_recipe_that_is_not_a_name_is_a_clear_error(recipe):
    with pytest.raises(SuiteError, match="expected a recipe name") as err:
        resolve({**BASE, "recipe": recipe}, file="my.yaml")
    assert (err.value.key, err.value.file) == ("recipe", "my.yaml")


def test_flat_keys_are_the_override_vocabulary():
    flat = resolve(BASE).flat()
    assert flat["model.name"] == "resnet26" and flat["data.name"] == "synthetic" and "lr" in flat
    assert resolve(flat) == resolve(BASE)
    assert isinstance(resolve(BASE), RunConfig)


def test_yaml_1_2_booleans_and_integers():
    # YAML 1.1 (PyYAML's default) reads 010 as octal 8, 1:20 as 80 and no/on as booleans
    assert parse_overrides(["seed=010", "iterations=10_000", "a=0x10", "b=0o10", "c=1:20", "d=no", "e=False"]) == \
        {"seed": 10, "iterations": 10000, "a": 16, "b": 8, "c": "1:20", "d": "no", "e": False}
    with pytest.raises(SuiteError, match="expected true or false"):
        resolve({**BASE, "nesterov": parse_overrides(["nesterov=yes"])["nesterov"]})


def test_exponent_floats_as_researchers_write_them():
    # YAML 1.1 (PyYAML's default) reads 1e-3 as a string; the suite reads it as YAML 1.2 does.
    values = parse_overrides(["lr=1e-3", "weight_decay=5E-5", "seed=3", "recipe=smoke"])
    assert values == {"lr": 0.001, "weight_decay": 5e-5, "seed": 3, "recipe": "smoke"}
    config = resolve({**BASE, **values})
    assert (config.lr, config.weight_decay) == (0.001, 5e-5)


@pytest.mark.parametrize("value", [True, False, None, "16", 16, "mixed", "no", "", "a b", "a,b", [1, "x"], 0.1, 1e-05,
                                   "it's", "san*", {"a": False}, "a\nb", 'x "y"', {"0{": None}, {"": 1}, {"1": "x"},
                                   "\x7f", "a\x85b", "caf\u00e9\U000187f8", float("inf"), -float("inf"),
                                   {"?0": None}, ["0?"]])  # the last 10: found by fuzzing
def test_a_value_is_shown_as_the_command_line_would_take_it_back(value):
    """Run labels and messages: `nesterov=true`, not Python's True; '16' apart from 16."""
    from suite.schema import show_value

    shown = show_value(value)
    assert parse_overrides([f"k={shown}"]) == {"k": value}
    assert not any(c.isspace() for c in shown) or shown.startswith('"') or isinstance(value, (list, dict))
    assert show_value("16") != show_value(16) and show_value(True) == "true"


def test_a_relative_suite_data_is_the_callers_folder_and_recorded(tmp_path, monkeypatch):
    """$SUITE_DATA=data/mine was read by each job against its own working folder (a SLURM job's is
    another): it is read once, where the run is resolved, made absolute against that folder and
    recorded as the run's data.root; a data.root given wins, and a blank one counts as unset."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SUITE_DATA", "data/mine")
    config = resolve(BASE)
    assert config.data.root == str(tmp_path / "data" / "mine")
    assert config.run_id == resolve({**BASE, "data": {**BASE["data"], "root": "/elsewhere"}}).run_id
    assert resolve({**BASE, "data.root": "/given"}).data.root == "/given"
    monkeypatch.setenv("SUITE_DATA", "~/data")  # left to the machine that reads it, as a data.root is
    assert resolve(BASE).data.root == "~/data"
    monkeypatch.setenv("SUITE_DATA", " ")
    assert resolve(BASE).data.root is None


def test_a_blank_data_root_is_left_unset_not_made_a_folder(tmp_path):
    """A blank data.root (`root: ""` in a spec) means the default folder, as a blank $SUITE_DATA does:
    made absolute against the spec's folder it would read the data from there."""
    assert rooted({"data.root": ""}, tmp_path) == {"data.root": ""}
    assert rooted({"data": {"root": ""}}, tmp_path) == {"data": {"root": ""}}
    assert rooted({"data.root": "mine"}, tmp_path) == {"data.root": str(tmp_path / "mine")}
