"""Ablation specs: validation (one test per error kind), expansion, run identity, shipped specs."""

import json
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from suite import ablations
from suite.ablations import expand, load
from suite.ablations.expand import own_points
from suite.cli import main
from suite.config import parse_overrides, resolve
from suite.errors import SuiteError, SuiteWarning

GOOD = """\
name: {name}
description: toy grid
paper: {{paper: nobody, table: T1}}
base:
  model: {{name: resnet26}}
  data: {{name: synthetic, input_size: 32}}
  epochs: 1
grid:
  lr: [0.1, 0.2, 0.4]
zip:
  - model.zero_init_residual: [true, false]
    weight_decay: [0.0001, 0.0005]
seeds: 2
presets:
  tiny:
    seeds: [7]
    grid: {{lr: [0.1]}}
reference:
  - {{lr: 0.1, top1_err: 5.0}}
  - {{lr: 0.2, model.zero_init_residual: false, top1_err: 4.0, top5_err: 1.0}}
"""


def write(tmp_path: Path, text: str, name: str = "toy") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text).format(name=name) if "{name}" in text else textwrap.dedent(text))
    return path


def test_expansion_counts_grid_times_zip_times_seeds(tmp_path):
    spec = load(write(tmp_path, GOOD))
    runs = expand(spec)
    assert len(runs) == 3 * 2 * 2
    assert len({r.run_id for r in runs}) == len(runs)
    assert [r.point for r in runs[:4:2]] == [
        {"lr": 0.1, "model.zero_init_residual": True, "weight_decay": 0.0001},
        {"lr": 0.1, "model.zero_init_residual": False, "weight_decay": 0.0005},
    ]
    assert runs[0].config.model.kwargs["zero_init_residual"] is True and runs[0].config.weight_decay == 0.0001


def test_presets_replace_axes_and_seeds(tmp_path):
    runs = expand(load(write(tmp_path, GOOD)), preset="tiny")
    assert len(runs) == 2 and {r.seed for r in runs} == {7} and {r.point["lr"] for r in runs} == {0.1}


def test_every_spec_has_a_smoke_preset_on_digits(tmp_path):
    runs = expand(load(write(tmp_path, GOOD)), preset="smoke")
    assert {r.config.data.name for r in runs} == {"digits"} and {r.seed for r in runs} == {0}
    assert all(r.reference_data == "synthetic" for r in runs)


def test_reference_values_attach_to_matching_points(tmp_path):
    runs = expand(load(write(tmp_path, GOOD)))
    by_point = {(r.point["lr"], r.point["model.zero_init_residual"]): r.reference for r in runs}
    assert by_point[(0.1, True)] == {"top1_err": 5.0}
    assert by_point[(0.2, False)] == {"top1_err": 4.0, "top5_err": 1.0}
    assert by_point[(0.4, True)] == {}


def test_a_large_zip_group_is_expanded_without_comparing_every_point_with_every_row(tmp_path, monkeypatch):
    """Whether a point is the spec's own (for its paper values) is looked up, not scanned: a scan of
    a zip group's rows for each of its points took minutes at 10,000 runs."""
    expand_module = sys.modules["suite.ablations.expand"]  # the package's `expand` is the function
    rows = 300
    lrs = [round(0.001 * (i + 1), 4) for i in range(rows)]
    spec = load(write(tmp_path, f"name: toy\nbase: {{model: {{name: resnet26}}, data: {{name: synthetic, input_size: 32}}, "
                                f"epochs: 1}}\nzip:\n  - {{lr: {lrs}, weight_decay: {lrs}}}\nseeds: 1\n"
                                f"reference: [{{lr: 0.001, weight_decay: 0.001, top1_err: 5.0}}]\n"))
    compared = 0
    same = expand_module._same

    def counting(a, b):
        nonlocal compared
        compared += 1
        return same(a, b)

    monkeypatch.setattr(expand_module, "_same", counting)
    runs = expand(spec)
    assert len(runs) == rows and [r.reference for r in runs[:2]] == [{"top1_err": 5.0}, {}]
    assert compared <= 10 * rows  # a scan: rows * rows / 2 pairs, 2 axes each (90,000)


@pytest.mark.parametrize("point, own", [
    ({"lr": 0.1, "model.zero_init_residual": True, "weight_decay": 0.0001}, True),
    ({"lr": 0.4, "model.zero_init_residual": False, "weight_decay": 0.0005}, True),
    ({"lr": 0.3, "model.zero_init_residual": True, "weight_decay": 0.0001}, False),  # not on the axis
    ({"lr": 0.1, "model.zero_init_residual": True, "weight_decay": 0.0005}, False),  # not a row of the zip
    ({"lr": 0.1, "model.zero_init_residual": 1, "weight_decay": 0.0001}, False),  # 1 is not True
    ({"lr": 0.1, "model.zero_init_residual": [True], "weight_decay": 0.0001}, False),  # no key: no row
    ({"lr": float("nan"), "model.zero_init_residual": True, "weight_decay": 0.0001}, False),
])
def test_own_point_compares_values_as_the_spec_writes_them(tmp_path, point, own):
    assert own_points(load(write(tmp_path, GOOD)))(point) is own


def test_own_point_of_list_values_compares_them_whole(tmp_path):
    spec = load(write(tmp_path, "name: toy\nbase: {model: {name: resnet26}, data: {name: synthetic, input_size: 32}}\n"
                                "grid:\n  lr_milestones: [[1, 2], [3]]\n"))
    assert own_points(spec)({"lr_milestones": [1, 2]}) and own_points(spec)({"lr_milestones": [3.0]})
    assert not own_points(spec)({"lr_milestones": [1]}) and not own_points(spec)({"lr_milestones": 3})


def test_run_ids_are_stable_and_shared_across_specs(tmp_path):
    a = expand(load(write(tmp_path, GOOD, "a")))
    other = GOOD.replace("lr: [0.1, 0.2, 0.4]", "lr: [0.4, 0.1]").replace("description: toy grid", "description: x")
    with pytest.warns(SuiteWarning, match=r"b.yaml:20: reference.1: .* fits no point of the grid"):
        b = expand(load(write(tmp_path, other, "b")))  # its grid lost lr 0.2, the reference did not
    assert {r.run_id for r in b} < {r.run_id for r in a}
    assert [r.run_id for r in expand(load(tmp_path / "a.yaml"))] == [r.run_id for r in a]


def test_conditional_rules(tmp_path):
    spec = load(write(tmp_path, """\
        name: rules
        base: {data: {name: synthetic, input_size: 32}, epochs: 1, lr: 0.1}
        grid: {model.name: [resnet26, resnet38]}
        when:
          - {match: {model.name: "resnet3*"}, set: {lr: 0.3}}
        presets:
          smoke:
            when: [{match: {model.name: resnet26}, set: {model.zero_init_residual: true}}]
        """, "rules"))
    runs = {r.point["model.name"]: r.config for r in expand(spec)}
    assert runs["resnet26"].lr == 0.1 and runs["resnet38"].lr == 0.3
    smoke = {r.point["model.name"]: r.config for r in expand(spec, preset="smoke")}
    assert smoke["resnet26"].model.kwargs["zero_init_residual"] is True
    assert smoke["resnet38"].model.kwargs["zero_init_residual"] is False


def test_command_line_overrides_apply_to_every_run(tmp_path):
    runs = expand(load(write(tmp_path, GOOD)), overrides={"momentum": 0.5})
    assert {r.config.momentum for r in runs} == {0.5}
    with pytest.raises(SuiteError) as err:
        expand(load(write(tmp_path, GOOD)), overrides={"momentun": 0.5})
    assert err.value.file == "<command line>" and "did you mean 'momentum'" in str(err.value)


def test_a_relative_data_root_is_the_spec_files_folders_and_the_callers_on_the_command_line(tmp_path, monkeypatch):
    """A spec's own `data.root: data/mine` was read against the working directory of whatever read
    the run (`suite run` in one folder, a SLURM job or a resubmission pasted in another), so each
    read another folder. It is the spec file's folder's (base, a preset or a rule alike), as include
    paths are, and recorded absolute; an override's is the caller's folder's, from Python as on the
    command line; a home-relative one is left to the machine that reads it. No run id changes."""
    from suite import store

    specs, elsewhere = tmp_path / "specs", tmp_path / "elsewhere"
    specs.mkdir()
    elsewhere.mkdir()
    write(specs, """\
        name: rooted
        base: {model: {name: resnet26}, data: {name: synthetic, input_size: 32, root: data/mine}, epochs: 1}
        grid: {lr: [0.1, 0.2]}
        when: [{match: {lr: 0.2}, set: {data.root: ./other}}]
        presets: {nested: {data: {root: data/nested}}, home: {data.root: ~/data}}
        """, "rooted")
    monkeypatch.chdir(elsewhere)
    spec = load("../specs/rooted.yaml")  # by a relative path: its folder all the same
    mine, other = expand(spec)
    assert (mine.config.data.root, other.config.data.root) == (str(specs / "data/mine"), str(specs / "other"))
    assert {r.config.data.root for r in expand(spec, preset="nested")} == {str(specs / "data/nested")}
    assert {r.config.data.root for r in expand(spec, preset="home")} == {"~/data"}
    by_caller = expand(spec, overrides={"data": {"root": "here", "workers": 0}})  # the caller's folder wins
    assert {r.config.data.root for r in by_caller} == {str(elsewhere / "here")}
    assert by_caller[0].given() == [f"data.root={elsewhere / 'here'}", "data.workers=0"]  # recorded so
    store.plan(tmp_path / "store", mine)  # what a SLURM job or a later command reads
    planned = json.loads((store.run_dir(tmp_path / "store", mine.run_id) / "config.json").read_text())
    assert planned["config"]["data"]["root"] == str(specs / "data/mine")
    rootless = load(write(tmp_path, (specs / "rooted.yaml").read_text().replace(", root: data/mine", ""), "rooted"))
    assert [r.run_id for r in expand(rootless)] == [mine.run_id, other.run_id] == [r.run_id for r in by_caller]


def test_a_points_preset_rules_and_data_root_are_laid_once_not_once_a_seed(tmp_path, monkeypatch):
    """Expansion laid the preset's values and rules over each point, and rooted its data.root,
    once for every seed, though none depends on the seed; it does so once a point, and the runs
    are the same (each seed's own, the preset's rule and the spec's root applied)."""
    expanding = sys.modules["suite.ablations.expand"]  # the module (`ablations.expand` is its function)
    spec = load(write(tmp_path, """\
        name: seeded
        base: {model: {name: resnet26}, data: {name: synthetic, input_size: 32, root: data/mine}, epochs: 1}
        grid: {lr: [0.1, 0.2]}
        seeds: 3
        presets: {fast: {when: [{match: {lr: 0.2}, set: {weight_decay: 0.0}}]}}
        """, "seeded"))
    rooted, real = [], expanding.rooted
    monkeypatch.setattr(expanding, "rooted", lambda values, folder: rooted.append(values) or real(values, folder))
    runs = expand(spec, preset="fast")
    assert len(rooted) == 1 + 2, len(rooted)  # the command line's, then each of the 2 points' (not 2 x 3 seeds')
    assert [(r.point["lr"], r.seed) for r in runs] == [(lr, s) for lr in (0.1, 0.2) for s in (0, 1, 2)]
    assert [r.config.weight_decay == 0.0 for r in runs] == [False] * 3 + [True] * 3
    assert {r.config.data.root for r in runs} == {str(tmp_path / "data/mine")}
    assert len({r.run_id for r in runs}) == 6


# ---- one test per error kind: each names the file, the key and (where YAML has one) the line
def error_of(tmp_path, text, preset=None) -> SuiteError:
    path = write(tmp_path, text, "bad")
    with pytest.raises(SuiteError) as err:
        expand(load(path), preset=preset)
    assert err.value.file == str(path)
    return err.value


def test_a_spec_that_is_not_utf8_names_the_file_and_the_byte(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: latin1\ndescription: caf\u00e9\nbase: {model: {name: resnet26}}\n".encode("latin-1"))
    with pytest.raises(SuiteError) as err:
        load(path)
    assert err.value.file == str(path) and "not UTF-8 text (byte 0xe9 at offset" in err.value.message


def test_bad_yaml_gives_the_line(tmp_path):
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}\ngrid:\n  lr: [1, 2]\n")
    assert err.line == 3 and "bad YAML" in err.message


def test_a_control_character_is_bad_yaml_on_one_line_with_its_line(tmp_path):
    """PyYAML says where in offsets, on a second line (`in "<unicode string>", position 55`)."""
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\ndescription: a\x01b\n")
    assert err.line == 3 and err.message == "bad YAML: unacceptable character #x0001: special characters are not allowed"


LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else '1'] * 10)}]\n" for i in range(7))


@pytest.mark.parametrize("text,says", [
    ("grid: {model.mask_norm: &a [*a]}\n", "an alias refers to a collection that contains it"),
    ("base: &b {model: {name: resnet26}, again: *b}\n", "an alias refers to a collection that contains it"),
    (LAUGHS, "its aliases expand to more than 100,000 entries"),  # 10**7 entries from 7 lines
    ("grid: {lr: " + "[" * 3000 + "]" * 3000 + "}\n", "nested too deeply"),
])
def test_yaml_that_would_never_finish_loading_is_bad_yaml(tmp_path, text, says):
    err = error_of(tmp_path, "name: bad\n" + text)
    assert "bad YAML" in err.message and says in err.message
    with pytest.raises(SuiteError, match=f"cannot parse value .*{says}"):  # on the command line too
        parse_overrides([f"model.x={text.replace(chr(10), ' ')}"] if "l0" not in text else [f"model.x={{{LAUGHS.strip().replace(chr(10), ', ')}}}"])


@pytest.mark.parametrize("text,line,key", [
    ("name: bad\nbase: {model: {name: resnet26}}\ngrid:\n  lr: [0.1]\ngrid:\n  seed: [1]\n", 5, "grid"),
    ("name: bad\nbase: {model: {name: resnet26}}\ngrid:\n  lr: [0.1, 0.2]\n  lr: [0.4]\n", 5, "lr"),
    ("name: bad\nbase: {model: {name: resnet26}}\ngrid: {lr: [0.1], lr: [0.4]}\n", 3, "lr"),
])
def test_a_duplicate_key_is_an_error_not_a_lost_axis(tmp_path, text, line, key):
    err = error_of(tmp_path, text)
    assert err.line == line and f"duplicate key {key!r}" in err.message


def test_unknown_model(tmp_path):
    err = error_of(tmp_path, "name: bad\nbase:\n  data: {name: digits}\ngrid:\n  model.name: [resnet26, resnet62]\n")
    assert err.key == "grid.model.name" and err.line == 5 and "did you mean 'resnet26'" in err.message


def test_unknown_option_value(tmp_path):
    err = error_of(tmp_path, "name: bad\nbase:\n  model: {name: resnet26}\n  amp: fp8\n")
    assert err.key == "base.amp" and err.line == 4 and err.choices == ["fp32", "bf16", "fp16"]


@pytest.mark.parametrize("where, key, line", [
    ("base:\n  model: {name: resnet26}\n  1: 2\n", "base.1", 4),  # not taken for item 1 of a list
    ("base:\n  model: {name: resnet26}\n  model.7: 2\n", "base.model.7", 4),
    ("base: {model: {name: resnet26}}\nwhen:\n  - match: {model.name: resnet26}\n    set: {0: 2}\n", "when.0.set.0", 5),
    ("base: {model: {name: resnet26}}\npresets:\n  p: {2: 1}\n", "presets.p.2", 4),
    ("base: {model: {name: resnet26}}\ngrid:\n  1: [1, 2]\n", "grid.1", 4),  # an axis's items: the axis
])
def test_a_key_made_of_digits_is_named_whole(tmp_path, where, key, line):
    err = error_of(tmp_path, "name: bad\n" + where, preset="p" if "presets" in where else None)
    assert (err.key, err.line) == (key, line) and ("unknown" in err.message or "no option" in err.message)


def test_unknown_model_option(tmp_path):
    err = error_of(tmp_path, "name: bad\nbase:\n  model:\n    name: resnet26\n    zero_init: true\n")
    assert err.key == "base.model.zero_init" and err.line == 5 and "zero_init_residual" in err.message


@pytest.mark.parametrize("axis", ["lr: [0.1]", "model.base_width: [4]"])
def test_runs_without_a_model_are_said_so(tmp_path, axis):
    """Neither base, grid nor a preset names a model, also where an axis sets a model's option."""
    err = error_of(tmp_path, f"name: bad\nbase:\n  data: {{name: digits}}\ngrid:\n  {axis}\n")
    assert err.key == "base" and "model.name: missing: every run needs a model" in err.message


def test_typo_in_a_dotted_key(tmp_path):
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\ngrid:\n  data.clean_ration: [0.5]\n")
    assert err.key == "grid.data.clean_ration" and err.line == 4 and "did you mean 'data.clean_ratio'" in err.message


def test_an_unknown_report_metric_is_an_error_when_the_spec_loads(tmp_path):
    """Not after the grid has run, when `suite report` is the first to look at it."""
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\ngrid: {lr: [0.1]}\n"
                             "report:\n  metrics: [top1_err, top1_eror]\n")
    assert err.key == "report.metrics" and err.line == 5 and "did you mean 'top1_err'" in err.message
    assert "train_peak_memory_mb" in err.choices and "spec" not in err.choices


LABELLED = ("name: bad\nbase: {model: {name: resnet26}}\ngrid: {lr: [0.1, 0.2], data.clean_ratio: [0.9, 0.7]}\n"
            "presets:\n  p: {grid: {data.clean_ratio: [0.5]}}\nlabels:\n")


def test_labels_name_axes_and_values_as_the_paper_does(tmp_path):
    """A preset's values are the axis' too: it needs their labels."""
    spec = load(write(tmp_path, LABELLED + "  data.clean_ratio: {name: Noise level, values: {0.9: 10%, 0.7: 30%, "
                                           "0.5: 50%}}\n  lr: {name: learning rate}\n", "bad"))
    noise = spec.labels["data.clean_ratio"]
    assert noise.name == "Noise level" and noise.values == {0.9: "10%", 0.7: "30%", 0.5: "50%"}
    assert spec.labels["lr"].name == "learning rate" and spec.labels["lr"].values == {}
    assert load(write(tmp_path, GOOD, "plain")).labels == {}  # a user's grid needs none


@pytest.mark.parametrize("entry, key, says", [
    ("  data.clean_ration: {name: Noise level}\n", "labels.data.clean_ration", "is not an axis of the spec"),
    ("  lr: {title: learning rate}\n", "labels.lr.title", "unknown labels key"),
    ("  lr: {name: 5}\n", "labels.lr.name", "a label is text, got 5"),
    ("  lr: {values: [0.1, 0.2]}\n", "labels.lr.values", "expected a mapping of the axis' values to labels"),
    ("  lr: {values: {0.1: slow, 0.3: fast}}\n", "labels.lr.values.0.3", "0.3 is not a value of lr"),
    ("  lr: {values: {0.1: slow, 0.2: slow}}\n", "labels.lr.values.0.2",
     "the label 'slow' is given twice, for 0.1 and 0.2"),
    # é composed (U+00E9) and e + a combining acute (U+0301): one label to a reader, two strings to Python
    ("  lr: {values: {0.1: \"caf\\u00e9\", 0.2: \"cafe\\u0301\"}}\n", "labels.lr.values.0.2",
     "is given twice, for 0.1 and 0.2, spelt 'caf\\xe9' and 'cafe\\u0301' (one composes an accent the other adds)"),
    ("  lr: {values: {0.1: slow, 0.2: \"\"}}\n", "labels.lr.values.0.2", "a label is text"),
    # a line break ended the Markdown row and the LaTeX legend's comment; Markdown drops the spaces
    ("  lr: {values: {0.1: slow, 0.2: \"fast\\nrate\"}}\n", "labels.lr.values.0.2", "a label is one line of text"),
    ("  lr: {name: \"learning\\trate\"}\n", "labels.lr.name", "no line breaks, tabs"),
    ("  lr: {values: {0.1: slow, 0.2: ' slow'}}\n", "labels.lr.values.0.2", "a label has no spaces around it"),
    # a legend beside the figure's panels: a long one collapsed them
    ("  lr: {values: {0.1: slow, 0.2: " + "x" * 41 + "}}\n", "labels.lr.values.0.2", "a label is at most 40 characters"),
    # 0.1 labelled '0.2' and 0.2 labelled '0.1': each row reads as the other's
    ("  lr: {values: {0.1: '0.2', 0.2: fast}}\n", "labels.lr.values.0.1", "the label '0.2' is another value of lr"),
    # a quoted '0.1' is text, not the grid's number
    ("  lr: {values: {'0.1': slow, 0.2: fast}}\n", "labels.lr.values.0.1", "the grid's 0.1 is not text: write it unquoted"),
    # 0.5 (the preset's) under "Noise level" would pass for a noise level: every value or none
    ("  data.clean_ratio: {name: Noise level, values: {0.9: 10%, 0.7: 30%}}\n", "labels.data.clean_ratio.values",
     "no label for 0.5 (preset p)"),
    # two columns or legend entries of one name: `suite specs` passed these, `suite report` refused them after training
    ("  lr: {name: data.clean_ratio}\n", "labels.lr.name", "'data.clean_ratio' is also the key of axis data.clean_ratio"),
    ("  data.clean_ratio: {name: rate}\n  lr: {name: rate}\n", "labels.data.clean_ratio.name",
     "'rate' is also the name of axis lr (labels.lr.name)"),
])
def test_a_wrong_label_is_an_error_when_the_spec_loads(tmp_path, entry, key, says):
    err = error_of(tmp_path, LABELLED + entry)
    assert err.key == key and says in err.message and err.line is not None


def test_a_wrong_label_is_named_by_its_key_and_line_as_the_file_writes_them(tmp_path):
    """1e-3 and True were named 0.001 and true, found nowhere in the file: the line was the mapping's."""
    text = ("name: bad\nbase: {model: {name: resnet26}}\ngrid: {lr: [0.001, 0.2], model.zero_init_residual: [true, false]}"
            "\nlabels:\n  lr:\n    values:\n      0.2: fast\n      1e-3: ''\n")
    err = error_of(tmp_path, text)
    assert (err.key, err.line) == ("labels.lr.values.1e-3", 8)
    err = error_of(tmp_path, text.replace("      1e-3: ''\n", "      1e-3: slow\n  model.zero_init_residual:\n"
                                                             "    values:\n      False: plain\n      True: ''\n"))
    assert (err.key, err.line) == ("labels.model.zero_init_residual.values.True", 12)


def test_a_typo_in_a_labelled_grid_value_is_named_where_the_grid_gives_it(tmp_path):
    """A relation misspelt in a copy of a paper's spec was blamed on its label, spelt right, with
    the typo listed as the valid value: the labels are read before the runs' values are checked."""
    path = write(tmp_path, "name: bad\nbase: {model: {name: san10_pairwise}}\ngrid:\n"
                           "  model.relation: [sumation, subtraction]\n"
                           "labels:\n  model.relation: {values: {summation: Sum, subtraction: Sub}}\n", "bad")
    with pytest.raises(SuiteError) as err:
        load(path)
    assert err.value.key == "labels.model.relation.values.summation"
    assert f"the axis has sumation ({path}:4), which has no label and looks like it" in err.value.message
    assert "mend whichever of the two is misspelt" in err.value.message
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: san10_pairwise}}\ngrid: {model.relation: [dot]}\n"
                             "labels:\n  model.relation: {values: {summation: Sum}}\n")
    assert "is not a value of model.relation" in err.message and "looks like" not in err.message


def test_a_missing_label_names_the_preset_its_value_comes_from(tmp_path):
    """digits is no value the user wrote: every spec's smoke preset trains on it."""
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\ngrid: {data.name: [cifar10, cifar100]}\n"
                             "labels:\n  data.name: {values: {cifar10: C10, cifar100: C100}}\n")
    assert err.key == "labels.data.name.values" and "no label for digits (preset smoke)" in err.message


def test_unknown_dataset_and_recipe(tmp_path):
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}, data: {name: imagenette}}\n")
    assert err.key == "base.data.name" and "digits" in err.choices
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}, recipe: ran_cifr}\n")
    assert err.key == "base.recipe" and "did you mean 'ran_cifar'" in err.message


@pytest.mark.parametrize("axes, key, line, example", [
    ("grid:\n  model: [{mask_norm: channel, t: 1}, {mask_norm: spatial}]\n", "grid.model", 4, "model.mask_norm: [...]"),
    ("zip:\n  - data: [{name: digits}, {name: cifar10}]\n    lr: [0.1, 0.2]\n", "zip.0.data", 4, "data.name: [...]"),
    ("grid: {lr: [0.1]}\npresets:\n  p:\n    grid: {model: [resnet26]}\n", "presets.p.grid.model", 6,
     "model.name: [...]"),
    ("grid:\n  measure: [{steps: 1}]\n", "grid.measure", 4, "measure.* keys say how a run is measured"),
])
def test_a_whole_section_is_not_an_axis(tmp_path, axes, key, line, example):
    """Its values' keys would dodge the label checks (an override of model.mask_norm would train
    another mask under the point's label), the rules' matching and the error lines."""
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: ran56_cifar}}\n" + axes)
    assert err.key == key and err.line == line and example in err.message
    if key != "grid.measure":  # measure has its own word: it is not trained at all
        assert "config section, not an axis" in err.message and "zip group" in err.message


def test_empty_grid(tmp_path):
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\ngrid:\n  lr: []\n")
    assert err.key == "grid.lr" and err.line == 4 and "empty axis" in err.message


def test_a_value_given_twice_on_an_axis_is_named(tmp_path):
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\ngrid:\n  lr: [0.1, 0.2, 0.1]\n")
    assert err.key == "grid.lr.2" and err.line == 4 and "duplicate runs" in err.message
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\ngrid: {lr: [0.1, 0.2]}\npresets:\n"
                             "  p:\n    grid: {lr: [0.2, 0.2]}\n", preset="p")  # the preset's line, not the spec's grid
    assert err.key == "presets.p.grid.lr.1" and err.line == 6 and "duplicate runs" in err.message
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\ngrid:\n  model: {zero_init_residual: [true]}\n")
    assert err.key == "grid.model" and "one dotted key: model.zero_init_residual: [...]" in err.message


DERIVED = ("name: bad\nbase: {model: {name: resnet26}, data: {name: synthetic, input_size: 64}, epochs: 1}\n"
           "grid:\n  data.eval_size: [null, 32]\n")  # eval_size null resolves to input_size


def test_duplicate_runs_made_by_a_preset(tmp_path):
    assert len(expand(load(write(tmp_path, DERIVED, "bad")))) == 2
    err = error_of(tmp_path, DERIVED + "presets:\n  p: {data.input_size: 32}\n", preset="p")
    assert "duplicate runs" in err.message and err.key == "grid.data.eval_size.1"


def test_duplicate_runs_made_by_the_command_line_blame_it(tmp_path):
    with pytest.raises(SuiteError) as info:
        expand(load(write(tmp_path, DERIVED, "bad")), overrides={"data.input_size": 32})
    assert info.value.file == "<command line>" and info.value.key == "data.input_size"
    assert "duplicate runs" in info.value.message and "only with the overrides data.input_size" in info.value.message
    with pytest.raises(SuiteError) as info:  # the spec's own duplicates stay the spec's
        expand(load(write(tmp_path, DERIVED.replace("[null, 32]", "[32, 32]"), "bad")), overrides={"lr": 0.2})
    assert info.value.file == str(tmp_path / "bad.yaml") and info.value.key == "grid.data.eval_size.1"


AXES = """\
name: bad
base: {model: {base_width: 8}, data: {name: digits}, recipe: smoke}
grid:
  model.mask_norm: [mixed, spatial]
zip:
  - model.name: [ran56_cifar, ran92_cifar]
    model.attention_learning: [arl, nal]
presets:
  fast:
    epochs: 1
    model.mask_norm: spatial
  one: {model.attention_learning: arl}
  short: {grid: {model.mask_norm: [mixed]}}
reference:
  - {model.name: ran92_cifar, model.attention_learning: nal, top1_err: 5.0}
"""


def test_a_preset_value_cannot_set_a_grid_axis(tmp_path):
    """The runs would train spatial while labelled mixed, next to the paper's mixed value."""
    err = error_of(tmp_path, AXES, preset="fast")
    assert err.key == "presets.fast.model.mask_norm" and err.line == 11 and "grid axis" in err.message
    assert "presets.fast.grid: {model.mask_norm: [...]}" in err.message
    runs = expand(load(tmp_path / "bad.yaml"), preset="short")  # the preset's grid is the way
    assert {r.point["model.mask_norm"] for r in runs} == {"mixed"} == {r.config.model.kwargs["mask_norm"] for r in runs}
    err = error_of(tmp_path, AXES.replace("model.mask_norm: spatial", "model: {mask_norm: spatial}"), preset="fast")
    assert err.key == "presets.fast.model.mask_norm" and err.line == 11


def test_a_preset_value_for_a_zip_axis_is_every_points_label(tmp_path):
    runs = expand(load(write(tmp_path, AXES, "bad")), preset="one")
    assert {(r.point["model.name"], r.point["model.attention_learning"]) for r in runs} == \
        {("ran56_cifar", "arl"), ("ran92_cifar", "arl")}
    assert all(r.point["model.attention_learning"] == r.config.model.kwargs["attention_learning"] for r in runs)
    assert not any(r.reference for r in runs)  # the paper's nal value fits no point that trains arl


@pytest.mark.parametrize("key,value,axis", [
    ("model.attention_learning", "arl", "model.attention_learning"),  # a zip axis
    ("model.mask_norm", "mixed", "model.mask_norm"),  # a grid axis
    ("model", {"mask_norm": "mixed"}, "model.mask_norm"),  # nested
])
def test_a_command_line_override_cannot_set_a_grid_axis(tmp_path, key, value, axis):
    with pytest.raises(SuiteError) as info:
        expand(load(write(tmp_path, AXES, "bad")), overrides={key: value})
    assert info.value.file == "<command line>" and info.value.key == axis and "grid axis" in info.value.message
    assert ("zip group" in info.value.message) == (axis == "model.attention_learning")


def test_suite_run_refuses_an_override_of_an_axis(tmp_path, capsys):
    """`--dry-run model.attention_learning=arl` listed a point `...nal` whose config trains arl."""
    path = write(tmp_path, AXES, "bad")
    assert main(["run", str(path), "--dry-run", "--out", str(tmp_path / "out"), "model.attention_learning=arl"]) == 2
    assert "error: <command line>: model.attention_learning: 'model.attention_learning' is a grid axis of bad" in \
        capsys.readouterr().err


def test_setting_iterations_clears_an_epochs_axis(tmp_path):
    text = "name: bad\nbase: {model: {name: resnet26}, data: {name: synthetic}}\ngrid: {epochs: [1, 2]}\n"
    with pytest.raises(SuiteError) as info:
        expand(load(write(tmp_path, text, "bad")), overrides={"iterations": 5})
    assert info.value.key == "iterations" and "clears the grid axis 'epochs'" in info.value.message
    err = error_of(tmp_path, text + "presets:\n  p: {iterations: 5}\n", preset="p")
    assert err.key == "presets.p.iterations" and err.line == 5
    err = error_of(tmp_path, text + "when: [{match: {epochs: 1}, set: {iterations: 5}}]\n")
    assert err.key == "when.0.set.iterations" and "'iterations' clears 'epochs'" in err.message


def test_the_built_in_smoke_data_set_replaces_a_data_axis(tmp_path):
    text = "name: bad\nbase: {model: {name: resnet164_cifar}}\ngrid:\n  data.name: [cifar10, cifar100]\n"
    runs = expand(load(write(tmp_path, text, "bad")), preset="smoke")
    assert [(r.point["data.name"], r.config.data.name) for r in runs] == [("digits", "digits")]


@pytest.mark.parametrize("classes", [
    "zip:\n  - {data.name: [cifar10, cifar100], model.num_classes: [10, 100]}\n",  # coupled to the data
    "zip:\n  - {data.name: [cifar100, imagenet]}\ngrid:\n  model.num_classes: [100]\n",
    "zip:\n  - {data.name: [cifar100, imagenet]}\nbase: {model: {name: resnet164_cifar, num_classes: 100}}\n",
])
def test_the_smoke_data_set_brings_its_own_classes(tmp_path, classes):
    text = "name: bad\nbase: {model: {name: resnet164_cifar}}\n"
    text = text + classes if "base:" not in classes else classes.replace("zip", "name: bad\nzip", 1)
    runs = expand(load(write(tmp_path, text, "bad")), preset="smoke")
    assert [(r.config.data.name, r.config.model.kwargs["num_classes"]) for r in runs] == [("digits", 10)]
    own = expand(load(write(tmp_path, text, "bad")))
    assert len({r.config.data.name for r in own}) == 2 and {r.config.model.kwargs["num_classes"] for r in own} >= {100}


def test_a_spec_that_sets_its_smoke_data_keeps_its_classes(tmp_path):
    text = ("name: bad\nbase: {model: {name: resnet164_cifar}}\n"
            "zip:\n  - {data.name: [cifar10, cifar100], model.num_classes: [10, 100]}\n"
            "presets:\n  smoke: {data: {name: synthetic}}\n")
    runs = expand(load(write(tmp_path, text, "bad")), preset="smoke")
    assert sorted(r.config.model.kwargs["num_classes"] for r in runs) == [10, 100]


def test_zip_lengths_and_unknown_top_level_key(tmp_path):
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\nzip:\n  - {lr: [1, 2], momentum: [0.9]}\n")
    assert "equal lengths" in err.message and err.line == 4
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\ngrids: {lr: [1]}\n")
    assert err.key == "grids" and err.line == 3 and "did you mean 'grid'" in err.message


def test_unknown_preset_and_reference_axis(tmp_path):
    text = "name: bad\nbase: {model: {name: resnet26}}\ngrid: {lr: [0.1]}\n"
    err = error_of(tmp_path, text, preset="smok")
    assert "did you mean 'smoke'" in err.message
    err = error_of(tmp_path, text + "reference:\n  - {momentum: 0.9, top1_err: 3}\n")
    assert err.key == "reference.0.momentum" and err.line == 5
    err = error_of(tmp_path, text + "reference:\n  - {lr: 0.1, top1_er: 3}\n")  # a misspelt metric: a hint, as
    assert err.key == "reference.0.top1_er" and "did you mean 'top1_err'?" in err.message  # report.metrics gives
    for value in (".nan", ".inf", "'5.5'", "true"):
        err = error_of(tmp_path, text + f"reference:\n  - {{lr: 0.1, top1_err: 3}}\n  - {{lr: 0.1, top5_err: {value}}}\n")
        assert err.key == "reference.1.top5_err" and err.line == 6 and "a finite number" in err.message


def test_model_options_are_checked_against_each_other_and_the_data_when_the_spec_loads(tmp_path):
    """No model is built: the registry's check for the family runs for every grid point."""
    text = ("name: bad\nbase: {model: {name: san10_pairwise, padding: zeros}, data: {name: digits}}\n"
            "grid:\n  model.relation:\n    - summation\n    - star\n")
    err = error_of(tmp_path, text)
    assert err.key == "grid.model.relation" and err.line == 6 and "dot" in err.choices and "star" not in err.choices
    err = error_of(tmp_path, text.replace("model.relation:\n    - summation\n    - star", "model.footprint: [3, 4]"))
    assert err.key == "grid.model.footprint" and err.line == 4 and "odd" in err.message
    err = error_of(tmp_path, text.replace(", padding: zeros", ""))  # digits are 32 px: too small to reflect-pad
    assert err.key == "base.model.name" and err.line == 2
    assert "model.padding: inputs of 32 px" in err.message and "set padding to 'zeros'" in err.message
    assert "128 px (data.input_size is 32) [run " in err.message
    err = error_of(tmp_path, text.replace(", padding: zeros", "").replace("digits}", "digits, input_size: 128, eval_size: 96}"))
    assert "inputs of 96 px" in err.message and "(data.eval_size is 96) [run " in err.message


RULES = """\
name: bad
base: {model: {name: san10_pairwise, padding: zeros}, data: {name: digits}}
grid:
  model.relation: [summation, subtraction]
when:
  - {match: {model.relation: summation}, set: {lr: 0.2}}
presets:
  one: {grid: {model.relation: [subtraction]}}
reference:
  - {model.relation: subtraction, top1_err: 3.0}
  - {model.relation: subtraction, top5_err: 1.0}
"""


def test_a_rule_matches_only_keys_the_spec_sets(tmp_path):
    err = error_of(tmp_path, RULES.replace("{model.relation: summation}", "{model.relaton: summation}"))
    assert err.key == "when.0.match.model.relaton" and err.line == 6 and "did you mean 'model.relation'" in err.message
    err = error_of(tmp_path, RULES.replace("{model.relation: summation}", "{model.footprint: 7}"))
    assert err.key == "when.0.match.model.footprint" and "set before it" in err.message  # a default is not matched


def test_a_rule_cannot_set_an_axis(tmp_path):
    err = error_of(tmp_path, RULES.replace("set: {lr: 0.2}", "set: {model: {relation: dot}}"))
    assert err.key == "when.0.set.model.relation" and err.line == 6 and "grid axis" in err.message


def test_rules_and_reference_entries_that_fit_nothing(tmp_path):
    runs = expand(load(write(tmp_path, RULES, "bad")))
    assert [r.config.lr for r in runs] == [0.2, 0.05]  # 0.05: the smoke recipe
    assert runs[1].reference == {"top1_err": 3.0, "top5_err": 1.0}  # entries for one point add up
    err = error_of(tmp_path, RULES.replace("{model.relation: summation}", "{model.relation: sumation}"))
    assert err.key == "when.0.match.model.relation" and "did you mean 'summation'" in err.message
    err = error_of(tmp_path, RULES.replace("{model.relation: summation}", "{model.relation: softmax}"))
    assert "'softmax' is no value model.relation takes" in err.message  # not close to anything: still no value
    for wrong in ("[summation]", "3", "true"):  # not a string at all: no value either, for rules and reference
        err = error_of(tmp_path, RULES.replace("{model.relation: summation}", f"{{model.relation: {wrong}}}"))
        assert err.key == "when.0.match.model.relation" and "is no value model.relation takes" in err.message
        err = error_of(tmp_path, RULES.replace("subtraction, top5", f"{wrong}, top5"))
        assert err.key == "reference.1.model.relation" and "is no value model.relation takes" in err.message
    err = error_of(tmp_path, RULES.replace("data: {name: digits}}", "data: {name: digits}, weight_decay: 0.001}")
                   .replace("{model.relation: summation}", "{weight_decay: small}"))
    assert err.key == "when.0.match.weight_decay" and "'small' is no value weight_decay takes" in err.message
    err = error_of(tmp_path, RULES.replace("subtraction, top5", "subtracton, top5"))
    assert err.key == "reference.1.model.relation" and err.line == 11 and "did you mean 'subtraction'" in err.message
    err = error_of(tmp_path, RULES.replace("top5_err: 1.0", "top1_err: 1.0"))
    assert err.key == "reference.1.top1_err" and "entries 0 and 1 give top1_err different values" in err.message
    # values not in the grid, but no misspelling of one: a grid narrowed from the paper's
    with pytest.warns(SuiteWarning, match="bad.yaml:6: when.0.match: this rule matches no run"):
        expand(load(write(tmp_path, RULES.replace("{model.relation: summation}", "{model.relation: dot}"), "bad")))
    narrowed = RULES.replace("{model.relation: summation}", '{model.relation: "subt*", model.padding: reflect}')
    with pytest.warns(SuiteWarning, match="this rule matches no run"):  # the pattern fits: no misspelling
        expand(load(write(tmp_path, narrowed, "bad")))
    with pytest.warns(SuiteWarning, match="bad.yaml:10: reference.0: .* fits no point of the grid"):
        expand(load(write(tmp_path, RULES.replace("subtraction, top1", "hadamard, top1"), "bad")))
    # a preset narrows the grid: the spec's rule and reference entries may fit nothing, silently
    spec = load(write(tmp_path, RULES, "bad"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r.config.lr for r in expand(spec, preset="one")] == [0.05]


def test_milestones_for_a_schedule_without_them_are_refused_where_runs_are_described(tmp_path):
    """Under smoke's cosine schedule a grid of lr_milestones trained one network under two run ids."""
    text = ("name: bad\nbase: {model: {name: resnet26}, data: {name: synthetic, input_size: 32}, epochs: 1}\n"
            "grid: {lr_milestones: [[0.5], [0.5, 0.75]]}\n")
    err = error_of(tmp_path, text)
    assert (err.key, err.line) == ("grid.lr_milestones", 3)
    assert "only schedule step uses it, and this run's schedule is cosine (from recipe smoke)" in err.message
    err = error_of(tmp_path, text.replace("grid: {lr_milestones: [[0.5], [0.5, 0.75]]}", "grid: {lr_decay: [0.1, 0.5]}"))
    assert err.key == "grid.lr_decay" and "[run lr_decay=0.5 seed=0]" in err.message  # the default is no change
    err = error_of(tmp_path, text.replace("epochs: 1}", "epochs: 1, schedule: constant}"))
    assert "this run's schedule is constant (as given)" in err.message  # every schedule but step, not only cosine
    plain = text.replace("grid: {lr_milestones: [[0.5], [0.5, 0.75]]}", "grid: {lr: [0.1]}")
    spelled = plain.replace("epochs: 1}", "epochs: 1, lr_milestones: []}")  # no milestones, said: the same run
    assert [r.run_id for r in expand(load(write(tmp_path, spelled, "bad")))] == \
        [r.run_id for r in expand(load(write(tmp_path, plain, "bad")))]
    runs = expand(load(write(tmp_path, text.replace("epochs: 1}", "epochs: 1, schedule: step}"), "bad")))
    assert len({r.run_id for r in runs}) == 2
    with pytest.raises(SuiteError, match="lr_milestones: only schedule step"):  # nor on the command line
        expand(load(write(tmp_path, text.replace("grid: {lr_milestones: [[0.5], [0.5, 0.75]]}\n", ""), "bad")),
               overrides={"lr_milestones": [0.5]})
    # a record stored before still reads (its config is whole: recipe, schedule and milestones)
    stored = resolve({"model": {"name": "resnet26"}, "schedule": "cosine", "lr_milestones": [0.5], "epochs": 1})
    assert stored.lr_milestones == (0.5,)


def test_a_valid_value_missing_from_a_narrowed_grid_is_only_a_warning(tmp_path):
    text = ("name: bad\nbase: {data: {name: synthetic, input_size: 32}, epochs: 1, schedule: step}\n"
            "grid: {lr_milestones: [[0.5], [0.3, 0.6]], model.name: [resnet26]}\n"
            "when: [{match: {model.name: resnet38, lr_milestones: [0.2]}, set: {lr: 0.3}}]\n"
            "reference:\n  - {model.name: resnet50, top1_err: 23.1}\n  - {lr_milestones: [0.5, 0.75], top1_err: 5}\n")
    with pytest.warns(SuiteWarning) as caught:  # resnet38/50 exist: not typos of resnet26; lists are values too
        assert len(expand(load(write(tmp_path, text, "bad")))) == 2
    assert sorted(str(w.message).split(": ")[1] for w in caught) == ["reference.0", "reference.1", "when.0.match"]


def test_each_layer_overrides_the_ones_before_and_errors_name_the_one_that_set_the_value(tmp_path):
    text = ("name: bad\nbase: {model: {name: resnet26}, data: {name: synthetic, input_size: 32}, epochs: 2}\n"
            "grid: {data.clean_ratio: [0.9, 0.7]}\n"
            "presets:\n  noisy: {data.clean_ratio: 1.5}\n  short: {iterations: 20}\n")
    err = error_of(tmp_path, text, preset="noisy")
    assert err.key == "presets.noisy.data.clean_ratio" and err.line == 5  # not the grid's line
    runs = expand(load(tmp_path / "bad.yaml"), preset="short")  # iterations clears the base's epochs
    assert {(r.config.iterations, r.config.epochs) for r in runs} == {(20, None)}
    assert {r.config.iterations for r in expand(load(tmp_path / "bad.yaml"), overrides={"iterations": 3})} == {3}
    with pytest.raises(SuiteError) as info:
        expand(load(tmp_path / "bad.yaml"), overrides={"data.clean_ratio": 0.0})
    assert info.value.file == "<command line>" and info.value.key == "data.clean_ratio"
    with pytest.raises(SuiteError) as info:  # a model option left at its default fails: the choice of model is blamed
        expand(load(tmp_path / "bad.yaml"), overrides={"model.name": "san10_pairwise"})
    assert info.value.key == "model.name" and info.value.message.startswith("model.padding: inputs of 32 px")


def test_every_mistake_of_a_spec_is_named_at_once(tmp_path):
    text = ("name: bad\n"
            "base:\n"
            "  model: {name: ran56_cifar, base_width: 4, mask_nrom: mixed}\n"
            "  data: {name: digits}\n"
            "  lerning_rate: 0.1\n"
            "grid:\n"
            "  lr: [0.1, -0.5]\n"
            "  model.attention_learning: [arl, nall]\n")
    err = error_of(tmp_path, text)
    assert (err.key, err.line) == ("base.model.mask_nrom", 3)  # the error is the first by line
    assert [(e.key, e.line) for e in err.also] == [("base.lerning_rate", 5), ("grid.lr", 7),
                                                   ("grid.model.attention_learning", 8)]
    assert str(err).count("\n  and ") == 3 and "did you mean 'mask_norm'" in str(err)
    # a bad model name stops the search: every other check depends on the model
    err = error_of(tmp_path, text.replace("name: ran56_cifar", "name: ran57_cifar"))
    assert [err.key, *(e.key for e in err.also)] == ["base.model.name", "base.lerning_rate"]


@pytest.mark.parametrize(("text", "keys"), [
    # a mistaken data set: its default (digits, 32 px) must not produce mistakes of its own
    ("base: {model: {name: san10_pairwise, num_classes: 100}, data: {name: imagnet}}\n", ["base.data.name"]),
    # one training length: dropping epochs must not leave iterations' explicit null to complain
    ("base: {model: {name: resnet26}, data: {name: synthetic, input_size: 32}, epochs: 0, iterations: null}\n",
     ["base.epochs"]),
    # one mistake shown by every model of a grid is one mistake
    ("base: {model: {mask_nrom: mixed}, data: {name: digits}}\ngrid: {model.name: [ran56_cifar, ran92_cifar]}\n",
     ["base.model.mask_nrom"]),
    # one value, two mistakes: a model that refuses it and a model without the option
    ("base: {data: {name: digits, input_size: 128}}\n"
     "grid: {model.name: [san10_pairwise, san10_patchwise, ran56], model.relation: [subtraction, star]}\n",
     ["grid.model.relation", "grid.model.relation", "grid.model.relation"]),
    # an unknown key is one mistake, whatever values the grid gives it
    ("base: {model: {name: ran56_cifar}, data: {name: digits}}\ngrid: {model.mask_nrom: [mixed, spatial]}\n",
     ["grid.model.mask_nrom"]),
    # a duplicate run and a mistake elsewhere: both said
    ("base: {model: {name: ran56_cifar}, data: {name: digits}}\n"
     "grid: {lr: [0.05, 0.050], model.mask_norm: [mixd, mixed]}\n", ["grid.model.mask_norm", "grid.lr.1"]),
])
def test_a_mistake_is_said_once_and_invents_no_others(tmp_path, text, keys):
    err = error_of(tmp_path, "name: bad\n" + text)
    assert [err.key, *(e.key for e in err.also)] == keys, str(err)


def test_each_bad_value_of_a_model_check_is_its_own_mistake(tmp_path):
    """A registry check whose message did not name the value (share_planes) made every bad value of
    an axis read as one mistake, so only the first was said and the user mended them one run at a time."""
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: san10_pairwise, padding: zeros}}\n"
                             "grid: {model.share_planes: [0, 3, 4, 64], model.footprint: [2, 4, 7]}\n")
    said = [str(e) for e in (err, *err.also)]
    assert len(said) == 5, said
    for value in ("0", "3", "64"):
        assert any("share_planes=" in s and f"invalid value {value}:" in s for s in said), (value, said)


def test_a_cut_off_list_of_mistakes_says_so(tmp_path):
    values = ", ".join(str(-i) for i in range(1, 13))  # 12 negative learning rates
    err = error_of(tmp_path, f"name: bad\nbase: {{model: {{name: resnet26}}, data: {{name: digits}}}}\n"
                             f"grid: {{lr: [{values}]}}\n")
    assert len(err.also) == 10 and "checking stopped after 10 mistakes in 10 failing runs" in str(err.also[-1])


@pytest.mark.parametrize("where,key", [
    ("base: {{model: {{name: resnet26}}, seed: 5}}\n", "base.seed"),
    ("base: {{model: {{name: resnet26}}}}\ngrid: {{seed: [1, 2]}}\n", "grid.seed"),
    ("base: {{model: {{name: resnet26}}, lr: 0.1}}\nwhen: [{{match: {{lr: 0.1}}, set: {{seed: 3}}}}]\n", "when.0.set.seed"),
])
def test_a_seed_comes_from_seeds_only(tmp_path, where, key):
    err = error_of(tmp_path, "name: bad\n" + where.format())
    assert err.key == key and "seeds:" in err.message
    with pytest.raises(SuiteError, match="seeds:"):
        expand(load(write(tmp_path, GOOD, "good")), overrides={"seed": 7})


@pytest.mark.parametrize("where,line,key", [
    ("base:\n  data: {name: digits}\n  data.name: cifar10\n", 4, "base.data.name"),
    ("base:\n  model.base_width: 16\n  model: {name: resnet164_cifar, base_width: 8}\n", 4, "base.model.base_width"),
    ("base: {model: {name: resnet164_cifar}}\npresets:\n  p:\n    model.base_width: 16\n"
     "    model: {base_width: 8}\n", 6, "presets.p.model.base_width"),
    ("base: {model: {name: resnet164_cifar}, lr: 0.1}\nwhen:\n  - match: {lr: 0.1}\n"
     "    set: {data.name: digits, data: {name: cifar10}}\n", 5, "when.0.set.data.name"),
    ("base: {model: {name: resnet164_cifar}, lr: 0.1}\npresets:\n  p:\n    when:\n      - match: {lr: 0.1}\n"
     "        set:\n          lr: 0.2\n          measure: {steps: 3}\n          measure.steps: 4\n",
     10, "presets.p.when.0.set.measure.steps"),
])
def test_a_key_given_nested_and_dotted_is_an_error(tmp_path, where, line, key):
    """Flattening keeps whichever comes last: the other would be lost silently."""
    err = error_of(tmp_path, "name: bad\n" + where)
    assert err.key == key and err.line == line and "given twice" in err.message


@pytest.mark.parametrize("text, says", [
    ("seeds: true\n", "seeds: expected a non-empty list of integer seeds or a count, got true"),
    ("grid: {lr: null}\n", "grid.lr: an axis takes a list of values, got null"),
    ("paper: {table: false}\n", "paper.table: expected text, got false"),
    ("grid: {lr: [0.1]}\nreference: [{lr: 0.1, top1_err: null}]\n", "reference.0.top1_err: a reference value must be a "
     "finite number (leave out a value the paper does not give), got null"),
    ("grid: {model.name: [false]}\n", "grid.model.name: expected a model name, got false"),
    ("grid: {recipe: [true]}\n", "grid.recipe: expected a recipe name, got true"),
    ("cluster: {partition: true}\n", "cluster.partition: expected a string or null, got true"),
    ("cluster: {sbatch: {exclusive: false}}\n", "cluster.sbatch.exclusive: an sbatch value is a string, a number, "
     "true (a bare flag) or null (unset what a lower layer set), got false"),
])
def test_a_value_in_an_error_is_spelt_as_yaml_writes_it(tmp_path, text, says):
    """true, false and null as the file has them: not Python's True, False and None."""
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}, data: {name: digits}, epochs: 1}\n" + text)
    assert says in str(err).splitlines()[0]


def test_a_model_given_as_a_name_is_one_mistake(tmp_path):
    err = error_of(tmp_path, "name: bad\nbase: {model: ran56_cifar, data: {name: digits}}\n")
    assert err.key == "base.model" and err.line == 2 and "model: {name: ran56_cifar, ...}" in err.message
    assert not err.also  # no follow-on "model.name: missing"


@pytest.mark.parametrize("seeds,message", [
    ("0", "a seed count must be in [1, 10,000]"), ("1000000000000", "a seed count must be in [1, 10,000]"),
    ("[]", "non-empty list"), ("[1, 1]", "duplicate seeds"),
    ("[3, 18446744073709551616]", "[0, 2**63 - 1]"), ("[-1]", "[0, 2**63 - 1]"),
])
def test_bad_seeds_are_named_at_their_line(tmp_path, seeds, message):
    err = error_of(tmp_path, f"name: bad\nbase: {{model: {{name: resnet26}}}}\nseeds: {seeds}\n")
    assert err.key == "seeds" and err.line == 3 and message in err.message


@pytest.mark.parametrize("where,line,key", [
    ("seeds: 5000\ngrid: {lr: [0.1, 0.2, 0.3]}\n", 4, "grid"),
    ("grid: {lr: [0.1, 0.2]}\npresets:\n  p:\n    seeds: 5001\n", 5, "presets.p"),
    ("grid: {" + ", ".join(f"a{i}: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]" for i in range(12)) + "}\n", 3, "grid"),
])
def test_more_runs_than_a_spec_may_have_is_said_before_they_are_built(tmp_path, where, line, key):
    """10**12 points would be built for minutes (and gigabytes) before any other check spoke."""
    path = tmp_path / "big.yaml"
    path.write_text("name: big\nbase: {model: {name: resnet26}, data: {name: synthetic}}\n" + where)
    spec = load(path)
    with pytest.raises(SuiteError, match="more than the 10,000 one spec may have") as err:
        expand(spec, preset="p" if "presets" in where else None)
    assert (err.value.file, err.value.key, err.value.line) == (str(path), key, line)


@pytest.mark.parametrize("where,line,key", [
    ("grid:\n  lr: [0.1, 0.2]\n  measure.batch_size: [8, 64]\n", 5, "grid.measure.batch_size"),
    ("zip:\n  - {lr: [0.1, 0.2], measure.steps: [5, 9]}\n", 4, "zip.0.measure.steps"),
    ("grid: {lr: [0.1]}\npresets:\n  p:\n    grid: {measure.warmup: [1, 2]}\n", 6, "presets.p.grid.measure.warmup"),
])
def test_a_measure_key_is_no_grid_axis(tmp_path, where, line, key):
    """measure.* is not part of a run's identity: points differing only in it would be one run."""
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\n" + where)
    assert err.key == key and err.line == line and "suite profile MODEL --bench all --batch-size N" in err.message


@pytest.mark.parametrize("text,key,line,between", [
    ("grid: {lr: [0.1, 0.2]}\nzip:\n  - {lr: [0.3], momentum: [0.8]}\n", "zip.0.lr", 5, "grid and zip group 0"),
    ("zip:\n  - {lr: [0.1]}\n  - {momentum: [0.8],\n     lr: [0.3]}\n", "zip.1.lr", 6, "zip group 0 and zip group 1"),
])
def test_an_axis_in_two_places_names_both_and_its_line(tmp_path, text, key, line, between):
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\n" + text)
    assert (err.key, err.line) == (key, line) and f"axis appears twice (in {between})" in err.message


@pytest.mark.parametrize("group", ["{}", "null"])
def test_an_empty_zip_group_is_an_error(tmp_path, group):
    err = error_of(tmp_path, f"name: bad\nbase: {{model: {{name: resnet26}}}}\nzip:\n  - {group}\n")
    assert err.key == "zip.0" and err.line == 4 and "empty zip group" in err.message


@pytest.mark.parametrize("grid", ["grid: {}\n", "grid:\n", ""])
def test_a_spec_without_axes_is_one_run_per_seed(tmp_path, grid):
    spec = load(write(tmp_path, f"name: one\nbase: {{model: {{name: resnet26}}}}\n{grid}seeds: 2\n", "one"))
    assert [(r.point, r.seed) for r in expand(spec)] == [({}, 0), ({}, 1)]


@pytest.mark.parametrize("report,key,message", [
    ("{rows: [lr, lr]}", "report.rows", "'lr' is listed twice"),
    ("{columns: [momentum, momentum]}", "report.columns", "'momentum' is listed twice"),
    ("{rows: [lr], columns: [lr]}", "report.columns", "'lr' is in both report.rows and report.columns"),
    ("{rows: [seed], columns: [seed]}", "report.columns", "'seed' is in both"),
    ("{metrics: [top1_err, top5_err, top1_err]}", "report.metrics", "'top1_err' is listed twice"),
    ("{rows: [momentom]}", "report.rows", "'momentom' is not a grid axis; is 'momentum' or 'momentom' misspelt?"),
])
def test_report_axes_and_metrics_are_named_once(tmp_path, report, key, message):
    """A repeated axis shifted every cell after it; one in rows and columns lost the column axis."""
    err = error_of(tmp_path, f"name: bad\nbase: {{model: {{name: resnet26}}}}\ngrid: {{lr: [0.1], momentum: [0.9]}}\n"
                             f"report: {report}\n")
    assert err.key == key and err.line == 4 and message in err.message


@pytest.mark.parametrize("text,key,message", [
    ("description: [1, 2]\n", "description", "expected text, got list"),
    ("report: {rows: [lr]}\n", "report.rows", "'lr' is not a grid axis: the spec has no grid"),
    ("paper: {papr: Wang et al.}\n", "paper.papr", "unknown paper key"),
    ("paper: {paper: [Wang]}\n", "paper.paper", "expected text"),
    ("grid: {lr: [0.1, 0.2]}\nreference: [{top1_err: 5}]\n", "reference.0", "names no grid point"),
])
def test_spec_fields_of_the_wrong_kind(tmp_path, text, key, message):
    err = error_of(tmp_path, f"name: bad\nbase: {{model: {{name: resnet26}}}}\n{text}")
    assert err.key == key and message in err.message and "(valid: )" not in str(err)


@pytest.mark.parametrize("name", ["t1.smoke", "my spec", "x|y", "-x", "complexity", "L" * 95, "ü" * 48])
def test_a_spec_name_must_make_a_report_name(tmp_path, name):
    """`t1.smoke` and `t1 --preset smoke` both wrote t1.smoke.md; `my spec` could never be spliced;
    a name of 240 letters made `suite report` fail on a file name too long, its figures half written."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: '{name}'\nbase: {{model: {{name: resnet26}}}}\n")
    with pytest.raises(SuiteError) as info:
        load(path)
    assert info.value.file == str(path) and info.value.line == 1 and info.value.key == "name"
    assert load(write(tmp_path, "name: ü-ñ_2\nbase: {model: {name: resnet26}}\n", "ü-ñ_2")).name == "ü-ñ_2"
    assert load(write(tmp_path, f"name: {'L' * 94}\nbase: {{model: {{name: resnet26}}}}\n", "L" * 94)).name == "L" * 94


def test_a_spec_name_must_be_text(tmp_path):
    path = write(tmp_path, "name: 123\nbase: {model: {name: resnet26}}\n", "123")
    with pytest.raises(SuiteError, match=r"the spec name must be text, got 123 \(quote it"):
        load(path)
    path = write(tmp_path, "name: true\nbase: {model: {name: resnet26}}\n", "true")  # not Python's True
    with pytest.raises(SuiteError, match=r'got true \(quote it: name: "true"\)'):
        load(path)
    path = write(tmp_path, "name:\nbase: {model: {name: resnet26}}\n", "mine")
    with pytest.raises(SuiteError, match=r"the spec name is empty: write the file's \(name: mine\) or leave the key out"):
        load(path)


def test_an_option_value_is_shown_as_yaml_spells_it(tmp_path):
    path = write(tmp_path, "name: nul\nbase: {model: {name: ran56_cifar}}\ngrid: {model.mask_norm: [null]}\n", "nul")
    with pytest.raises(SuiteError, match=r"invalid value null for model 'ran56_cifar'"):
        expand(load(path))


def test_a_folder_or_file_named_like_a_spec_does_not_hide_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick").mkdir()
    (tmp_path / "san_main").write_text("")
    assert load("quick").name == "quick" and load("san_main").name == "san_main"
    assert load("quick") == load(ablations.find("quick"))


def test_a_spec_kept_elsewhere_cannot_take_a_shipped_spec_name(tmp_path, monkeypatch):
    """Its report would overwrite the shipped one's results/quick.md and its README block."""
    path = write(tmp_path, "name: quick\nbase: {model: {name: resnet26}}\n", "quick")
    with pytest.raises(SuiteError) as err:
        load(path)
    assert err.value.key == "name" and err.value.file == str(path) and "another spec has the name 'quick'" in str(err.value)
    assert load(ablations.find("quick")).name == "quick"  # the shipped file itself, by path
    monkeypatch.setenv("SUITE_ABLATIONS", str(tmp_path))  # a spec folder of the user's: its quick is the quick
    assert ablations.find("quick") == path and load(path).name == "quick"
    assert load(Path(__file__).resolve().parents[1] / "ablations" / "quick.yaml").name == "quick"  # shadowed, still


def test_every_preset_is_checked_on_load_with_each_mistake_said(tmp_path):
    """A preset not asked for still has its keys, values, grid values and rules checked, with the
    messages a run would give, all at once."""
    text = ("name: bad\nbase: {model: {name: ran56_cifar}, data: {name: digits}}\n"
            "grid: {model.mask_norm: [mixed, channel]}\nzip: [{lr: [0.1, 0.2], momentum: [0.9, 0.8]}]\npresets:\n"
            "  a: {lr: }\n"
            "  b: {grid: {model.mask_norm: [bogus]}}\n"
            "  c: {when: [{match: {model.mask_norm: mixd}, set: {model: {mask_type: local}}}]}\n"
            "  d: {grid: {lr: [0.3]}}\n"
            "  e: {modle.mask_type: local}\n")
    err = error_of(tmp_path, text)
    said = [str(err).split("\n")[0], *map(str, err.also)]
    assert len(said) == 5, said
    assert "bad.yaml:6: presets.a.lr: an empty value: expected a number" in said[0]
    assert "bad.yaml:7: presets.b.grid.model.mask_norm: invalid value bogus: no model takes it" in said[1]
    assert "bad.yaml:8: presets.c.when.0.match.model.mask_norm: invalid value mixd" in said[2]
    assert "presets.d.grid.lr: lr is an axis of zip group 0" in said[3]
    assert "presets.e.modle.mask_type: unknown key; did you mean 'model.mask_type'?" in said[4]
    assert expand(load(write(tmp_path, text.split("presets:")[0], "bad")))  # the spec itself is fine


def test_a_reference_percentage_is_in_0_to_100(tmp_path):
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\ngrid: {lr: [0.1]}\n"
                             "reference:\n  - {lr: 0.1, top1_err: 140}\n")
    assert err.key == "reference.0.top1_err" and err.line == 5 and "a percentage, in [0, 100]; got 140" in err.message


def test_reference_values_match_grid_values_of_the_same_kind(tmp_path):
    """`zero_init_residual: 1` used to take True's paper value (it is no boolean: an error); 1 and
    1.0 are one value."""
    text = ("name: toy\nbase: {model: {name: resnet26}, data: {input_size: 224}}\n"
            "grid: {model.zero_init_residual: [true, false], lr: [1, 0.5]}\n"
            "reference:\n  - {model.zero_init_residual: 1, top1_err: 20}\n"
            "  - {model.zero_init_residual: false, lr: 1.0, top1_err: 30}\n")
    with pytest.raises(SuiteError, match="model.zero_init_residual=1 is no value model.zero_init_residual takes"):
        expand(load(write(tmp_path, text, "toy")))
    runs = expand(load(write(tmp_path, text.replace("  - {model.zero_init_residual: 1, top1_err: 20}\n", ""), "toy")))
    got = {(r.point["model.zero_init_residual"], r.point["lr"]): r.reference.get("top1_err") for r in runs}
    assert got == {(True, 1): None, (True, 0.5): None, (False, 1): 30.0, (False, 0.5): None}


def test_a_preset_name_must_make_a_report_name(tmp_path):
    err = error_of(tmp_path, "name: bad\nbase: {model: {name: resnet26}}\npresets:\n  a.b: {lr: 0.2}\n")
    assert err.key == "presets.a.b" and err.line == 4 and "preset name" in err.message


def test_presets_whose_names_differ_only_in_case_are_refused(tmp_path):
    """Presets `Fast` and `fast` (or `Smoke` beside every spec's smoke) wrote their reports to
    toy.Fast.md and toy.fast.md: one file on macOS' and Windows' file systems, each over the other."""
    text = "name: bad\nbase: {model: {name: resnet26}}\npresets:\n  fast: {lr: 0.2}\n  Fast: {lr: 0.3}\n"
    err = error_of(tmp_path, text)
    assert err.key == "presets.Fast" and err.line == 5
    assert "preset 'Fast' and preset 'fast' differ only in case" in err.message
    err = error_of(tmp_path, text.replace("  fast: {lr: 0.2}\n", "").replace("Fast", "SMOKE"))
    assert err.key == "presets.SMOKE" and "preset 'smoke' (every spec has one) differ only in case" in err.message
    assert load(write(tmp_path, text.replace("  Fast: {lr: 0.3}\n", "  smoke: {lr: 0.3}\n"), "bad")).presets


def test_specs_whose_names_differ_only_in_case_are_refused(tmp_path, monkeypatch):
    """Toy.yaml beside toy.yaml in a spec folder (or a spec file named Toy run by its path) loaded, and
    their tables results/Toy.md and results/toy.md are one file on macOS' and Windows' file systems,
    each written over the other; either is now an error naming its file, `name` and the other file."""
    specs, elsewhere = tmp_path / "specs", tmp_path / "elsewhere"
    specs.mkdir()
    elsewhere.mkdir()
    monkeypatch.setenv("SUITE_ABLATIONS", str(specs))
    text = "name: {name}\nbase: {{model: {{name: resnet26}}}}\n"
    write(specs, text, "toy")
    assert load("toy").name == "toy"
    mine = write(elsewhere, text, "Toy")
    with pytest.raises(SuiteError) as caught:
        load(str(mine))
    assert caught.value.file == str(mine) and caught.value.key == "name"
    assert f"spec 'Toy' and spec 'toy' ({specs / 'toy.yaml'}) differ only in case" in caught.value.message
    write(specs, text, "Toy")
    for name, other in (("toy", "Toy"), ("Toy", "toy")):
        with pytest.raises(SuiteError) as caught:
            load(name)
        assert caught.value.file == str(specs / f"{name}.yaml") and caught.value.key == "name"
        said = caught.value.message
        assert f"spec {name!r} and spec {other!r} ({specs / f'{other}.yaml'}) differ only in case" in said
    assert load("quick").name == "quick"  # the other specs load as before


def test_errors_in_a_preset_grid_have_a_line(tmp_path):
    text = "name: bad\nbase: {model: {name: resnet26}}\ngrid: {lr: [0.1, 0.2]}\npresets:\n  fast:\n    grid: {lr: 0.1}\n"
    err = error_of(tmp_path, text)
    assert err.key == "presets.fast.grid.lr" and err.line == 6 and "takes a list" in err.message
    err = error_of(tmp_path, text.replace("{lr: 0.1}", "{momentum: [0.9]}"))
    assert err.key == "presets.fast.grid.momentum" and err.line == 6 and "replace the values of a grid axis" in err.message
    zipped = text.replace("grid: {lr: [0.1, 0.2]}", "zip: [{lr: [0.1, 0.2], momentum: [0.9, 0.8]}]")
    err = error_of(tmp_path, zipped.replace("{lr: 0.1}", "{lr: [0.1]}"))  # the zip group's axes are no grid axes, and there are none: say what to do
    assert err.key == "presets.fast.grid.lr" and "lr is an axis of zip group 0" in err.message and "(lr: VALUE)" in err.message


def test_spec_name_must_match_file(tmp_path):
    err = error_of(tmp_path, "name: other\nbase: {model: {name: resnet26}}\n")
    assert err.key == "name"


def test_validation_runs_before_anything_starts(tmp_path, capsys):
    path = write(tmp_path, "name: bad\nbase: {model: {name: resnet26}, data: {name: synthetic}}\ngrid: {lr: [0.1, x]}\n",
                 "bad")
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "bad.yaml:3: grid.lr" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_counts_on_the_command_line_must_be_positive(tmp_path, capsys):
    path = write(tmp_path, "name: ok\nbase: {model: {name: resnet26}, data: {name: synthetic}}\n", "ok")
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(path), "--max-parallel", "0"])
    assert exit_.value.code == 2 and "--max-parallel: must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "cancel", "train"])
def test_a_missing_spec_or_model_is_the_only_argument_named_missing(command, capsys):
    with pytest.raises(SystemExit) as exit_:  # key=value overrides are optional
        main([command])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and re.search(r"the following arguments are required: (SPEC|MODEL)$", err, re.M), err


@pytest.mark.parametrize("command", [["run", "--dry-run"], ["cancel"]])
def test_an_empty_spec_name_is_said_so(command, tmp_path, monkeypatch, capsys):
    """'' is no spec, not the working directory ("cannot read spec: Is a directory")."""
    monkeypatch.chdir(tmp_path)
    assert main([*command, "", "--out", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert "spec: an empty spec name" in err and "directory" not in err, err
    assert not (tmp_path / "store").exists()


def test_specs_lists_every_spec_and_names_a_broken_one(tmp_path, monkeypatch, capsys):
    write(tmp_path, "name: plain\nbase: {model: {name: resnet26}, data: {name: synthetic}}\n", "plain")
    write(tmp_path, "name: broken\ngrid: [1\n", "broken")
    write(tmp_path, "name: preset\nbase: {model: {name: resnet26}}\npresets:\n  fast: {epohcs: 1}\n  slow: {lrr: 1}\n",
          "preset")
    # an option some model has, but not resnet26: only the preset's runs can tell
    write(tmp_path, "name: option\nbase: {model: {name: resnet26}}\npresets:\n  early: {model.relation: dot}\n"
          "  slow: {model.mask_norm: spatial}\n",
          "option")
    write(tmp_path, "name: san\nbase: {model: {name: san10_pairwise}, data: {name: imagenet}}\n", "san")
    write(tmp_path, "name: zipped\nbase: {model: {name: resnet26}}\nzip: [{}]\n", "zipped")
    monkeypatch.setenv("SUITE_ABLATIONS", str(tmp_path))
    assert main(["specs"]) == 2
    out = capsys.readouterr().out
    assert "zipped.yaml:3: zip.0: empty zip group" in out  # an error, not a crash of the listing
    assert "broken.yaml:3: bad YAML" in out
    assert "preset.yaml:4: presets.fast.epohcs: unknown key; did you mean 'epochs'?" in out  # a preset is checked too
    assert "\n" + " " * 34 + "and " in out and "preset.yaml:5: presets.slow.lrr: unknown key" in out  # each one
    assert "\n" + " " * 32 + "under --preset slow: " in out  # every broken preset, each under the description column
    assert "under --preset smoke: " in out and "san.yaml" in out  # the built-in smoke preset: 32 px digits
    assert any(line.split()[:2] == ["plain", "1"] for line in out.splitlines())  # no description: no crash
    assert main(["specs", "--preset", "fast"]) == 2  # only the broken specs fail: the others lack the preset
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert all(lines[n].endswith("-  (no preset 'fast')") for n in ("plain", "san", "option"))  # listed, not invalid
    assert "invalid" in lines["broken"] and "invalid" in lines["zipped"]  # cannot be read: cannot tell
    assert "presets.fast.epohcs: unknown key" in out
    assert main(["specs", "--preset", "nowhere"]) == 2
    assert "no spec that could be read (3 specs could not, above) has the preset 'nowhere'" in capsys.readouterr().err
    assert main(["specs", "--preset", "smok"]) == 2 and "'smok'; did you mean 'smoke'?" in capsys.readouterr().err
    # a spec file kept anywhere is checked by its path, alone
    elsewhere = tmp_path / "mine"
    elsewhere.mkdir()
    mine = write(elsewhere, "name: mine\nbase: {model: {name: resnet26}}\npresets:\n  r: {lr: -1}\n", "mine")
    assert main(["specs", str(mine), "plain"]) == 2
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.split()[0] for line in lines] == ["mine", "plain"]
    assert "under --preset r: " in lines[0] and "presets.r.lr: must not be negative" in lines[0]
    # a preset of a spec file that cannot be read was said to be in no spec, though the file has it
    tiny = write(tmp_path, "name: tiny\nbase: {model: {name: resnet26}}\npresets:\n  tiny: {grid: {lr: [1]}}\n", "tiny")
    assert main(["specs", "--preset", "tiny", str(tiny)]) == 2
    err = capsys.readouterr().err
    assert "no spec has" not in err and "no spec that could be read (1 spec could not, above) has the preset" in err
    monkeypatch.setenv("SUITE_ABLATIONS", str(tmp_path / "none"))
    assert main(["specs", "--preset", "nowhere", "quick"]) == 2 and "no spec has the preset 'nowhere'" in capsys.readouterr().err


def test_specs_takes_patterns_as_suite_models_does(tmp_path, monkeypatch, capsys):
    """`suite specs 'zz_*'` lists the specs the pattern matches (it was an unknown spec 'zz_*'), beside
    names and paths as given, each once; a pattern that matches no spec is an error, not an empty list."""
    for name in ("zz_b", "zz_a"):
        write(tmp_path, f"name: {name}\nbase: {{model: {{name: resnet26}}}}\n", name)
    monkeypatch.setenv("SUITE_ABLATIONS", str(tmp_path))
    assert main(["specs", "zz_*", "quick", "zz_a"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["zz_a", "zz_b", "quick"]
    assert main(["specs", "zz_?", "zz_[!a]"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["zz_a", "zz_b"]
    assert main(["specs", "quick", "nothing*"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: spec: no spec matches 'nothing*' (valid: ") and "zz_a" in captured.err
    assert captured.out == ""  # said before any spec is listed


def test_specs_names_the_data_each_spec_trains_on_and_a_default_as_such(tmp_path, monkeypatch, capsys):
    """A dropped `data: {name: ...}` line trains on digits, with the run ids of a spec that says digits:
    the listing shows it, so the default is not taken unseen."""
    write(tmp_path, "name: bare\nbase: {model: {name: resnet26}}\npresets: {cifar: {data.name: cifar10}}\n", "bare")
    write(tmp_path, "name: said\nbase: {model: {name: resnet26}, data: {name: digits}}\n", "said")
    write(tmp_path, "name: both\nbase: {model: {name: resnet26}}\ngrid: {data.name: [cifar10, cifar100]}\n", "both")
    write(tmp_path, "name: ruled\nbase: {model: {name: resnet26}}\ngrid: {lr: [0.1, 0.2]}\n"
          "when: [{match: {lr: 0.2}, set: {data.name: synthetic}}]\n", "ruled")
    monkeypatch.setenv("SUITE_ABLATIONS", str(tmp_path))
    assert expand(load("bare"))[0].run_id == expand(load("said"))[0].run_id  # the same runs: only the list tells
    data = {}
    for args in ([], ["--preset", "cifar"], ["--preset", "smoke"]):
        assert main(["specs", "bare", "said", "both", "ruled", *args]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split() == ["spec", "runs", "data", "paper", "/", "description"]
        data[tuple(args)] = {line.split()[0]: line[32:].rstrip() for line in lines[1:] if "(no preset" not in line}
    assert data[()] == {"bare": "digits (default)", "said": "digits", "both": "cifar10, cifar100",
                        "ruled": "digits, synthetic"}
    assert data[("--preset", "cifar")] == {"bare": "cifar10"}
    assert set(data[("--preset", "smoke")].values()) == {"digits"}  # the smoke preset names its data set


# ---- the shipped specs
SHIPPED = ablations.list()


@pytest.mark.parametrize("unbuffered", ["1", ""], ids=["unbuffered", "buffered"])
def test_a_reader_that_stops_early_is_not_an_error(unbuffered):
    """`suite specs | head -1`: the pipe closes before the output is written, or (buffered, a plain
    shell's default for a pipe) before it is flushed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen([sys.executable, "-m", "suite", "specs"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[1], env={**env, "PYTHONUNBUFFERED": unbuffered})
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait() == 0 and err == "", err


def test_every_ablation_of_both_papers_is_shipped():
    assert set(SHIPPED) >= {
        "quick", "ran_mask_norm", "ran_arl_nal", "ran_mask_structure", "ran_label_noise", "ran_cifar_depth",
        "ran_imagenet", "san_pairwise_relation", "san_patchwise_relation", "san_main", "san_footprint",
        "san_position_encoding", "san_gamma", "san_robustness", "san_adversarial", "san_transforms",
    }


def test_a_default_written_out_is_the_same_run():
    """SAN10 pairwise (and patchwise) as each SAN ablation's baseline row: one model, so one run, trained once."""
    def ids(name: str, model: str = "san10_pairwise", **point) -> set[str]:
        return {r.run_id for r in expand(load(name)) if r.config.model.name == model
                and all(r.point.get(k) == v for k, v in point.items())}

    shared = ids("san_main") & ids("san_gamma", **{"model.gamma": "official"})
    assert len(shared) == 1
    assert ids("san_position_encoding", **{"model.position_encoding": "relative"}) == shared
    others = ids("san_position_encoding") - shared  # none and absolute: runs of their own
    assert len(others) == 2 and not others & ids("san_main")
    assert ids("san_footprint", **{"model.footprint": 7}) == ids("san_pairwise_relation", **{"model.relation": "subtraction"}) == shared
    for model in ("san10_pairwise", "san10_patchwise"):  # separate transformations: the official model, san_main's run
        baseline = ids("san_main", model)
        assert len(baseline) == 1 and ids("san_transforms", model, **{"model.transforms": "separate"}) == baseline
        others = ids("san_transforms", model) - baseline  # shared_relation and shared: runs of their own
        assert len(others) == 2 and not others & ids("san_main", model)


@pytest.mark.parametrize("preset", [None, "smoke"])
def test_the_robustness_table_reports_the_main_tables_runs(preset):
    """Every run evaluates the rotated and flipped views at its end, and an attack is a measurement
    of the trained network: san_robustness and san_adversarial train nothing of their own."""
    def ids(name: str) -> list[str]:
        return [r.run_id for r in expand(load(name), preset=preset)]

    assert ids("san_robustness") == ids("san_main") == ids("san_adversarial")  # attacking is measuring, not training


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("preset", [None, "smoke"])
def test_shipped_specs_expand(name, preset):
    spec = load(name)
    runs = expand(spec, preset=preset)
    assert runs and spec.description and spec.paper
    if preset == "smoke":
        assert {r.config.data.name for r in runs} == {"digits"}
    for entry in spec.reference:  # every reference value lands on some run of the full grid
        assert preset or any(r.reference and all(r.point.get(k) == v for k, v in entry.items() if k in r.point)
                             for r in runs)


def test_exponent_floats_in_a_spec(tmp_path):
    path = tmp_path / "lrs.yaml"
    path.write_text("name: lrs\ndescription: d\npaper: {paper: p, table: t}\n"
                    "base: {model: {name: resnet164_cifar}, data: {name: digits}}\ngrid: {lr: [1e-3, 1.0e12]}\n")
    assert [r.config.lr for r in ablations.expand(ablations.load(path))] == [1e-3, 1e12]


def _spec(tmp_path: Path, body: str) -> list:
    path = tmp_path / "figures.yaml"
    path.write_text("name: figures\ndescription: d\npaper: {paper: p, table: t}\n" + textwrap.dedent(body))
    return expand(load(path))


def test_a_run_of_a_model_at_its_defaults_is_compared_with_its_registrations_figures(tmp_path):
    """A model's published figures live in its registration alone: a spec that writes none still
    compares its runs at the model's defaults with them, on the data set they are for."""
    runs = _spec(tmp_path, """\
        base: {data: {name: imagenet}, recipe: san_imagenet}
        grid: {model.name: [san10_pairwise], model.footprint: [3, 7]}
        """)
    assert {r.point["model.footprint"]: r.reference for r in runs} == {
        3: {}, 7: {"params_m": 10.5, "gmacs": 2.2, "top1_err": 25.1, "top5_err": 7.9}}
    assert {r.reference_data for r in runs} == {"imagenet"}
    cifar = _spec(tmp_path, """\
        base: {model: {name: resnet164_cifar}, recipe: ran_cifar}
        grid: {data.name: [cifar10, cifar100, digits]}
        """)  # the classes follow the data set: still the model at its defaults
    assert [r.reference for r in cifar] == [
        {"params_m": 1.7, "top1_err": 5.46}, {"params_m": 1.7, "top1_err": 24.33}, {}]


@pytest.mark.parametrize("body", [
    "grid: {model.name: [resnet164_cifar], data.clean_ratio: [0.9]}",  # noisy labels: Table 5's, not Table 6's
    "grid: {model.name: [resnet164_cifar], lr: [0.1]}",  # an axis of training keys: each point its own experiment
    "grid: {model.name: [resnet164_cifar]}\nbase: {data: {name: cifar10, input_size: 40}, recipe: ran_cifar}",
    # on a data set its paper does not report it on: the figures are of the 1000-class (10-class) network
    "grid: {model.name: [ran56]}\nbase: {data: {name: cifar10, input_size: 224}, recipe: ran_cifar}",
    "grid: {model.name: [resnet164_cifar]}\nbase: {data: {name: imagenet, input_size: 32}, recipe: ran_cifar}",
    # an ImageNet folder of 100 classes: not the 1000-class ImageNet of the paper's errors
    "grid: {model.name: [ran56], model.num_classes: [100]}\nbase: {data: {name: imagenet}, recipe: ran_imagenet}",
])
def test_a_run_otherwise_than_the_papers_gets_no_registry_figure(tmp_path, body):
    base = "" if "base:" in body else "base: {data: {name: cifar10}, recipe: ran_cifar}\n"
    assert [r.reference for r in _spec(tmp_path, base + body)] == [{}]


def test_a_model_tested_at_another_size_is_compared_at_that_size(tmp_path):
    """Attention-92's figures are for 320-px crops: its run at 224 is not the paper's."""
    runs = _spec(tmp_path, """\
        base: {model: {name: ran92}, data: {name: imagenet}, recipe: ran_imagenet}
        grid: {data.eval_size: [224, 320]}
        """)
    assert [bool(r.reference) for r in runs] == [False, True]


def test_a_spec_repeating_a_registry_figure_is_refused(tmp_path):
    """One number, one place: a `reference:` row for a model at its defaults names the file and key."""
    with pytest.raises(SuiteError) as err:
        _spec(tmp_path, """\
            base: {model: {name: san10_pairwise}, data: {name: imagenet}, recipe: san_imagenet}
            grid: {model.footprint: [3, 7]}
            reference:
              - {model.footprint: 3, top1_err: 26.0}
              - {model.footprint: 7, top1_err: 25.1}
            """)
    assert err.value.file.endswith("figures.yaml") and err.value.key == "reference.1.top1_err"
    assert "model registry" in str(err.value)


def test_tables_6_and_7_have_every_row_with_a_defined_architecture():
    """RAN's Tables 6 and 7 side by side with the paper: every row but the Inception ones (no
    architecture given) is a run, and Attention-56/92's runs kept their ids when the baselines came."""
    imagenet = {r.config.model.name: r for r in expand(load("ran_imagenet"))}
    assert set(imagenet) == {"resnet152", "ran56", "resnext101_32x4d", "ranext56", "resnet200", "ran92"}
    assert {n: r.config.data.eval_size for n, r in imagenet.items() if r.config.data.eval_size != 224} == {
        "resnet200": 320, "ran92": 320}
    assert (imagenet["ran56"].run_id, imagenet["ran92"].run_id) == ("01f47856cbdb", "6cc1252e6f79")
    cifar = expand(load("ran_cifar_depth"))
    assert {r.config.model.name for r in cifar if r.reference} == {
        "resnet164_cifar", "resnet1001_cifar", "wrn16_8_cifar", "wrn28_10_cifar", "ran92_cifar", "ran236_cifar",
        "ran452_cifar"}


def test_the_committed_quick_results_keep_their_run_ids():
    """results/quick.csv came from `suite run quick`: today's expansion gives the same run ids, so the
    committed results stay the runs' own. Its runs spell the defaults of tuple keys (lr_milestones: ())
    that the resolved config holds as lists: a default is a default whatever its JSON shape."""
    import csv

    with open(Path(__file__).resolve().parents[1] / "results" / "quick.csv", newline="") as f:
        committed = [row["run_id"] for row in csv.DictReader(f)]
    assert sorted(r.run_id for r in expand(load("quick"))) == sorted(committed) and len(committed) == 8


@pytest.mark.parametrize("name,text", [
    ("grid.toml", 'name = "grid"\n[base]\nrecipe = "smoke"\n'),  # read as YAML: one string, "must be a mapping"
    ("grid.toml", 'name = "grid"\n[base\n'),
    ("grid", "name: grid\nbase: {model: {name: resnet26}}\n"),  # YAML, but `suite specs` and names find NAME.yaml
])
def test_a_spec_file_not_named_yaml_is_refused_as_such(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SuiteError) as err:
        load(path)
    assert err.value.file == str(path) and err.value.key == "spec"
    assert f"a spec file is YAML, named NAME.yaml; {name!r} is not (TOML and other formats are not read)" \
        in err.value.message


def test_a_spec_file_named_yml_is_read(tmp_path):
    """`.yml` is YAML's other suffix: such a file is a spec, not refused with the TOML files."""
    path = tmp_path / "grid.yml"
    path.write_text("name: grid\nbase: {model: {name: resnet26}}\n")
    assert load(path).name == "grid"


def test_a_folder_given_as_a_spec_is_said_to_be_one(tmp_path):
    """Not told to rename it to NAME.yaml, as a TOML file is: it is no file at all."""
    with pytest.raises(SuiteError, match="cannot read spec: Is a directory"):
        load(tmp_path)


def test_a_preset_of_rules_alone_leaves_the_paper_its_specs_own_run(tmp_path):
    """A preset may change runs by its `when:` rules alone: the paper's numbers still describe the
    spec's own run, which the report compares each run with (no weight decay is another experiment)."""
    spec = load(write(tmp_path, """\
        name: ruled
        base: {model: {name: resnet26}, data: {name: cifar10}, epochs: 1}
        grid: {lr: [0.1, 0.2]}
        reference: [{lr: 0.1, top1_err: 5.0}]
        presets: {decayless: {when: [{match: {lr: 0.1}, set: {weight_decay: 0.0}}]}}
        """, "ruled"))
    run = expand(spec, preset="decayless")[0]
    assert run.config.weight_decay == 0.0 and run.reference == {"top1_err": 5.0}
    assert run.reference_config is not None and run.reference_config.weight_decay != 0.0
