"""SLURM dispatch without a cluster: option layers and their errors, the code snapshot, the sbatch
script, and how ended jobs are reconciled with the store (sacct faked)."""

from __future__ import annotations

import datetime
import gzip
import math
import os
import socket
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

import suite
from suite import ablations, store
from suite.ablations import names
from suite.cli import main
from suite.dispatch import cluster, node_asks, sbatch_check, slurm, snapshot, visibility
from suite.dispatch.cluster import ClusterOptions, parse_cli, resolve_options
from suite.errors import SuiteError, count

SPEC = """\
name: opts
base: {model: {name: ran56_cifar, base_width: 4}, data: {name: synthetic, input_size: 8}, iterations: 2}
grid: {lr: [0.01, 0.02]}
cluster:
  partition: gpu
  gpus_per_node: 1
  sbatch: {mail-type: END}
"""


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "opts.yaml"
    path.write_text(SPEC)
    return ablations.load(path)


def options(spec, cli=None, user=None):
    return resolve_options(spec.cluster, parse_cli(cli or {}), spec_file=str(spec.path),
                           spec_line=lambda *path: spec.line("cluster", *path), user=user)


def node_mistakes(options, nodes):
    """`slurm._node_mistakes` of sinfo's lines `nodes` (slurm.SINFO's format)."""
    return slurm._node_mistakes(options, slurm._kinds(nodes))


# ------------------------------------------------------------------------------------ options
def test_layers_command_line_over_spec_over_user_file(tmp_path, spec):
    user = tmp_path / "cluster.yaml"
    user.write_text("partition: cpu\naccount: lab\nsbatch: {exclude: node7, mail-type: NONE}\nsetup: [module load a]\n")
    got = options(spec, {"qos": "high", "setup": ["conda activate x"], "sbatch": ["exclusive", "comment=a=b"]}, user)
    assert (got.partition, got.account, got.qos, got.gpus_per_node) == ("gpu", "lab", "high", 1)
    assert got.sbatch == {"exclude": "node7", "mail-type": "END", "exclusive": True, "comment": "a=b"}  # merged per key
    assert got.setup == ["conda activate x"]  # replaced
    assert (got.timeout_min, got.max_array_size, got.max_requeues, got.array_parallelism, got.signal_delay_s) \
        == (60, None, 3, 256, 120)  # defaults, as `suite run --help` and the README give them


def test_a_spec_unsets_an_sbatch_parameter_of_the_user_file_with_null(tmp_path):
    user = tmp_path / "cluster.yaml"
    user.write_text("sbatch: {exclude: node7, mail-type: NONE}\n")
    path = tmp_path / "opts.yaml"
    path.write_text(SPEC.replace("sbatch: {mail-type: END}", "sbatch: {exclude: null}"))
    assert options(ablations.load(path), user=user).sbatch == {"mail-type": "NONE"}


def test_user_file_from_environment(tmp_path, monkeypatch, spec):
    user = tmp_path / "site.yaml"
    user.write_text("account: lab\n")
    monkeypatch.setenv("SUITE_CLUSTER", str(user))
    assert resolve_options().account == "lab"
    monkeypatch.setenv("SUITE_CLUSTER", "")
    assert resolve_options() == ClusterOptions()
    monkeypatch.setenv("SUITE_CLUSTER", str(tmp_path / "missing.yaml"))
    with pytest.raises(SuiteError, match="missing.yaml: no such file"):
        resolve_options()
    monkeypatch.setenv("SUITE_CLUSTER", str(tmp_path))
    with pytest.raises(SuiteError, match="a directory, not a file"):
        resolve_options()


def test_the_lowest_value_of_each_option_is_accepted(spec):
    """The bounds themselves pass: no requeue at all (max_requeues 0) is a choice, as is a CPU-only job."""
    low = {"max_requeues": 0, "gpus_per_node": 0, "nodes": 1, "tasks_per_node": 1, "cpus_per_task": 1,
           "mem_gb": 0.001, "array_parallelism": 1, "max_array_size": 1, "signal_delay_s": 1, "timeout_min": 2}
    got = options(spec, low)
    assert {k: getattr(got, k) for k in low} == low


def test_the_user_file_defaults_to_the_xdg_config_home_else_dot_config(tmp_path, monkeypatch):
    monkeypatch.delenv("SUITE_CLUSTER", raising=False)
    for home, xdg in ((tmp_path / "home", tmp_path / "xdg"), (tmp_path / "home", None)):
        folder = (xdg or home / ".config") / "suite"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cluster.yaml").write_text(f"account: {folder.parent.name}\n")
        monkeypatch.setenv("HOME", str(home))
        if xdg:
            monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
        else:
            monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
        assert resolve_options().account == folder.parent.name


def test_a_value_a_layer_got_wrong_is_not_judged_against_the_others(tmp_path, spec):
    """`timeout_min: ten` beside `signal_delay_s: 4000`: the typo alone is named, not also a time limit
    of 60 min (the default standing in for the unreadable one) too short for the delay."""
    user = tmp_path / "cluster.yaml"
    user.write_text("timeout_min: ten\nsignal_delay_s: 4000\n")
    with pytest.raises(SuiteError) as err:
        options(spec, user=user)
    assert err.value.key == "timeout_min" and not err.value.also


def test_a_user_file_that_is_no_mapping_is_refused_by_name(tmp_path):
    """A list where the options go (`- partition: gpu`) would otherwise be dropped: jobs with no partition."""
    user = tmp_path / "cluster.yaml"
    user.write_text("- partition: gpu\n")
    with pytest.raises(SuiteError, match="expected a mapping of cluster options") as err:
        resolve_options(user=user)
    assert err.value.file == str(user)
    user.write_text("# nothing set yet\n")  # an empty file sets nothing
    assert resolve_options(user=user) == ClusterOptions()

def test_unknown_key_names_file_line_and_close_match(tmp_path):
    user = tmp_path / "cluster.yaml"
    user.write_text("account: lab\npartiton: gpu\n")
    with pytest.raises(SuiteError) as err:
        resolve_options(user=user)
    assert err.value.file == str(user) and err.value.line == 2
    assert "unknown cluster option 'partiton'; did you mean 'partition'?" in str(err.value)


def test_a_one_letter_sbatch_key_is_refused_by_file_line_and_key(tmp_path):
    """`sbatch: {j: x}` passed the check and reached sbatch as `#SBATCH --j=x`, which Slurm 22.05
    takes as --job-name (the job was renamed); `--p=gpu` it refuses as ambiguous, `--G=1` as unknown."""
    user = tmp_path / "cluster.yaml"
    user.write_text("account: lab\nsbatch:\n  j: x\n  G: 1\n")
    with pytest.raises(SuiteError) as err:
        resolve_options(user=user)
    assert [(e.file, e.line, e.key) for e in (err.value, *err.value.also)] == [(str(user), 3, "sbatch.j"),
                                                                             (str(user), 4, "sbatch.G")]
    assert "here --job-name" in str(err.value) and "write 'gpus' (-G is --gpus)" in str(err.value)


def test_an_sbatch_parameter_of_a_spec_is_named_at_its_own_line(tmp_path):
    """A mistake in a parameter under a block `sbatch:` of a spec's cluster section, found when the
    spec is read or by a check after (a refused option, more GPUs than a node has), named the line of
    `sbatch:`, where every other key is named at its own; each parameter is now named at its line,
    found by its key as written (mem_per_gpu, checked as mem-per-gpu)."""
    path = tmp_path / "opts.yaml"
    block = "  sbatch:\n    exclude: node7\n    mem_per_gpu: 1000\n    time: 10\n    j: x\n"
    path.write_text(SPEC.replace("  sbatch: {mail-type: END}\n", block))
    with pytest.raises(SuiteError) as err:
        ablations.load(path)
    assert [(e.file, e.line, e.key) for e in (err.value, *err.value.also)] == [
        (str(path), 10, "cluster.sbatch.time"), (str(path), 11, "cluster.sbatch.j")]
    path.write_text(SPEC.replace("  sbatch: {mail-type: END}\n", block.replace("    time: 10\n    j: x\n", "")))
    opts = options(ablations.load(path))
    assert [(o.file, o.line, o.key) for o in map(opts.origin, ("sbatch.exclude", "sbatch.mem-per-gpu"))] == [
        (str(path), 8, "cluster.sbatch.exclude"), (str(path), 9, "cluster.sbatch.mem-per-gpu")]
    assert opts.origin("sbatch").line == 7


# A man page in miniature, as Debian installs sbatch's (roff, gzipped): option headings, and prose
# naming another command's option, which is no sbatch option to suggest.
MAN_PAGE = r"""\
.TH sbatch 1
.TP
\fB\-\-open\-mode\fR={append|truncate}
Open the output and error files in this mode; see \fB\-\-kill\-on\-bad\-exit\fR of srun.
.TP
\fB\-H, \-\-hold\fR
Submit the job held.
"""


@pytest.mark.skipif(shutil.which("man") is None, reason="no man command to find a man page with")
def test_a_misspelling_of_an_option_only_the_man_page_names_gets_a_hint(tmp_path, monkeypatch):
    """`sbatch --help` leaves out options sbatch takes (Slurm 22.05: open-mode, hint, prefer, ...),
    so `open_mode` got no did-you-mean: the man page's option headings are read too."""
    (tmp_path / "man1").mkdir()
    (tmp_path / "man1" / "sbatch.1.gz").write_bytes(gzip.compress(MAN_PAGE.encode()))
    monkeypatch.setenv("MANPATH", str(tmp_path))
    assert sbatch_check._man_options() == ["open-mode", "hold"]  # not srun's option its prose names
    said = sbatch_check._unknown("open_mode", sbatch_check._documented())
    assert said == "sbatch has no option --open_mode; did you mean 'open-mode'?"
    assert "kill-on-bad-exit" not in sbatch_check._documented()
    monkeypatch.setenv("MANPATH", str(tmp_path / "none"))  # no man page: none of its options, and no error
    assert sbatch_check._man_options() == []


def test_bad_spec_value_names_the_spec_line(tmp_path):
    path = tmp_path / "opts.yaml"
    path.write_text(SPEC.replace("gpus_per_node: 1", "gpus_per_node: two"))
    with pytest.raises(SuiteError) as err:  # when the spec is read, whatever the executor
        ablations.load(path)
    assert (err.value.file, err.value.line, err.value.key) == (str(path), 6, "cluster.gpus_per_node")
    assert "expected an integer" in str(err.value)


@pytest.mark.parametrize(("line", "says"), [
    ("gpus_per_node: true", "gpus_per_node: expected an integer, got true"),
    ("partition: [gpu]", "partition: expected a string or null, got [gpu]"),
    ("sbatch: [exclusive]", "sbatch: expected a mapping of sbatch parameters, got [exclusive]"),
    ("sbatch: {exclusive: false}", "sbatch.exclusive: an sbatch value is a string, a number, true (a bare flag) "
                                   "or null (unset what a lower layer set), got false"),
])
def test_a_cluster_value_in_an_error_is_spelt_as_yaml_writes_it(tmp_path, line, says):
    """true, [gpu]: what the file says, not Python's True or ['gpu']."""
    user = tmp_path / "cluster.yaml"
    user.write_text(line + "\n")
    with pytest.raises(SuiteError) as err:
        resolve_options(user=user)
    assert str(err.value).endswith(says)


@pytest.mark.parametrize(("cli", "message"), [
    ({"tasks_per_node": 0}, "--tasks-per-node: must be at least 1, got 0"),
    ({"sbatch": ["time=10"]}, "sbatch parameter 'time' cannot be set here: use the 'timeout_min' option"),
    ({"sbatch": ["array=0-3"]}, "the dispatcher sets it"),
    ({"timeout_min": 2}, "signal_delay_s=120 (the default) plus the 60 s by which SLURM may signal early must be "
                         "shorter than the time limit, timeout_min=2 (--timeout-min), i.e. 120 s"),
    ({"timeout_min": 2, "signal_delay_s": 60}, "plus the 60 s by which SLURM may signal early"),  # 60 + 60 = 120
    ({"sbatch": ["=x"]}, "--sbatch: an sbatch parameter needs a name"),
    ({"mem_gb": float("nan")}, "--mem-gb: must be a finite number, got nan"),
    ({"mem_gb": float("inf")}, "--mem-gb: must be a finite number, got inf"),
    ({"partition": " "}, "--partition: must not be empty"),
    ({"sbatch": ["ntasks=2"]}, "sbatch parameter 'ntasks' cannot be set here: use the 'tasks_per_node' option"),
    ({"sbatch": ["mail-type=END", "mail_type=FAIL"]}, "sbatch parameter 'mail-type' is given twice"),
    ({"sbatch": ["exclude=a", "exclude=b"]}, "--sbatch.exclude: given twice, as 'exclude=a' and 'exclude=b'"),
    # a key is passed as --KEY: one letter is a prefix of sbatch's long options, never its short option
    ({"sbatch": ["p=gpu"]}, "sbatch parameter 'p' is one letter: sbatch would read it as --p, not -p; -p is "
                            "--partition, which cannot be set here: use the 'partition' option"),
    ({"sbatch": ["A=lab"]}, "-A is --account, which cannot be set here: use the 'account' option"),
    ({"sbatch": ["G=1"]}, "--sbatch.G: sbatch parameter 'G' is one letter: sbatch would read it as --G, not -G; "
                          "write 'gpus' (-G is --gpus)"),
    ({"sbatch": ["-x=node7"]}, "write 'exclude' (-x is --exclude)"),
    ({"sbatch": ["j=mine"]}, "sbatch parameter 'j' is one letter: sbatch would read it as --j, not -j, a prefix of "
                             "its long options: here --job-name, which cannot be set here: the dispatcher sets it"),
    ({"sbatch": ["u=x"]}, "a prefix of its long options; write the long option's name"),
    ({"setup": ["module load cuda", " "]}, "--setup: a setup line must not be empty"),
    # sbatch takes unambiguous prefixes of long options, so an abbreviation of an owned one is refused
    ({"sbatch": ["part=gpu"]}, "sbatch parameter 'part' (it abbreviates --partition) "
                               "cannot be set here: use the 'partition' option"),
    ({"sbatch": ["--cpus-per=4"]}, "sbatch parameter 'cpus-per' (it abbreviates --cpus-per-task)"),
    ({"sbatch": ["job=x"]}, "(it abbreviates --job-name) cannot be set here: the dispatcher sets it"),
])
def test_bad_command_line_values(spec, cli, message):
    with pytest.raises(SuiteError, match=message.replace("(", r"\(").replace(")", r"\)")):
        options(spec, cli)


def test_more_processes_than_gpus_a_node_is_refused_before_submitting(spec):
    with pytest.raises(SuiteError) as err:  # two DDP processes on one GPU: NCCL would refuse at start
        options(spec, {"tasks_per_node": 2})
    assert err.value.key == "tasks_per_node"
    assert (f"tasks_per_node=2 (--tasks-per-node) is more than gpus_per_node=1 ({spec.path}:6): "
            "DDP runs one process per GPU") in str(err.value)
    assert options(spec, {"tasks_per_node": 2, "gpus_per_node": 2}).tasks_per_node == 2
    with pytest.raises(SuiteError) as err:  # with a time limit too short for the signal delay: both said at once
        options(spec, {"tasks_per_node": 2, "timeout_min": 2})
    assert [e.key for e in (err.value, *err.value.also)] == ["signal_delay_s", "tasks_per_node"]
    assert options(spec, {"tasks_per_node": 2, "gpus_per_node": 0}).tasks_per_node == 2  # CPU DDP (gloo)


def test_cpus_per_task_beside_cpus_per_gpu_is_refused_naming_both_before_submitting(tmp_path, spec):
    """sbatch refuses the two together only when it submits ("--cpus-per-gpu is mutually exclusive
    with --cpus-per-task"; `--usage` does not judge it), so the submission was withdrawn with its
    words; both are now named when the options are read, wherever each was set."""
    user = tmp_path / "cluster.yaml"
    user.write_text("cpus_per_task: 4\n")
    with pytest.raises(SuiteError) as err:
        options(spec, {"sbatch": ["cpus-per-gpu=2"]}, user=user)
    assert str(err.value) == (
        "<command line>: --sbatch.cpus-per-gpu: cpus-per-gpu=2 cannot be given beside cpus_per_task=4 "
        f"({user}:1): sbatch takes one or the other (\"--cpus-per-gpu is mutually exclusive with "
        "--cpus-per-task\") and would refuse the submission; drop one of them")
    with pytest.raises(SuiteError, match=r"--sbatch.cpus-per-gpu: cpus-per-gpu=1 cannot be given beside cpus_per_task=2 "
                                         r"\(--cpus-per-task\)"):
        options(spec, {"cpus_per_task": 2, "sbatch": ["cpus_per_gpu=1"]})
    assert options(spec, {"sbatch": ["cpus-per-gpu=2"]}).sbatch["cpus-per-gpu"] == "2"  # alone: taken


def test_gpus_per_socket_without_sockets_per_node_is_refused_before_submitting(spec):
    """sbatch parses `--gpus-per-socket=1` alone (`--usage` passes) and refuses it only when it
    submits ("--gpus-per-socket option requires --sockets-per-node specification")."""
    with pytest.raises(SuiteError) as err:
        options(spec, {"sbatch": ["gpus-per-socket=1"]})
    assert str(err.value) == (
        "<command line>: --sbatch.gpus-per-socket: gpus-per-socket=1 needs sockets-per-node beside it (e.g. `--sbatch "
        "sockets-per-node=1`): sbatch refuses it alone (\"--gpus-per-socket option requires --sockets-per-node "
        "specification\") and would refuse the submission")
    assert options(spec, {"sbatch": ["gpus-per-socket=1", "sockets-per-node=1"]}).sbatch["gpus-per-socket"] == "1"


@pytest.mark.parametrize(("where", "value", "says"), [
    ("spec", "-1", "cluster.mem_gb: must be at least 0.001, got -1"),  # as written: not -1.0
    ("spec", "-1.0", "cluster.mem_gb: must be at least 0.001, got -1.0"),
    ("spec", "0", "cluster.mem_gb: must be at least 0.001, got 0"),
    ("command line", "-1", "--mem-gb: must be at least 0.001, got -1"),
    ("command line", "0", "--mem-gb: must be at least 0.001, got 0"),
    ("command line", "0.0", "--mem-gb: must be at least 0.001, got 0.0"),
])
def test_a_cluster_range_error_echoes_the_value_as_written(tmp_path, capsys, where, value, says):
    path = tmp_path / "opts.yaml"
    path.write_text(SPEC.replace("gpus_per_node: 1", f"mem_gb: {value}" if where == "spec" else "gpus_per_node: 1"))
    flags = ["--executor", "slurm", "--mem-gb", value] if where == "command line" else []
    assert main(["run", str(path), "--dry-run", "--out", str(tmp_path / "out"), *flags]) == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(says)


def test_a_bad_setup_line_is_named_by_its_position(tmp_path):
    path = tmp_path / "opts.yaml"
    path.write_text(SPEC.replace("  partition: gpu", "  partition: gpu\n  setup: [module load cuda, 2]"))
    with pytest.raises(SuiteError) as err:
        ablations.load(path)
    assert err.value.key == "cluster.setup" and "item 1 (2): expected a string" in str(err.value)


def test_cli_reports_a_spec_typo_before_anything_is_submitted(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SUITE_CLUSTER", "")
    path = tmp_path / "opts.yaml"
    path.write_text(SPEC.replace("  gpus_per_node", "  gpu_per_node"))
    assert main(["run", str(path), "--executor", "slurm", "--out", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert f"{path}:6: cluster.gpu_per_node: unknown cluster option 'gpu_per_node'; did you mean 'gpus_per_node'" in err
    assert not (tmp_path / "store").exists()


def test_a_time_limit_too_short_names_where_each_value_came_from(tmp_path):
    path = tmp_path / "opts.yaml"
    path.write_text(SPEC.replace("  partition: gpu", "  partition: gpu\n  timeout_min: 2"))
    with pytest.raises(SuiteError) as err:
        options(ablations.load(path), {"signal_delay_s": 90})
    assert f"signal_delay_s=90 (--signal-delay-s) plus the 60 s by which SLURM may signal early must be shorter " \
           f"than the time limit, timeout_min=2 ({path}:6)" in str(err.value)
    assert "give timeout_min 3 or more, or a smaller signal_delay_s" in str(err.value)  # 90 + 60 < 60 * 3
    with pytest.raises(SuiteError, match="give timeout_min 4 or more"):  # the defaults' 120 + 60 s is 180 s, not < 180
        options(ablations.load(path), {"timeout_min": 3})
    assert options(ablations.load(path), {"timeout_min": 4}).timeout_min == 4
    assert options(ablations.load(path), {"signal_delay_s": 59}).signal_delay_s == 59  # 59 + 60 < 60 * 2


def test_a_spec_cluster_section_is_checked_when_the_spec_is_read(tmp_path):
    path = tmp_path / "opts.yaml"
    path.write_text(SPEC.replace("  partition: gpu", "  partiton: gpu"))
    with pytest.raises(SuiteError) as err:
        ablations.load(path)
    assert (err.value.file, err.value.line) == (str(path), 5) and "did you mean 'partition'" in str(err.value)
    # a time limit the section's own signal delay cannot fit: `suite specs` says so, not only `suite run`
    path.write_text(SPEC + "  timeout_min: 2\n  signal_delay_s: 100\n")
    with pytest.raises(SuiteError) as err:
        ablations.load(path)
    assert err.value.key == "signal_delay_s" and f"signal_delay_s=100 ({path}:9)" in str(err.value)
    assert f"timeout_min=2 ({path}:8)" in str(err.value)
    path.write_text(SPEC + "  timeout_min: 2\n")  # other layers may set a shorter delay: checked when run
    ablations.load(path)


def test_every_mistake_of_a_spec_cluster_section_is_named_at_once(tmp_path, capsys):
    """Not one per try: fixing `partiton` must not reveal `timeout_min: ten` only on the next run."""
    path = tmp_path / "opts.yaml"
    path.write_text(SPEC.replace("  partition: gpu", "  partiton: gpu\n  timeout_min: ten")
                    .replace("sbatch: {mail-type: END}", "sbatch: {time: 10, mail-type: END, exclusive: false}")
                    + "presets: {fast: {iteration: 1}}\n")
    with pytest.raises(SuiteError) as err:
        ablations.load(path)
    found = [err.value, *err.value.also]
    assert [(e.file, e.line, e.key) for e in found] == [
        (str(path), 5, "cluster.partiton"), (str(path), 6, "cluster.timeout_min"),
        (str(path), 8, "cluster.sbatch.time"), (str(path), 8, "cluster.sbatch.exclusive"),
        (str(path), 9, "presets.fast.iteration")]  # and the presets' mistakes in the same pass
    assert main(["specs", str(path)]) == 2
    out = capsys.readouterr().out
    assert f"and {path}:6: cluster.timeout_min: expected an integer, got ten" in out
    assert f"and {path}:8: cluster.sbatch.time: sbatch parameter 'time' cannot be set here" in out


def test_every_cluster_layers_mistakes_are_named_at_once(tmp_path, spec):
    user = tmp_path / "cluster.yaml"
    user.write_text("accout: lab\nnodes: 0\n")
    with pytest.raises(SuiteError) as err:
        options(spec, {"gpus_per_node": -1, "sbatch": ["array=1"]}, user)
    said = str(err.value).splitlines()
    assert said[0].startswith(f"{user}:1: accout: unknown cluster option 'accout'; did you mean 'account'?")
    assert said[1:] == [f"  and {user}:2: nodes: must be at least 1, got 0",
                        "  and <command line>: --gpus-per-node: must be at least 0, got -1",
                        "  and <command line>: --sbatch.array: sbatch parameter 'array' cannot be set here: "
                        "the dispatcher sets it"]


def test_a_repeated_sbatch_flag_is_named_with_the_other_flags_mistakes(spec):
    """It stopped the check, so the mistakes after it were found only on the next try."""
    with pytest.raises(SuiteError) as err:
        options(spec, {"nodes": 0, "sbatch": ["hold", "exclude=a", "hold", "exclude=b", "array=1"]})
    assert [e.key for e in (err.value, *err.value.also)] == ["--nodes", "--sbatch.hold", "--sbatch.exclude",
                                                              "--sbatch.array"]
    assert "--sbatch.exclude: given twice, as 'exclude=a' and 'exclude=b': give it once" in str(err.value)
    assert {e.file for e in (err.value, *err.value.also)} == {"<command line>"}  # the repeats too: said where


def test_real_sbatch_options_that_begin_like_owned_ones_pass(spec):
    got = options(spec, {"sbatch": ["gpus=2", "time-min=30", "mem-per-cpu=1G", "nodelist=n1", "exclusive=true"]})
    assert got.sbatch == {"mail-type": "END", "gpus": "2", "time-min": "30", "mem-per-cpu": "1G", "nodelist": "n1",
                          "exclusive": "true"}


def test_sbatch_values_from_the_command_line_stay_as_typed(spec):
    got = options(spec, {"sbatch": ["comment=007", "mail-user=no", "exclude=[a", "wckey="]})
    assert got.sbatch == {"mail-type": "END", "comment": "007", "mail-user": "no", "exclude": "[a", "wckey": ""}


def test_cluster_flags_without_the_slurm_executor_are_refused(tmp_path, capsys):
    path = tmp_path / "opts.yaml"
    path.write_text(SPEC)
    assert main(["run", str(path), "--out", str(tmp_path / "store"), "--partition", "gpu"]) == 2
    assert "--partition is a SLURM option: add --executor slurm" in capsys.readouterr().err
    assert main(["run", str(path), "--out", str(tmp_path / "store"), "--executor", "slurm", "--max-parallel", "2"]) == 2
    assert "--max-parallel is for local runs; on SLURM use --array-parallelism" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_one_submission_at_a_time_per_store(tmp_path, capsys):
    """A second `suite run --executor slurm` on the store waits for the first (and then sees its
    runs pending) instead of submitting them again."""
    import subprocess
    import sys

    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", f"""
import time, pathlib
from suite.dispatch.slurm import submission_lock
with submission_lock(pathlib.Path({str(tmp_path / 'store')!r})):
    pathlib.Path({str(ready)!r}).touch()
    time.sleep(60)
"""])
    try:
        while not ready.exists():
            assert holder.poll() is None, "the lock holder died"
        with pytest.raises(SuiteError, match="another `suite run` has been submitting to this store"):
            with slurm.submission_lock(tmp_path / "store", timeout_s=0.5):
                pass
        assert "waiting for another `suite run` submitting to this store" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    with slurm.submission_lock(tmp_path / "store", timeout_s=5):  # free again once the holder is gone
        pass
    assert capsys.readouterr().err == ""  # no wait, nothing said


def test_dry_run_prints_the_options(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SUITE_CLUSTER", "")
    path = tmp_path / "opts.yaml"
    path.write_text(SPEC)
    assert main(["run", str(path), "--executor", "slurm", "--dry-run", "--out", str(tmp_path / "s"),
                 "--timeout-min", "30"]) == 0
    printed = capsys.readouterr().out
    assert "2 of 2 runs would start" in printed
    # each value with the layer that set it: the spec's file and line, or the flag
    assert (f"cluster options: partition='gpu' ({path}:5), timeout_min=30 (--timeout-min), "
            f"gpus_per_node=1 ({path}:6), sbatch.mail-type='END' ({path}:7)") in printed


@pytest.mark.parametrize("parallelism, says", [
    ("4", "would be submitted as 3 job arrays of up to 2 runs, at most 4 running at once"),
    ("2", "note: a real submission would be refused: array_parallelism: 2 is below the 3 job arrays these 5 runs"),
])
def test_a_dry_run_says_how_a_large_grid_would_be_split_and_throttled(tmp_path, capsys, monkeypatch, parallelism, says):
    monkeypatch.setenv("SUITE_CLUSTER", "")
    path = tmp_path / "opts.yaml"
    path.write_text(SPEC.replace("[0.01, 0.02]", "[0.01, 0.02, 0.03, 0.04, 0.05]"))
    assert main(["run", str(path), "--executor", "slurm", "--dry-run", "--out", str(tmp_path / "s"),
                 "--max-array-size", "2", "--array-parallelism", parallelism]) == 0
    assert says in capsys.readouterr().out and not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------------- snapshot
def test_snapshot_is_named_by_content_and_copied_once(tmp_path, monkeypatch):
    src = tmp_path / "src" / "suite"
    shutil.copytree(snapshot.package_dir(), src, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(snapshot, "package_dir", lambda: src)
    first = snapshot.take(tmp_path / "store")
    assert (first.path / "suite" / "execute.py").read_bytes() == (src / "execute.py").read_bytes()
    assert (first.git_commit, first.git_dirty) == (None, None)  # tmp_path is no git checkout
    assert snapshot.take(tmp_path / "store") == first
    (src / "execute.py").write_text((src / "execute.py").read_text() + "\n# edited\n")
    second = snapshot.take(tmp_path / "store")
    assert second.digest != first.digest and "# edited" not in (first.path / "suite" / "execute.py").read_text()
    assert sorted(p.name for p in (tmp_path / "store" / "code").iterdir()) == sorted([first.digest, second.digest])


def test_local_and_slurm_runs_record_one_dirty_flag(tmp_path, monkeypatch):
    """A new file in the package is imported (and copied into a snapshot): dirty for both, where a
    local run's record used to ignore it."""
    from suite.measure import env

    package = tmp_path / "checkout" / "suite"
    package.mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    git = ["git", "-C", str(package.parent), "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "c"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    monkeypatch.delenv("SUITE_GIT_COMMIT", raising=False)
    monkeypatch.setattr(suite, "PACKAGE_DIR", package)
    commit, dirty = snapshot.git_state(package)
    assert len(commit) == 40 and dirty is False and env.code_version()["git_dirty"] is False
    (package / "b.py").write_text("y = 2\n")
    assert snapshot.git_state(package) == (commit, True) and env.code_version()["git_dirty"] is True


@pytest.mark.parametrize("dirty", [False, True])
def test_a_slurm_job_records_its_snapshots_commit_and_dirty_flag(tmp_path, monkeypatch, dirty):
    """A job runs a snapshot, no git checkout: what it records is the commit job_environment exports,
    not that of a checkout the snapshot's store may lie in (here: the suite's own)."""
    from suite.measure import env

    snap = snapshot.Snapshot(tmp_path / "code" / "abc", "abc", "f" * 40, dirty)
    exported = dict(line.removeprefix("export ").split("=", 1) for line in slurm.job_environment(snap)
                    if line.startswith("export SUITE_GIT_"))
    for key, value in exported.items():
        monkeypatch.setenv(key, value)
    assert env.code_version() | {"suite_version": None} == {"suite_version": None, "git_commit": "f" * 40,
                                                            "git_dirty": dirty}


def test_snapshot_records_the_git_commit_of_a_checkout(tmp_path):
    snap = snapshot.take(tmp_path)
    if snap.git_commit is None:
        pytest.skip("the package is not a git checkout here")
    assert len(snap.git_commit) == 40 and isinstance(snap.git_dirty, bool)
    assert store.read_json(snap.path / "snapshot.json")["git_commit"] == snap.git_commit


@pytest.mark.skipif(shutil.which("srun") is None, reason="submitit's SlurmExecutor needs srun on PATH")
def test_sbatch_script_carries_the_options_and_imports_the_snapshot(tmp_path):
    snap = snapshot.Snapshot(tmp_path / "code" / "abc", "abc", "f" * 40, True)
    opts = ClusterOptions(partition="gpu", gpus_per_node=2, tasks_per_node=2, cpus_per_task=4, mem_gb=2,
                          sbatch={"exclude": "node7"}, setup=["module load cuda"], array_parallelism=8,
                          signal_delay_s=300)
    executor = slurm.make_executor(tmp_path, opts, snap, name="opts")
    executor.parameters["map_count"] = 20  # what submitit sets for an array of 20
    text = executor._make_submission_file_text("CMD", "uid")
    for line in ("--array=0-19%8", "--partition=gpu", "--gpus-per-node=2", "--ntasks-per-node=2",
                 "--cpus-per-task=4", "--mem=2048M", "--exclude=node7", "--hold", "--signal=USR2@300",
                 "--job-name=suite-opts", "--time=60"):
        assert f"#SBATCH {line}\n" in text, line
    setup = text.index("module load cuda")
    assert setup < text.index(f"export PYTHONPATH={tmp_path}/code/abc") < text.index("srun")
    assert "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}" in text  # one torch thread per allotted CPU
    assert "export PYTHONSAFEPATH=1" in text and f"export SUITE_GIT_COMMIT={'f' * 40}" in text
    assert "export SUITE_GIT_DIRTY=1" in text
    assert "--kill-on-bad-exit=1" in text[text.index("srun"):]  # a failed DDP rank ends the step
    # memory rounds up to whole MiB: 0.0015 GB is 1.536 MiB, and 1 MiB would be less than asked for
    assert slurm.make_executor(tmp_path, ClusterOptions(mem_gb=0.0015), snap, name="m").parameters["mem"] == "2M"
    # submitit's own handler (a signal while the job imports) stops requeuing after max_num_timeout: ours, not its 3
    assert slurm.make_executor(tmp_path, ClusterOptions(max_requeues=5), snap, name="m").max_num_timeout == 5


# ------------------------------------------------------------------------------------ refresh
def job_run(tmp_path, monkeypatch, stored: str, slurm_state: str, stderr: str, stdout: str = ""):
    """A run the store has as `stored` under job 7_0, whose logs hold `stderr` and `stdout`, and
    which SLURM (faked) has in `slurm_state`: (out, run, run directory)."""
    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    run = ablations.expand(ablations.load(spec_path))[0]
    out = tmp_path / "store"
    d = store.plan(out, run)
    log = tmp_path / "7_0_0_log.err"
    log.write_text(stderr)
    log.with_suffix(".out").write_text(stdout)
    store.set_status(d, stored, slurm_job_id="7_0", slurm_log=str(log), host="elsewhere", pid=1)
    monkeypatch.setattr(slurm, "slurm_states", lambda ids: dict.fromkeys(ids, slurm_state))
    return out, run, d


@pytest.mark.parametrize(("slurm_state", "stored", "state"), [
    ("OUT_OF_MEMORY", "running", "failed"),
    ("TIMEOUT", "running", "failed"),
    ("CANCELLED", "pending", "cancelled"),
    ("PREEMPTED", "running", "interrupted"),
    ("PENDING", "interrupted", "interrupted"),  # a live job owns its directory: nothing is written
    ("RUNNING", "running", "running"),
    ("UNKNOWN", "pending", "pending"),  # sacct does not know (yet): nothing is decided
])
def test_refresh_records_jobs_that_ended_without_a_result(tmp_path, monkeypatch, slurm_state, stored, state):
    out, run, d = job_run(tmp_path, monkeypatch, stored, slurm_state, "".join(f"line {i}\n" for i in range(100))
                          + "slurmstepd: error: Detected 1 oom_kill event\n")
    assert slurm.refresh(out, [run.run_id]) == {run.run_id: slurm_state}
    assert store.state_of(d).state == state
    assert (d / "error.txt").exists() == (state == "failed")  # a log tail explains a failure, not a cancel
    if state == "failed":
        assert f"SLURM job 7_0 ended {slurm_state} without a result" in store.state_of(d).note
        # the same limit would end it the same way: the user is told what to change
        assert ("submit it again with a longer timeout_min" in store.state_of(d).note) == (slurm_state == "TIMEOUT")
        error = (d / "error.txt").read_text().splitlines()
        assert len(error) == 50 and error[-1].endswith("oom_kill event")


def test_a_job_of_a_run_another_process_executes_neither_fails_it_nor_is_blamed(tmp_path, monkeypatch):
    """A second job of one run (submitted while the first's status was unreadable) finds the run's
    lock held: it exits writing nothing, and following SLURM leaves the run to the process that
    holds the lock, though the job it records ended without a result."""
    out, run, d = job_run(tmp_path, monkeypatch, "pending", "COMPLETED", "")
    before = (d / "status.json").read_text()
    task = slurm.SlurmRun(run, str(out), code=str(snapshot.loaded_from()), max_requeues=1)
    handler = signal.getsignal(signal.SIGUSR2)  # the task installs its own, as in a job
    with store.run_lock(d):
        try:
            assert task() is None and (d / "status.json").read_text() == before
        finally:
            signal.signal(signal.SIGUSR2, handler)
        slurm.refresh(out, [run.run_id])
        assert (d / "status.json").read_text() == before
    slurm.refresh(out, [run.run_id])  # nobody executes it: the job ended without a result
    assert store.state_of(d).state == "failed" and "ended COMPLETED without a result" in store.state_of(d).note


def test_a_job_that_printed_only_to_stdout_leaves_that_as_its_error(tmp_path, monkeypatch):
    """A failing `setup` line (`module load`) may print to the job's stdout only."""
    out, run, d = job_run(tmp_path, monkeypatch, "running", "FAILED", "",
                          "Lmod has detected the following error: unknown module cuda/99\n")
    slurm.refresh(out, [run.run_id])
    assert "unknown module cuda/99" in (d / "error.txt").read_text()


def test_run_skips_runs_whose_job_is_alive_whatever_their_directory_says(tmp_path, monkeypatch, capsys):
    """A process killed while SLURM requeues its task leaves `interrupted` behind (its pid is gone)."""
    monkeypatch.setenv("SUITE_CLUSTER", "")
    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    first, second = ablations.expand(ablations.load(spec_path))
    out = tmp_path / "store"
    store.set_status(store.plan(out, first), "interrupted", slurm_job_id="7_0")
    monkeypatch.setattr(slurm, "slurm_states", lambda ids: dict.fromkeys(ids, "REQUEUED"))
    assert main(["run", str(spec_path), "--dry-run", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"skip {first.run_id} interrupted" in printed and f"run  {second.run_id} missing" in printed
    assert "1 of 2 runs would start" in printed


def test_the_resubmit_hint_keeps_the_flags_and_follows_a_moved_store(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SUITE_CLUSTER", "")
    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    out = tmp_path / "copy"
    recorded = f"suite run {spec_path} --out /elsewhere/store --executor slurm --qos high --retry-failed"
    for run in ablations.expand(ablations.load(spec_path)):
        store.set_status(store.plan(out, run), "cancelled", slurm_job_id="7_0", again=recorded)
    assert main(["run", str(spec_path), "--executor", "slurm", "--out", str(out)]) == 0
    assert f"suite run {spec_path} --out {out} --executor slurm --qos high --retry-failed" in capsys.readouterr().out


def test_runs_submitted_by_different_commands_are_resubmitted_with_the_latest_flags(tmp_path, monkeypatch, capsys):
    """The hint fell back to this command line's flags (none for `cancel`/`status`): a GPU run would
    have been resubmitted without its GPUs."""
    monkeypatch.setenv("SUITE_CLUSTER", "")
    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    out = tmp_path / "store"
    first, second = ablations.expand(ablations.load(spec_path))
    for run, flags, when in ((first, "--partition gpu --gpus-per-node 2", "2026-01-02T00:00:00+00:00"),
                             (second, "--partition a --timeout-min 5", "2026-01-01T00:00:00+00:00")):  # latest first
        store.set_status(store.plan(out, run), "cancelled", slurm_job_id="7_0", submitted_at=when,
                         again=f"suite run /elsewhere/other.yaml --out {out} --executor slurm {flags} --retry-failed")
    assert main(["status", str(spec_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"rerun the 2 failed or cancelled: suite run {spec_path} --out {out} --executor slurm --partition gpu " \
           "--gpus-per-node 2 --retry-failed (with the cluster flags of their latest submission; they were " \
           "submitted with different ones)" in printed


def test_status_says_what_to_do_about_jobs_slurm_has_no_record_of(tmp_path, monkeypatch, capsys):
    out, _, _ = job_run(tmp_path, monkeypatch, "pending", "UNKNOWN", "")
    assert main(["status", str(tmp_path / "opts.yaml"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "slurm: 1 UNKNOWN (jobs 7)" in printed and "SLURM has no record of 1 job" in printed


def test_status_tells_a_hold_that_was_asked_for_from_one_a_stopped_submission_left(tmp_path, monkeypatch, capsys):
    """A submission killed before it released its jobs leaves them JobHeldUser: `suite status` called
    that a hold asked for (`--sbatch hold`), and did not say how to get the runs going."""
    monkeypatch.setenv("SUITE_CLUSTER", "")
    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    asked, left = ablations.expand(ablations.load(spec_path))
    out = tmp_path / "store"
    for run, job, hold in ((asked, "7_0", True), (left, "8_0", False)):
        store.set_status(store.plan(out, run), "pending", slurm_job_id=job, sbatch_hold=hold, submitted_at=store.now(),
                         executor="slurm")
    monkeypatch.setattr(slurm, "slurm_states", lambda ids: dict.fromkeys(ids, "PENDING"))
    monkeypatch.setattr(slurm, "pending_reasons", lambda ids: dict.fromkeys(ids, "JobHeldUser"))
    assert main(["status", str(spec_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held as asked (sbatch hold): `scontrol release 7` lets them start\n" in printed
    assert "held, though no hold was asked (a submission stopped before it released them, or `scontrol hold`): " \
           f"`scontrol release 8` lets them start; or `suite cancel {spec_path} --out {out}` cancels the queued runs " \
           "and prints the command that submits them again" in printed
    names.claim(out, ablations.load(spec_path))  # as `suite run` records the file a name stands for
    assert main(["status", "--out", str(out)]) == 0  # the whole store lists the spec by name: its file is named
    assert f"`scontrol release 8` lets them start; or `suite cancel {spec_path} --out {out}` cancels" \
        in capsys.readouterr().out


def test_a_signal_during_imports_counts_as_a_requeue_and_the_cap_holds(tmp_path):
    """submitit's own hook (`checkpoint`) runs when USR2 comes before the run replaced it: the
    requeue is counted like one from the training loop, and past max_requeues the run fails."""
    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    run = ablations.expand(ablations.load(spec_path))[0]
    d = store.plan(tmp_path, run)
    task = slurm.SlurmRun(run, str(tmp_path), code=str(tmp_path / "code"), max_requeues=1)
    assert task.checkpoint().function is task  # submitit pickles this and requeues
    assert store.state_of(d).state == "pending"
    assert (store.state_of(d).status["requeues"], store.state_of(d).status["requeued_at_iteration"]) == (1, None)
    with pytest.raises(RuntimeError, match=r"before training after 1 requeue \(max_requeues=1\)"):
        task.checkpoint()
    assert store.state_of(d).state == "failed" and "max_requeues=1" in store.state_of(d).note


def test_a_local_attempt_is_not_judged_by_an_earlier_slurm_job(tmp_path, monkeypatch):
    """A run cancelled under SLURM and retried on this machine: following SLURM (`suite status`)
    while the local attempt trains must not mark it cancelled from the old job's end."""
    from suite import execute

    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    run = ablations.expand(ablations.load(spec_path))[0]
    d = store.plan(tmp_path, run)
    store.set_status(d, "cancelled", slurm_job_id="7_0", slurm_state="CANCELLED", error="cancelled")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setattr(slurm, "slurm_states", lambda ids: dict.fromkeys(ids, "CANCELLED"))
    seen = []

    def train(run, d, progress):
        slurm.refresh(tmp_path, [run.run_id])
        seen.append(store.state_of(d).state)
        return {"run_id": run.run_id, "metrics": {"top1_err": 1.0}}

    monkeypatch.setattr(execute, "_run", train)
    execute.execute(run, tmp_path)
    assert seen == ["running"] and store.state_of(d).state == "done"
    assert store.read_json(d / "status.json")["slurm_job_id"] is None


def test_a_job_measuring_a_done_run_again_that_dies_leaves_the_result_and_says_why(tmp_path, monkeypatch):
    """It stayed `running` in status.json forever, with no word in `suite status`."""
    out, run, d = job_run(tmp_path, monkeypatch, "running", "FAILED", "Killed\n")
    result = {"run_id": run.run_id, "metrics": {"top1_err": 12.5}}
    store.write_json(d / "result.json", result)  # done earlier; the job 7_0 was measuring it again
    store.set_status(d, "running", slurm_job_id="7_0", measuring_again="throughput")
    assert store.state_of(d).state == "done" and slurm.refresh(out, [run.run_id]) == {run.run_id: "FAILED"}
    state = store.state_of(d)
    assert state.state == "done" and state.result == result
    assert state.note.startswith("measuring it again stopped: SLURM job 7_0 ended FAILED; the earlier measurement stands")
    assert slurm.refresh(out, [run.run_id]) == {}  # settled: not followed any more


def test_a_job_that_dies_once_its_result_is_written_leaves_a_done_run_with_no_word_of_measuring(tmp_path, monkeypatch):
    """A training job whose status could not say done after its result (a full disk, a signal in
    that instant) was said to have stopped measuring again, which it never did."""
    out, run, d = job_run(tmp_path, monkeypatch, "running", "FAILED", "No space left on device\n")
    result = {"run_id": run.run_id, "metrics": {"top1_err": 12.5}}
    store.write_json(d / "result.json", result)
    assert slurm.refresh(out, [run.run_id]) == {run.run_id: "FAILED"}
    state = store.state_of(d)
    assert state.state == "done" and state.result == result and state.note == ""
    assert state.status["state"] == "done" and state.status["slurm_state"] == "FAILED"
    assert slurm.refresh(out, [run.run_id]) == {}


def test_refresh_leaves_finished_runs_alone(tmp_path, monkeypatch):
    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    run = ablations.expand(ablations.load(spec_path))[0]
    d = store.plan(tmp_path, run)
    store.set_status(d, "failed", slurm_job_id="7_0", error="Traceback: the real one")
    monkeypatch.setattr(slurm, "slurm_states", lambda ids: pytest.fail("no sacct call for settled runs"))
    assert slurm.refresh(tmp_path, [run.run_id]) == {}
    assert store.state_of(d).note == "Traceback: the real one"


def test_summary_lists_what_differs_from_the_defaults():
    assert cluster.summary(ClusterOptions()) == "defaults"
    assert cluster.summary(ClusterOptions(qos="high", max_requeues=1)) == "qos='high', max_requeues=1"


def test_summary_names_the_layer_of_each_sbatch_parameter(spec, tmp_path):
    user = tmp_path / "cluster.yaml"
    user.write_text("account: lab\nsbatch: {exclude: node7, mail-type: FAIL}\n")
    opts = options(spec, {"sbatch": ["comment=x"]}, user=user)
    assert cluster.summary(opts) == (
        f"partition='gpu' ({spec.path}:5), account='lab' ({user}:1), gpus_per_node=1 ({spec.path}:6), "
        f"sbatch.exclude='node7' ({user}:2), sbatch.mail-type='END' ({spec.path}:7), sbatch.comment='x' (--sbatch)")


def test_chunks_never_exceed_the_array_size():
    class Recorder:
        def __init__(self):
            self.calls = []

        def submit_array(self, tasks):
            self.calls.append(len(tasks))
            return [type("Job", (), {"job_id": f"{len(self.calls)}_{i}"})() for i in range(len(tasks))]

    executor = Recorder()
    jobs = slurm.submit_arrays(executor, [lambda: None] * 2501, 1000)
    assert executor.calls == [1000, 1000, 501] and len(jobs) == 2501


def test_array_parallelism_is_the_grids_not_each_arrays():
    """SLURM's `%N` throttles one array: a grid split into 3 arrays of `%5` ran 15 tasks at once."""
    class Recorder:
        def __init__(self):
            self.parallelism, self.calls = None, []

        def update_parameters(self, **kwargs):
            self.parallelism = kwargs.get("array_parallelism", self.parallelism)

        def submit_array(self, tasks):
            self.calls.append((len(tasks), self.parallelism))
            return [type("Job", (), {"job_id": f"{len(self.calls)}_{i}"})() for i in range(len(tasks))]

    executor = Recorder()
    jobs = slurm.submit_arrays(executor, [lambda: None] * 420, 150, slurm.array_shares([150, 150, 120], 5))
    assert executor.calls == [(150, 2), (150, 2), (120, 1)] and len(jobs) == 420


@pytest.mark.parametrize("lengths, parallelism, shares", [
    ([420], 256, [256]),  # one array: as before
    ([1000, 1000, 501], 256, [86, 85, 85]),
    ([1000, 1000, 8], 256, [124, 124, 8]),  # a short array's unused share goes to the others
    ([3, 2], 256, [3, 2]),
    ([150, 150, 120], 3, [1, 1, 1]),
])
def test_array_shares_add_up_to_the_parallelism_asked_for(lengths, parallelism, shares):
    assert slurm.array_shares(lengths, parallelism) == shares


def test_a_parallelism_below_the_number_of_arrays_is_refused_before_anything_is_submitted(tmp_path, monkeypatch):
    monkeypatch.setattr(slurm.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(slurm, "submit_arrays", lambda *a, **k: pytest.fail("submitted"))
    from suite.config import resolve

    runs = [ablations.RunSpec(spec="toy", point={}, seed=s, config=resolve(
        {"model.name": "resnet26", "data.name": "synthetic", "seed": s})) for s in range(5)]
    opts = ClusterOptions(max_array_size=2, array_parallelism=2)
    with pytest.raises(SuiteError, match=r"^array_parallelism: 2 is below the 3 job arrays these 5 runs are split into"):
        slurm.submit(runs, tmp_path / "store", opts, cluster=slurm.read_cluster())
    assert not (tmp_path / "store" / "runs").exists() and not (tmp_path / "store" / "code").exists()


def test_parse_cli_drops_unset_flags():
    assert parse_cli({"partition": None, "setup": None, "sbatch": None, "nodes": 2}) == {"nodes": 2}


def fake_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scripts: dict[str, str]) -> Path:
    """Shell scripts (name -> body) first on PATH, in place of SLURM's commands: what the test
    cluster's cannot be made to say (a controller down, another slurm.conf). Returns their folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


@pytest.mark.parametrize("down", ["squeue", "sacct"])
def test_no_job_counts_as_lost_while_slurm_does_not_answer(tmp_path, monkeypatch, down):
    """`squeue` exits 1 both for ids it does not know and when slurmctld is down: only the first is an answer."""
    scripts = {"squeue": "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1", "sacct": "exit 0"}
    scripts[down] = "echo 'error: Unable to contact slurm controller (connect failure)' >&2; exit 1"
    bin_dir = fake_commands(tmp_path, monkeypatch, scripts)
    assert slurm._lost(["7_0"]) == set()
    (bin_dir / down).write_text("#!/bin/sh\n" + ("exit 0" if down == "sacct" else
                                                 "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1")
                                + "\n")
    assert slurm._lost(["7_0"]) == {"7_0"}  # both answer: nobody knows it


def test_without_accounting_a_job_slurmctld_has_forgotten_is_lost(tmp_path, monkeypatch):
    """sacct exits 1 on a cluster without slurmdbd: that is no controller down, or a job killed
    there (out of memory, time limit) would stay running in the store, beyond --retry-failed and
    `suite cancel`."""
    fake_commands(tmp_path, monkeypatch, {
        "squeue": "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1",
        "sacct": "echo 'Slurm accounting storage is disabled' >&2; exit 1"})
    assert slurm.slurm_states(["7_0"]) == {"7_0": "UNKNOWN"}
    assert slurm._lost(["7_0"]) == {"7_0"}


def test_a_task_is_known_by_its_own_record_a_listed_range_or_its_whole_array(tmp_path, monkeypatch):
    """squeue lists pending tasks as ranges (`7_[1-3,5%2]`), an array never split up by its bare id;
    a form the parser does not read stands for its whole array, so none of its tasks is taken for lost."""
    outputs = {"squeue": "7_[1-3,5%2]\n8\n10_[1-3:2]", "sacct": "9_4\n9_4.batch"}
    fake_commands(tmp_path, monkeypatch, {name: f"cat <<'EOF'\n{text}\nEOF" for name, text in outputs.items()})
    ids = ["7_2", "7_4", "7_5", "8_0", "9_4", "9_5", "10_9", "11_0"]
    assert slurm._lost(ids) == {"7_4", "9_5", "11_0"}


@pytest.mark.parametrize(("submitted", "long_ago"), [("2020-01-01T00:00:00+00:00", True),
                                                     ("2020-01-01T00:00:00", True),  # no offset: read as UTC
                                                     ("yesterday", False), (None, False)])
def test_only_a_job_submitted_long_ago_can_count_as_lost(tmp_path, submitted, long_ago):
    d = tmp_path / "runs" / "x"
    d.mkdir(parents=True)
    store.set_status(d, "pending", submitted_at=submitted)
    assert slurm._submitted_long_ago(store.state_of(d).status) is long_ago
    for minutes, gone in ((0, False), (5, False), (11, True)):  # a grace of 10 min: the accounting may lag
        when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes)
        store.set_status(d, "pending", submitted_at=when.isoformat())
        assert slurm._submitted_long_ago(store.state_of(d).status) is gone, minutes


@pytest.mark.parametrize(("config", "submitted_by", "hidden"), [
    ("PrivateData             = jobs,usage\n", "alice", True), ("PrivateData = usage,jobs\n", "alice", True),
    ("PrivateData             = jobs\n", "root", False),  # this user's own: SLURM's silence says it is gone
    ("PrivateData             = none\n", "alice", False), ("PrivateData = usage\n", "alice", False),
    ("MaxJobCount = 10000\n", "alice", False)])  # none said: nothing hidden
def test_only_another_users_job_where_private_data_hides_jobs_is_hidden(config, submitted_by, hidden):
    assert visibility.hidden(submitted_by, visibility.hides_jobs(config), "root") is hidden


def lost_job_of(tmp_path, monkeypatch, private: str, **recorded):
    """A run recorded pending as job 7_0, submitted over LOST_AFTER_S ago, that squeue and sacct do
    not show, on a cluster whose `scontrol show config` says `PrivateData = private` (faked: the
    test cluster's slurm.conf cannot be changed under the other users of it). Returns (out, run
    directory, the file scontrol logs its calls to)."""
    out, run, d = job_run(tmp_path, monkeypatch, "pending", "UNKNOWN", "")
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=slurm.LOST_AFTER_S + 60)
    store.set_status(d, "pending", submitted_at=long_ago.isoformat(), **recorded)
    called = tmp_path / "scontrol.log"
    fake_commands(tmp_path, monkeypatch, {
        "squeue": "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1", "sacct": "exit 0",
        "scontrol": f"echo \"$*\" >> {called}; echo 'PrivateData             = {private}'"})
    return out, d, called


def test_status_of_a_teammates_store_never_judges_jobs_private_data_hides_lost(tmp_path, monkeypatch, capsys):
    """A store another user submitted to, read where PrivateData hides jobs: squeue and sacct say of
    their jobs what they say of lost ones, so `suite status` failed the runs after LOST_AFTER_S
    (recorded where the folder was writable), and `suite run --retry-failed` ran them again. It shows
    them unknown to this user and writes nothing, and `suite run` leaves them alone."""
    monkeypatch.setenv("SUITE_CLUSTER", "")
    out, d, _ = lost_job_of(tmp_path, monkeypatch, "jobs,usage", slurm_user="alice")
    before = (d / "status.json").read_bytes()
    assert slurm.refresh(out, [d.name]) == {d.name: slurm.HIDDEN}
    assert main(["status", str(tmp_path / "opts.yaml"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 pending" in printed and "slurm: 1 HIDDEN (jobs 7)" in printed, printed
    assert "unknown to this user (PrivateData): 1 job submitted by alice: this cluster hides other users' jobs " \
           "from you" in printed and "`suite status` run by alice follows them" in printed
    assert "SLURM has no record" not in printed and (d / "status.json").read_bytes() == before
    assert main(["run", str(tmp_path / "opts.yaml"), "--dry-run", "--retry-failed", "--out", str(out)]) == 0
    assert "1 of 2 runs would start" in capsys.readouterr().out  # its job may live: not run again


@pytest.mark.parametrize(("private", "recorded"), [("none", {"slurm_user": "alice"}),  # others' jobs are shown
                                                   ("jobs", {})])  # this user's own (its status.json's owner)
def test_a_job_slurm_would_show_this_user_is_still_judged_lost(tmp_path, monkeypatch, private, recorded):
    out, d, called = lost_job_of(tmp_path, monkeypatch, private, **recorded)
    assert slurm.refresh(out, [d.name]) == {d.name: "UNKNOWN"}
    assert store.state_of(d).state == "failed" and "SLURM has no record of job 7_0" in store.state_of(d).note
    assert called.exists() == bool(recorded)  # scontrol asked only about another user's job


def test_another_users_job_is_not_judged_while_scontrol_cannot_say_what_private_data_hides(tmp_path, monkeypatch):
    out, d, _ = lost_job_of(tmp_path, monkeypatch, "jobs", slurm_user="alice")
    (tmp_path / "down").mkdir()
    fake_commands(tmp_path / "down", monkeypatch, {"scontrol": "echo 'Unable to contact slurm controller' >&2; exit 1"})
    before = (d / "status.json").read_bytes()
    assert slurm.refresh(out, [d.name]) == {d.name: slurm.NO_ANSWER}
    assert (d / "status.json").read_bytes() == before


def test_status_asks_scontrol_for_the_clusters_config_once_for_its_name_and_its_private_data(tmp_path, monkeypatch):
    """A teammate's run whose submission recorded its cluster, where PrivateData hides jobs: each
    refresh ran `scontrol show config` twice, for the cluster's name (`_elsewhere`) and again for
    PrivateData (`_unseen`); the one answer serves both."""
    out, d, called = lost_job_of(tmp_path, monkeypatch, "jobs", slurm_user="alice", slurm_cluster="here")
    assert slurm.refresh(out, [d.name]) == {d.name: slurm.HIDDEN}
    assert called.read_text().splitlines() == ["show config"]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_record_from_before_the_submitter_was_recorded_is_the_submission_of_its_owner(tmp_path, monkeypatch):
    """Records written before the suite recorded `slurm_user`: while the job is queued or running
    only its submitter and the job (as the submitter) write status.json, so its owner submitted it."""
    out, d, _ = lost_job_of(tmp_path, monkeypatch, "jobs")
    os.chown(d / "status.json", 54321, 54321)  # a user with no passwd entry: named by number
    assert visibility.submitter(d, store.state_of(d).status) == "54321"
    assert slurm.refresh(out, [d.name]) == {d.name: slurm.HIDDEN}
    assert store.state_of(d).state == "pending"


def test_a_withdrawn_submission_puts_back_what_force_archived_and_the_status_it_found(tmp_path):
    """A done run with no status.json (a result alone makes it done): after the withdrawal its
    result is back and the submission's `pending` status is gone, so nothing follows a dead job."""
    from suite.dispatch.plan import start_afresh

    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    run = ablations.expand(ablations.load(spec_path))[0]
    d = store.plan(tmp_path, run)
    store.write_json(d / "result.json", {"run_id": run.run_id, "metrics": {"top1_err": 1.0}})
    archived: dict = {}
    start_afresh([run], tmp_path, archived)
    assert store.state_of(d).state == "missing" and set(archived) == {d}
    store.set_status(d, "pending", slurm_job_id="7_0")
    slurm._restore(d, "7_0", None, archived[d])
    assert store.state_of(d).state == "done" and not (d / "status.json").exists() and not (d / "archive").exists()
    store.set_status(d, "failed", error="earlier")
    saved = (d / "status.json").read_bytes()
    store.set_status(d, "pending", slurm_job_id="7_1")
    slurm._restore(d, "7_1", saved, None)
    assert (d / "status.json").read_bytes() == saved
    store.set_status(d, "pending", slurm_job_id="7_2")
    store.set_status(d, "running", pid=os.getpid(), slurm_job_id=None)  # a local run took it since
    slurm._restore(d, "7_2", saved, None)
    assert store.state_of(d).status["state"] == "running"  # its status, not the one found before


def test_a_run_a_local_process_interrupted_under_a_job_that_left_it_stays_interrupted(tmp_path, monkeypatch):
    """A store from before submissions took the run's lock: a local run started during a
    submission had the job's id written over its `running`, the job found the run busy and left
    (COMPLETED), the local run was interrupted. `suite status` recorded the run as failed, the job
    having ended without a result; it is interrupted, for the next `suite run` to resume."""
    out, _, d = job_run(tmp_path, monkeypatch, "pending", "COMPLETED", "skipped: run is already being executed")
    store.set_status(d, "interrupted", host=socket.gethostname(), pid=os.getpid(), slurm_node=None,
                     error="interrupted: Interrupted")
    slurm.refresh(out, [d.name])
    assert store.state_of(d).state == "interrupted" and store.state_of(d).note == "interrupted: Interrupted"
    # the exception is for this machine's runs alone (the defence's docstring): interrupted elsewhere, the end counts
    store.set_status(d, "interrupted", host="elsewhere", slurm_node=None, error="interrupted: Interrupted")
    slurm.refresh(out, [d.name])
    assert store.state_of(d).state == "failed" and "ended COMPLETED without a result" in store.state_of(d).note


def test_when_slurm_does_not_answer_nothing_is_claimed_or_recorded(tmp_path, monkeypatch, capsys):
    """slurmctld down: status said SLURM had no record of the jobs (and that they would fail), and
    cancel recorded runs as cancelled whose jobs scancel never reached."""
    monkeypatch.setenv("SUITE_CLUSTER", "")
    down = "echo 'error: Kill job error on job id 7_0: Unable to contact slurm controller (connect failure)' >&2"
    # squeue and sacct down; scancel reaches 8_0 but not 7_0
    bin_dir = fake_commands(tmp_path, monkeypatch, dict.fromkeys(("squeue", "sacct", "scancel"), f"{down}\nexit 1"))
    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    first, second = ablations.expand(ablations.load(spec_path))
    out = tmp_path / "store"
    for run, job in ((first, "7_0"), (second, "8_0")):
        store.set_status(store.plan(out, run), "pending", slurm_job_id=job, submitted_at=store.now(), executor="slurm")
    assert slurm.slurm_states(["7_0"]) == {"7_0": slurm.NO_ANSWER}
    assert main(["status", str(spec_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "SLURM did not answer for 2 jobs" in printed and "no record" not in printed
    assert main(["cancel", str(spec_path), "--out", str(out)]) == 1
    said = capsys.readouterr()
    assert "scancel did not take the jobs of 1 run (jobs 7)" in said.err and "cancelled 1 run (jobs 8)" in said.out
    assert store.state_of(store.run_dir(out, first.run_id)).state == "pending"  # as recorded: still queued
    assert store.state_of(store.run_dir(out, second.run_id)).state == "cancelled"
    (bin_dir / "scancel").write_text("#!/bin/sh\necho 'scancel: error: Unable to contact slurm controller' >&2\nexit 1\n")
    taken, refused, _ = slurm.cancel(out, [first.run_id])  # a refusal naming no job: none of them was taken
    assert (taken, refused) == ({}, {first.run_id: "7_0"})
    assert store.state_of(store.run_dir(out, first.run_id)).state == "pending"


def test_cancel_and_status_point_at_queued_runs_of_other_overrides(tmp_path, monkeypatch, capsys):
    """`suite run` was given key=value overrides that `cancel` lacks: it said only "nothing queued"."""
    monkeypatch.setenv("SUITE_CLUSTER", "")
    monkeypatch.setattr(slurm, "slurm_states", lambda ids: dict.fromkeys(ids, "PENDING"))
    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    out = tmp_path / "store"
    for run in ablations.expand(ablations.load(spec_path), overrides={"iterations": 3}):
        store.set_status(store.plan(out, run), "pending", slurm_job_id="7_0", executor="slurm")
    assert main(["cancel", str(spec_path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "opts: nothing queued or running on SLURM" in printed
    assert "note: 2 runs of opts in" in printed and "(queued or running) are of another preset" in printed
    assert "give `suite cancel` the ones" in printed
    assert main(["status", str(spec_path), "--out", str(out)]) == 0
    assert "(done or queued or running) are of another preset" in capsys.readouterr().out


def test_a_report_follows_slurm_as_status_does(tmp_path, monkeypatch, capsys):
    """A job cancelled outside the suite showed as running in the report until `suite status` ran."""
    out, run, d = job_run(tmp_path, monkeypatch, "running", "CANCELLED", "")
    assert main(["report", str(tmp_path / "opts.yaml"), "--out", str(out), "--to", "-"]) == 0
    printed = capsys.readouterr().out
    assert "1 cancelled" in printed and "running" not in printed
    assert store.state_of(d).state == "cancelled"


def test_status_of_the_whole_store_refuses_a_preset(tmp_path, capsys):
    """It was ignored: the whole store was listed as if no preset had been given."""
    assert main(["status", "--out", str(tmp_path), "--preset", "smoke"]) == 2
    assert "--preset and key=value overrides pick a spec's runs: name the spec" in capsys.readouterr().err


def test_a_withdrawn_submission_takes_back_only_the_directories_it_planned(tmp_path):
    _unplan = slurm._unplan
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    for d in (mine, theirs):
        d.mkdir()
        (d / "config.json").write_text("{}")
    (theirs / "log.txt").write_text("started")  # another process planned and started the run meanwhile
    _unplan(mine)
    _unplan(theirs)
    _unplan(tmp_path / "gone")
    assert not mine.exists() and sorted(p.name for p in theirs.iterdir()) == ["config.json", "log.txt"]


def test_a_task_requeues_itself_by_its_array_task_id(monkeypatch):
    """`scontrol requeue` takes `<array>_<task>`: SLURM_JOB_ID of an array task is its own number,
    which the real-cluster test (a grid of one run, a plain job) never shows."""
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "7")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert slurm._own_job_id() == "7_3"
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID")
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    assert slurm._own_job_id() == "12"


def test_a_run_whose_status_changed_since_the_submission_read_it_is_not_claimed(tmp_path):
    """A local run that started and stopped between the submission's read and its claim leaves the
    lock free but its own status: the claim must not turn its `interrupted` into this job's `pending`."""
    from types import SimpleNamespace

    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    d = store.plan(tmp_path, ablations.expand(ablations.load(spec_path))[0])
    before = slurm._status_bytes(d)
    store.set_status(d, "interrupted", error="interrupted: Interrupted")
    job = SimpleNamespace(job_id="7_0", paths=SimpleNamespace(stderr=tmp_path / "7_0_0_log.err"))
    assert not slurm._claim(d, job, before, afresh=False, archived={}, fields={})
    assert store.state_of(d).state == "interrupted"
    assert slurm._claim(d, job, slurm._status_bytes(d), afresh=False, archived={}, fields={})
    assert store.read_json(d / "status.json")["slurm_job_id"] == "7_0"


def test_a_run_with_an_unreadable_status_is_followed_by_its_latest_submission(tmp_path):
    """Its job is found from submitit's pickles: the newest one names the job that may still run it."""
    from submitit.core.utils import cloudpickle_dump
    from submitit.helpers import DelayedSubmission

    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    run = ablations.expand(ablations.load(spec_path))[0]
    folder = tmp_path / "submitit"
    folder.mkdir()
    for job, when in (("7_0", 1000), ("9_1", 3000), ("8_0", 2000)):
        path = folder / f"{job}_submitted.pkl"
        cloudpickle_dump(DelayedSubmission(slurm.SlurmRun(run, str(tmp_path), "code", 1)), path)
        os.utime(path, (when, when))
    assert slurm._latest_submissions(tmp_path, {run.run_id}) == {run.run_id: "9_1"}


def test_a_job_that_imported_suite_from_elsewhere_than_its_snapshot_fails_its_run(tmp_path):
    """A cluster setup line that puts another checkout first on PYTHONPATH would run today's code,
    not the code of submission time: the task refuses and says where it imported suite from."""
    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    run = ablations.expand(ablations.load(spec_path))[0]
    d = store.plan(tmp_path, run)
    task = slurm.SlurmRun(run, str(tmp_path), code=str(tmp_path / "code" / "abc"), max_requeues=1)
    handler = signal.getsignal(signal.SIGUSR2)  # the task installs its own, as in a job
    try:
        with pytest.raises(RuntimeError, match=f"not from the snapshot {tmp_path}/code/abc taken at submission"):
            task()
    finally:
        signal.signal(signal.SIGUSR2, handler)
    assert store.state_of(d).state == "failed" and f"imported suite from {snapshot.loaded_from()}" in store.state_of(d).note


def test_only_rank_0_of_a_preempted_ddp_job_counts_and_requeues_it(tmp_path, monkeypatch):
    """Every rank stops with Preempted at the same sync point; one requeue is the job's, not one per rank."""
    from suite import execute
    from suite.train.checkpoint import Preempted

    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    run = ablations.expand(ablations.load(spec_path))[0]
    d = store.plan(tmp_path, run)
    store.set_status(d, "running", requeues=0)
    task = slurm.SlurmRun(run, str(tmp_path), code=str(snapshot.loaded_from()), max_requeues=3)

    def preempted(run, out):
        raise Preempted(None, 7)

    monkeypatch.setattr(execute, "execute", preempted)
    monkeypatch.setenv("SLURM_JOB_ID", "999999999")  # no such job: scontrol refuses its requeue (or is not there)
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    handler = signal.getsignal(signal.SIGUSR2)
    try:
        monkeypatch.setattr(execute, "rank", lambda: 1)
        assert task() is None and store.state_of(d).status["requeues"] == 0  # rank 1 leaves it to rank 0
        monkeypatch.setattr(execute, "rank", lambda: 0)
        with pytest.raises(SuiteError):
            task()
    finally:
        signal.signal(signal.SIGUSR2, handler)
    status = store.state_of(d).status
    assert status["requeues"] == 1 and status["error"].startswith("could not requeue 999999999")


def test_cleaning_up_a_withdrawn_submission_never_hides_why_it_was_withdrawn(tmp_path, monkeypatch):
    """`_discard` runs while sbatch's refusal (or a Ctrl-C) is being raised: a removal this user
    may not make must leave the files, not replace that error with its own."""
    (tmp_path / "code" / "abc").mkdir(parents=True)
    (tmp_path / "submitit").mkdir()
    (tmp_path / "submitit" / "1_submission.sh").write_text("")

    def refused(snap):
        raise PermissionError(13, "Permission denied", str(snap.path))

    monkeypatch.setattr(snapshot, "discard", refused)
    code = snapshot.Snapshot(tmp_path / "code" / "abc", "abc", None, None)
    slurm._discard(tmp_path, {"code": None, "submitit": None}, code)  # raises nothing
    assert (tmp_path / "code" / "abc").is_dir()


@pytest.mark.parametrize(("n_runs", "limit", "held", "says"), [
    (9999, 10000, 0, None),
    (10000, 10000, 0, "submit at most 9999 runs at a time"),  # slurmctld refuses the job that reaches the limit
    (9964, 10000, 35, None),
    (9965, 10000, 35, "MaxJobCount=10000 jobs, each array task counting as one, and 35 now (queued, running"),
    (1, 10000, 9999, "no run fits now: wait until it holds fewer"),
    (1, 10000, 12000, "no run fits now"),  # more than the limit: a count taken as others ended
])
def test_a_grid_is_refused_only_where_it_would_take_the_queue_past_max_job_count(n_runs, limit, held, says):
    """A grid of MaxJobCount runs (or fewer, with jobs already queued) was submitted until slurmctld
    refused an array part-way, after sbatch's minutes of retrying; it is now refused up front."""
    found = slurm.too_many_jobs(n_runs, limit, held)
    if says is None:
        assert found is None
    else:
        assert found is not None and found.key == "cluster" and says in found.message
        assert found.message.startswith(f"{count(n_runs, 'run')} do not fit in the cluster's queue")


def test_gpus_a_node_are_judged_by_the_kinds_of_node_sinfo_lists_for_the_partition():
    """The test cluster's partitions all have GPUs: a partition without GRES, and one whose nodes
    name a GPU type and socket binding, are sinfo's lines as a cluster with them prints them (a
    default partition of two kinds of node, two lines, was named twice: 'cpu' or 'cpu')."""
    nodes = ("cpu*|191000|(null)|64\ncpu*|95000|(null)|32\ngpu|512000|gpu:a100:4(S:0-1),mps:400|48\n"
             "gpu|256000|gpu:v100:2,gpu:k80:1|16\nbig|2000000+|(null)|8+\n")  # sinfo's lines (slurm.SINFO)
    said = [(e.key, e.message) for e in node_mistakes(ClusterOptions(gpus_per_node=1), nodes)]
    assert said == [("gpus_per_node", "1 GPU a node, but each node of partition 'cpu' (the default) has no GPUs "
                    "(no gpu GRES): the jobs would wait for ever (BadConstraints); `sinfo --format='%P %G'` lists "
                    "the GPUs of each partition's nodes")]
    assert node_mistakes(ClusterOptions(partition="gpu", gpus_per_node=4, mem_gb=500), nodes) == []
    said = [e.message for e in node_mistakes(ClusterOptions(partition="cpu,gpu", gpus_per_node=5, mem_gb=501), nodes)]
    assert [s.split(":")[0] for s in said] == [
        "5 GPUs a node, but each node of partition 'cpu' or 'gpu' has at most 4 GPUs",
        "501 GB (513024 MB) a node, but each node of partition 'cpu' or 'gpu' has at most 512000 MB"]
    assert node_mistakes(ClusterOptions(partition="big", mem_gb=10000), nodes) == []  # `2000000+`: not exact
    assert node_mistakes(ClusterOptions(partition="nosuch", gpus_per_node=1), nodes) == []  # not a partition


def test_cpus_a_node_are_judged_by_the_kinds_of_node_sinfo_lists_for_the_partition(spec):
    """More CPUs a node (cpus_per_task times tasks_per_node) than any node of the partition has were
    sent: sbatch took the held jobs and `scontrol release` refused them (PartitionConfig)."""
    nodes = "cpu*|191000|(null)|64\ncpu*|95000|(null)|32\ngpu|512000|gpu:4|48\nbig|2000000|(null)|8+\n"
    assert node_mistakes(ClusterOptions(cpus_per_task=64), nodes) == []
    [said] = node_mistakes(options(spec, {"cpus_per_task": 65}), nodes)
    assert str(said) == ("<command line>: --cpus-per-task: 65 CPUs a task but each node of partition 'gpu' has at "
                         "most 48 CPUs: SLURM would refuse to release the jobs (PartitionConfig); `sinfo "
                         "--format='%P %c'` lists the CPUs of each partition's nodes")
    [said] = node_mistakes(ClusterOptions(cpus_per_task=13, tasks_per_node=5), nodes)
    assert said.key == "cpus_per_task" and said.message.startswith(
        "13 CPUs a task times tasks_per_node=5, 65 a node, but each node of partition 'cpu' (the default) has at most "
        "64 CPUs")
    assert node_mistakes(ClusterOptions(partition="big", cpus_per_task=1000), nodes) == []  # `8+`: not exact


SOCKETS = "sockets-per-node=1"  # which sbatch needs beside gpus-per-socket (sinfo's lines here give no %z)


@pytest.mark.parametrize("param, per_node, fits", [
    ("gres=gpu:5", 5, "gres=gpu:4"), ("gres=gpu:a100:3,gpu:v100:2", 5, "gres=gpu:a100:3,mps:100"),
    ("gpus=a100:9", 5, "gpus=a100:8"), ("gpus=9", 5, "gpus=8"), ("gpus-per-task=3", 6, "gpus-per-task=2"),
    ("gpus_per_task=a100:3", 6, "gpus_per_task=a100:2"), ("gpus-per-socket=5", 5, "gpus-per-socket=4"),
    ("gpus-per-socket=a100:5", 5, "gpus-per-socket=a100:4")])
def test_gpus_asked_in_sbatch_parameters_are_judged_as_gpus_per_node_is(spec, param, per_node, fits):
    """GPUs asked through raw sbatch parameters went round the check of gpus_per_node and waited
    for ever as BadConstraints; `gpus` is the job's, spread over its 2 nodes here, `gpus-per-task`
    each of its 2 tasks a node, `gpus-per-socket` at least one socket's (on the test cluster,
    gpu:2, gpus-per-socket=3 waited as BadConstraints, 2 ran with sockets-per-node=2)."""
    nodes = "gpu|512000|gpu:a100:4(S:0-1),mps:400|48\n"
    key = param.split("=")[0].replace("_", "-")
    asked = {"nodes": 2, "tasks_per_node": 2, "gpus_per_node": 2}
    [said] = node_mistakes(options(spec, {"sbatch": [param, SOCKETS], **asked}), nodes)
    assert str(said) == (f"<command line>: --sbatch.{key}: {key}={param.split('=')[1]} asks {per_node} GPUs of a "
                         "node, but each node of partition 'gpu' has at most 4 GPUs: the jobs would wait for ever "
                         "(BadConstraints); `sinfo --format='%P %G'` lists the GPUs of each partition's nodes")
    fits = options(spec, {"sbatch": [fits, SOCKETS], **asked})
    assert node_mistakes(fits, nodes) == []


TYPES = "the types they have: 'a100', 'k80', 'v100'"


@pytest.mark.parametrize("partition, param, wrong, has", [
    ("gpu", "gres=gpu:h100:1", "h100", TYPES), ("gpu", "gres=gpu:h100", "h100", TYPES),  # gres: a count of 1
    ("gpu", "gres=gpu:a100:1,gpu:h100:1", "h100", TYPES),
    ("gpu", "gpus=gpu:1", "gpu", TYPES),  # [type:]count: a type 'gpu'
    ("gpu", "gpus-per-task=h100:1", "h100", TYPES), ("gpu", "gpus-per-socket=h100:1", "h100", TYPES),
    ("debug", "gres=gpu:a100:1", "a100", "their GPUs have no type: gpu:COUNT"),
    ("debug", "gpus=a100:1,a100:1", "a100", "their GPUs have no type: gpu:COUNT")])  # a count not read: the type is
def test_a_gpu_type_no_node_of_the_partition_has_is_refused_by_its_key(spec, partition, param, wrong, has):
    """sbatch took a GPU type no node has, and the jobs waited for ever: on the test cluster (gpu:2,
    no type) jobs held with --gres=gpu:a100:1, --gpus=a100:1, --gpus-per-node=a100:1 and
    --gpus=gpu:1, then released, waited as BadConstraints. Each type is now looked up in sinfo's %G."""
    nodes = ("gpu|512000|gpu:a100:4(S:0-1),mps:400|48|0\ngpu|256000|gpu:v100:2,gpu:k80:1|16|0\n"
             "debug*|21694|gpu:2|8|0\n")
    key = param.partition("=")[0]
    [said] = node_mistakes(options(spec, {"partition": partition, "sbatch": [param, SOCKETS], "gpus_per_node": 0}),
                           nodes)
    assert str(said) == (f"<command line>: --sbatch.{key}: {param} asks GPUs of type {wrong!r}, but no node of "
                         f"partition {partition!r} has that type ({has}): the jobs would wait for ever "
                         "(BadConstraints); `sinfo --format='%P %G'` lists the GPUs of each partition's nodes")


@pytest.mark.parametrize("partition, param", [("gpu", "gres=gpu:V100:2,gpu:k80:1"), ("gpu", "gpus=A100:1"),
                                              ("gpu", "gres=gpu:2,mps:100"), ("debug", "gres=gpu:2"),
                                              ("gpu", "gpus-per-socket=k80:1")])
def test_a_gpu_type_a_node_of_the_partition_has_or_none_passes(spec, partition, param):
    """A type some node of the partition has, in any case (never refused for a spelling slurmctld may
    take), or no type at all, passes."""
    nodes = "gpu|512000|gpu:a100:4(S:0-1)|48|0\ngpu|256000|gpu:v100:2,gpu:k80:1|16|0\ndebug*|21694|gpu:2|8|0\n"
    asked = options(spec, {"partition": partition, "sbatch": [param, SOCKETS], "gpus_per_node": 0})
    assert node_mistakes(asked, nodes) == []


@pytest.mark.parametrize("gres, has", [
    ("gpu:a100:2(S:0),gpu:v100:2", {"gpus": 4, "gpu:a100": 2, "gpu:v100": 2}),  # bound to a socket, or not
    ("gpu:2", {"gpus": 2}), ("(null)", {"gpus": 0}), ("mps:400,gpu:A100:4(S:0-1)", {"gpus": 4, "gpu:a100": 4}),
    ("gpu:tesla:1,gpu:kepler:1,bandwidth:lustre:no_consume:4G", {"gpus": 2, "gpu:tesla": 1, "gpu:kepler": 1}),
    ("gpu:a100:1K", {"gpus": 1024, "gpu:a100": 1024}),  # slurm.conf's count suffixes
    ("gpu:a100:2(S:0),gpu:a100:2(S:1)", {"gpus": 4, "gpu:a100": 4}),  # one type on two sockets: all of them
    ("gpu:a100:no_consume:2", {"gpus": math.inf, "gpu:a100": math.inf}),  # no finite number
    ("gpu:a100:2:x", {"gpus": math.inf, "gpu:a100": math.inf})])  # a shape Gres= does not have
def test_each_gpu_type_of_a_node_is_read_from_sinfos_gres(gres, has):
    """sinfo's %G, in slurm.conf's Gres= syntax (`name[:type][:no_consume]:count`, each entry followed by
    the sockets it is bound to, if any, as scontrol's man page shows them): its GPUs of each type."""
    assert node_asks.gpus_of_node(gres) == has


@pytest.mark.parametrize("key, value, per_node", [
    ("gres", "gpu", 1), ("gres", "gpu:a100", 1),  # gres's count defaults to 1: a node without GPUs cannot run it
    ("gpus", "a100:v100:2", None), ("gpus-per-task", "a:b:1", None)])  # a shape [type:]count is not: left to Slurm
def test_a_gres_without_a_count_asks_one_gpu_and_another_shape_is_left_to_slurm(key, value, per_node):
    assert node_asks.gpus_per_node(key, value, nodes=1, tasks_per_node=1) == per_node



TYPED = "gpu|512000|gpu:a100:2(S:0),gpu:v100:2|48|0\n"


@pytest.mark.parametrize("param, per_node, kind, most, fits", [
    ("gres=gpu:a100:3", 3, "a100", 2, "gres=gpu:a100:2"), ("gres=gpu:v100:3,gpu:a100:1", 3, "v100", 2,
                                                           "gres=gpu:v100:2,gpu:a100:2"),
    ("gpus=a100:5", 3, "a100", 2, "gpus=a100:4"),  # the job's, spread over its 2 nodes
    ("gpus-per-task=v100:2", 4, "v100", 2, "gpus-per-task=v100:1"),  # each of its 2 tasks a node
    ("gpus-per-socket=A100:3", 3, "A100", 2, "gpus-per-socket=A100:2")])
def test_more_gpus_of_a_type_than_a_node_has_of_it_is_refused_by_its_key(spec, param, per_node, kind, most, fits):
    """`gres=gpu:a100:3` on nodes of 2 a100s and 2 v100s passed, as only the count of all GPUs (4) was
    compared, and the jobs would wait for ever as BadConstraints: each type's count is now compared
    with the most a node of the partition has of it, as sinfo's %G lists them."""
    key = param.split("=")[0]
    asked = {"partition": "gpu", "nodes": 2, "tasks_per_node": 2, "gpus_per_node": 2}
    [said] = node_mistakes(options(spec, {"sbatch": [param, SOCKETS], **asked}), TYPED)
    assert str(said) == (f"<command line>: --sbatch.{key}: {param} asks {per_node} GPUs of type {kind!r} of a node, "
                         f"but each node of partition 'gpu' has at most {most} of that type: the jobs would wait for "
                         "ever (BadConstraints); `sinfo --format='%P %G'` lists the GPUs of each partition's nodes")
    assert node_mistakes(options(spec, {"sbatch": [fits, SOCKETS], **asked}), TYPED) == []
    more = TYPED + "gpu|512000|gpu:a100:8,gpu:v100:8|48|0\n"  # another kind of node has enough of each
    assert node_mistakes(options(spec, {"sbatch": [param, SOCKETS], **asked}), more) == []


@pytest.mark.parametrize("param", ["gres=gpu:4", "gres=gpu:a100:2,gpu:v100:2", "gpus=a100:4"])
def test_gpus_of_each_type_a_node_has_pass(spec, param):
    """All the GPUs untyped, or each type's count, as a node has them: taken (gpus=a100:4: 2 on each of 2 nodes)."""
    asked = {"partition": "gpu", "nodes": 2, "gpus_per_node": 2}
    assert node_mistakes(options(spec, {"sbatch": [param, SOCKETS], **asked}), TYPED) == []
    shared = "gpu|512000|gpu:a100:no_consume:2|48|0\n"  # no finite number: left to Slurm
    assert node_mistakes(options(spec, {"sbatch": ["gres=gpu:a100:3"], **asked}), shared) == []


@pytest.mark.parametrize("param, said, fits", [
    ("mincpus=49", "mincpus=49 asks 49 CPUs of a node, but each node of partition 'gpu' has at most 48 CPUs: the jobs "
     "would wait for ever (BadConstraints); `sinfo --format='%P %c'` lists the CPUs", "mincpus=48"),
    ("cpus-per-gpu=25", "cpus-per-gpu=25 times 2 GPUs a node asks 50 CPUs of a node, but each node of partition 'gpu' "
     "has at most 48 CPUs", "cpus-per-gpu=24"),
    ("mem-per-cpu=256001", "mem-per-cpu=256001 times 2 CPUs a node asks 512002 MB of a node, but each node of "
     "partition 'gpu' has at most 512000 MB: the jobs would wait for ever (BadConstraints); `sinfo "
     "--format='%P %m'` lists the memory (MB)", "mem-per-cpu=250g"),
    ("mem_per_gpu=262145000K", "mem-per-gpu=262145000K times 2 GPUs a node asks 512002 MB of a node",
     "mem_per_gpu=250GB"),
    ("tmp=98G", "tmp=98G asks 100352 MB of tmp disk of a node, but each node of partition 'gpu' has at most 100000 MB "
     "of tmp disk: the jobs would wait for ever (BadConstraints); `sinfo --format='%P %d'` lists the tmp disk (MB)",
     "tmp=97GB")])
def test_cpus_memory_and_tmp_disk_asked_in_sbatch_parameters_are_judged_by_sinfo(spec, param, said, fits):
    """Parameters asking more CPUs, memory or tmp disk of a node than a node has (sinfo's %c, %m,
    %d) went round the node check, and sbatch took the jobs, which waited for ever (BadConstraints);
    here 2 tasks a node of 1 CPU each (SLURM's default), 2 GPUs a node."""
    nodes = "gpu|512000|gpu:a100:4(S:0-1),mps:400|48|100000\n"
    key = param.split("=")[0].replace("_", "-")
    asked = {"tasks_per_node": 2, "gpus_per_node": 2}
    [mistake] = node_mistakes(options(spec, {"sbatch": [param], **asked}), nodes)
    assert mistake.key == f"--sbatch.{key}" and mistake.file == "<command line>" and mistake.message.startswith(said)
    assert node_mistakes(options(spec, {"sbatch": [fits], **asked}), nodes) == []


def test_cpus_per_gpu_where_no_gpu_is_asked_is_judged_as_for_one_gpu(spec):
    """On this suite's test cluster (8 CPUs a node, no GPU asked), slurmctld kept a job of
    cpus-per-gpu=9 waiting for ever (BadConstraints) and ran one of cpus-per-gpu=8 on 1 CPU."""
    nodes = "gpu|512000|gpu:4|48|0\n"
    [said] = node_mistakes(options(spec, {"sbatch": ["cpus-per-gpu=49"], "gpus_per_node": 0}), nodes)
    assert said.message.startswith("cpus-per-gpu=49 asks 49 CPUs of a node, but each node of partition 'gpu' has at "
                                   "most 48 CPUs: the jobs would wait for ever (BadConstraints)")
    assert node_mistakes(options(spec, {"sbatch": ["cpus-per-gpu=48"], "gpus_per_node": 0}), nodes) == []


@pytest.mark.parametrize("cli, said", [
    ({"sbatch": ["mincpus=8", "mem-per-cpu=3000"]}, "mem-per-cpu=3000 times 8 CPUs a node (mincpus) asks 24000 MB of "
     "a node, but each node of partition 'gpu' has at most 21694 MB: the jobs would wait for ever "
     "(Resources, as if the node were busy)"),
    ({"sbatch": ["mincpus=4", "mem_per_cpu=6000"], "cpus_per_task": 1}, "mem-per-cpu=6000 times 4 CPUs a node "
     "(mincpus) asks 24000 MB"),
    ({"sbatch": ["mincpus=8", "mem-per-cpu=2000"]}, None), ({"sbatch": ["mincpus=4", "mem-per-cpu=5000"]}, None),
    ({"sbatch": ["mincpus=2", "mem-per-cpu=7000"], "cpus_per_task": 3}, None),  # the tasks' 3 CPUs: 21000 MB
    ({"gpus_per_node": 2, "sbatch": ["cpus-per-gpu=2", "mem-per-cpu=6000"]}, "mem-per-cpu=6000 times 4 CPUs a node "
     "(cpus-per-gpu) asks 24000 MB of a node, but each node of partition 'gpu' has at most 21694 MB: "
     "the jobs would wait for ever (BadConstraints)"),
    ({"gpus_per_node": 0, "sbatch": ["cpus-per-gpu=8", "mem-per-cpu=3000"]}, "mem-per-cpu=3000 times 8 CPUs a node "
     "(cpus-per-gpu) asks 24000 MB"),  # no GPU asked: as for one
    ({"gpus_per_node": 2, "sbatch": ["cpus-per-gpu=4", "mincpus=8", "mem-per-cpu=3000"]}, "mem-per-cpu=3000 times 8 "
     "CPUs a node (cpus-per-gpu) asks 24000 MB of a node, but each node of partition 'gpu' has at "
     "most 21694 MB: the jobs would wait for ever (BadConstraints)"),
    ({"gpus_per_node": 2, "sbatch": ["cpus-per-gpu=3", "mincpus=8", "mem-per-cpu=3000"]}, "mem-per-cpu=3000 times 8 "
     "CPUs a node (mincpus) asks 24000 MB of a node, but each node of partition 'gpu' has at most "
     "21694 MB: the jobs would wait for ever (Resources, as if the node were busy)"),
    ({"gpus_per_node": 2, "sbatch": ["cpus-per-gpu=2", "mem-per-cpu=5000"]}, None),
    ({"gpus_per_node": 0, "sbatch": ["cpus-per-gpu=8", "mem-per-cpu=2000"]}, None),
    ({"gpus_per_node": 2, "sbatch": ["cpus-per-gpu=3", "mincpus=4", "mem-per-cpu=3500"]}, None)])
def test_mem_per_cpu_is_judged_with_the_cpus_a_node_is_given(spec, cli, said):
    """mem-per-cpu was judged times the tasks' CPUs only: sbatch took jobs that then waited for
    ever. Each case as slurmctld judged it on the test cluster (this sinfo line), held then released
    as a submission is: it gives a node the most of the tasks' CPUs, cpus-per-gpu times the GPUs
    (one where none is asked) and mincpus, and mem-per-cpu times those (mincpus=8 mem-per-cpu=2000
    ran with mem=16000M, mincpus=2 -c 3 mem-per-cpu=7000 with 21000M, mincpus=8 mem-per-cpu=3000
    waited as Resources on an idle node; gpus-per-node=2 cpus-per-gpu=2 mem-per-cpu=5000 ran with
    mem=20000M, 6000 waited as BadConstraints); those that fit are not refused."""
    nodes = "debug*|21694|gpu:2|8|0\ngpu|21694|gpu:2|8|0\n"
    found = [(e.key, e.message) for e in node_mistakes(options(spec, cli), nodes)]
    if said is None:
        assert found == []
    else:
        [(key, message)] = found
        assert key == "--sbatch.mem-per-cpu" and message.startswith(said)


@pytest.mark.parametrize("param", ["mem-per-gpu=600000", "mem-per-cpu=+600000", "tmp=1.5", "sockets-per-node=2-9",
                                   "extra-node-info=9:9:9"])
def test_node_parameters_that_cannot_be_judged_for_sure_are_left_to_slurm(spec, param):
    """mem-per-gpu and no GPU asked (sbatch refuses it), a form not read here, a layout not in its own key."""
    nodes = "gpu|512000|gpu:4|48|0|2:8:2\n"
    assert node_mistakes(options(spec, {"sbatch": [param], "gpus_per_node": 0}), nodes) == []
    assert node_mistakes(options(spec, {"sbatch": ["tmp=1"]}), "gpu|512000|gpu:4|48\n") == []  # no %d read
    assert node_mistakes(options(spec, {"sbatch": ["sockets-per-node=9"]}), "gpu|512000|gpu:4|48|0\n") == []  # no %z


@pytest.mark.parametrize("param, said", [
    ("sockets-per-node=3", "sockets-per-node=3 asks 3 sockets of a node, but each node of partition 'gpu' has at "
     "most 2 sockets"),
    ("cores-per-socket=17", "cores-per-socket=17 asks 17 cores a socket of a node, but each node of partition 'gpu' "
     "has at most 16 cores a socket"),
    ("threads_per_core=3", "threads-per-core=3 asks 3 threads a core of a node, but each node of partition 'gpu' has "
     "at most 2 threads a core")])
def test_a_node_layout_no_node_has_is_refused_by_its_key(spec, param, said):
    """sbatch took a layout no node has, and the jobs waited for ever: on the test cluster (8:1:1)
    jobs held with sockets-per-node=9, cores-per-socket=2 or threads-per-core=2, then released,
    waited as BadConstraints (sockets-per-node=8 ran). Judged by sinfo's %z, each the most of any
    kind of node of the partition (here 2:8:2 and 1:16:1)."""
    nodes = "gpu|512000|gpu:4|48|0|2:8:2\ngpu|256000|gpu:4|16|0|1:16:1\n"
    key = param.partition("=")[0].replace("_", "-")
    [mistake] = node_mistakes(options(spec, {"sbatch": [param]}), nodes)
    assert mistake.key == f"--sbatch.{key}" and mistake.message == (
        f"{said}: the jobs would wait for ever (BadConstraints); `sinfo --format='%P %z'` lists the "
        "sockets:cores:threads of each partition's nodes")
    fits = options(spec, {"sbatch": ["sockets-per-node=2", "cores-per-socket=16", "threads-per-core=2"]})
    assert node_mistakes(fits, nodes) == []


@pytest.mark.parametrize("param", ["gres=gpu:3,gpu:3", "gres=gpu:1,gpu:a100:9", "gres=gpu:a:b:9",
                                   "gpus-per-socket=a100:9,a100:9", "gpus=a100:9,a100:9"])
def test_gpu_parameters_that_cannot_be_read_for_sure_are_left_to_slurm(spec, param):
    assert node_mistakes(options(spec, {"sbatch": [param, SOCKETS]}), "gpu|512000|gpu:a100:4|48\n") == []


@pytest.mark.parametrize("param, form", [("gpus=abc", "[type:]count"), ("gpus=a100:x", "[type:]count"),
                                         ("gpus-per-task=", "[type:]count"), ("gpus=1.5", "[type:]count"),
                                         ("gres=gpu:a100:two", "gpu[[:type]:count]")])
def test_a_gpu_count_that_is_no_number_is_refused_by_file_line_and_key(tmp_path, param, form):
    """sbatch took `--gpus=abc` and the job waited for ever (BadConstraints)."""
    key, _, value = param.partition("=")
    path = tmp_path / "cluster.yaml"
    path.write_text(f"partition: gpu\nsbatch:\n  {key}: {value if value == '1.5' else repr(value)}\n")  # 1.5: a float
    with pytest.raises(SuiteError) as err:
        resolve_options(user=path)
    assert err.value.file == str(path) and err.value.line == 3 and err.value.key == f"sbatch.{key}"
    assert f"in {param} is no GPU count (sbatch takes some such, and the jobs never start; others it refuses " \
        f"naming no key): write {form}" in str(err.value)
    with pytest.raises(SuiteError, match=rf"^<command line>: --sbatch\.{key}: .* is no GPU count"):
        resolve_options(cli=parse_cli({"sbatch": [param]}), user=None)


def test_a_controller_that_does_not_answer_is_said_by_the_dry_run_and_refuses_the_submission(tmp_path, monkeypatch,
                                                                                             capsys):
    """slurmctld down (scontrol, sinfo and squeue faked: the test cluster's must not be stopped): the
    dry run showed the plan without a word, its checks (partition, GPUs, queue room) silently not
    made, and a submission made the store before `scontrol show config` failed."""
    monkeypatch.setenv("SUITE_CLUSTER", "")
    unreached = "error: Unable to contact slurm controller (connect failure)"
    scripts = {name: f"echo '{name}: {unreached}' >&2\nexit 1" for name in ("sinfo", "squeue")}
    bin_dir = fake_commands(tmp_path, monkeypatch, {"scontrol": "echo 'Slurmctld(primary) at vm is DOWN'\nexit 1",
                                                    **scripts})
    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC)
    out = tmp_path / "store"
    refused = ("cluster: slurmctld did not answer (`scontrol ping`: Slurmctld(primary) at vm is DOWN): nothing can be "
               "submitted")
    assert main(["run", str(spec_path), "--executor", "slurm", "--out", str(out), "--dry-run"]) == 0
    assert f"note: a real submission would be refused: {refused}" in capsys.readouterr().out
    assert main(["run", str(spec_path), "--executor", "slurm", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {refused}")
    assert not out.exists()
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho 'Slurmctld(primary) at a is DOWN'\n"
                                      "echo 'Slurmctld(backup) at b is UP'\n")
    assert slurm.controller_down() is None  # the backup answers


def test_a_cluster_with_job_arrays_disabled_is_named_not_a_traceback(tmp_path, monkeypatch, capsys):
    """MaxArraySize=0 disables job arrays (`man slurm.conf`): the grid was split into arrays of 0
    tasks, a ValueError traceback, and the dry run said nothing. scontrol is faked: the test
    cluster's daemons must not be reconfigured."""
    monkeypatch.setenv("SUITE_CLUSTER", "")
    ping = '[ "$1" = ping ] && echo "Slurmctld(primary) at vm is UP" && exit 0'
    fake_commands(tmp_path, monkeypatch, {"scontrol": f"{ping}\nprintf 'MaxArraySize = 0\\nMaxJobCount = 10000\\n'"})
    spec_path = tmp_path / "opts.yaml"
    spec_path.write_text(SPEC.replace("  partition: gpu\n  gpus_per_node: 1\n", ""))
    out = tmp_path / "store"
    said = "cluster: this cluster has job arrays disabled (MaxArraySize=0 in `scontrol show config`)"
    assert main(["run", str(spec_path), "--executor", "slurm", "--out", str(out), "--dry-run"]) == 0
    assert f"note: a real submission would be refused: {said}" in capsys.readouterr().out
    monkeypatch.setattr(slurm, "submit_arrays", lambda *a, **k: pytest.fail("submitted"))
    assert main(["run", str(spec_path), "--executor", "slurm", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {said}")
    assert not (out / "code").exists() and not (out / "runs").exists()


@pytest.mark.parametrize("text, answered", [
    ("Slurmctld(primary) at vm is UP\n", True),  # Slurm 22.05, the test cluster's
    ("Slurmctld(primary) at a is DOWN\nSlurmctld(backup) at b is UP\n", True),
    ("Slurmctld(primary) at a is DOWN\nSlurmctld(backup) at b is DOWN\n", False),
    ("Slurmctld(primary/backup) at vm/(NULL) are UP/DOWN\n", True),  # before 20.11, no backup configured
    ("Slurmctld(primary/backup) at a/b are DOWN/UP\n*****************************************\n"
     "** RESTORE SLURMCTLD DAEMON TO SERVICE **\n*****************************************\n", True),
    ("Slurmctld(primary/backup) at a/b are DOWN/DOWN\n", False), ("", False)])
def test_scontrol_ping_is_read_in_the_wording_of_slurm_before_and_after_20_11(text, answered):
    """Slurm before 20.11 said both controllers on one line (src/scontrol/scontrol.c, _ping_slurmctld:
    `Slurmctld(primary/backup) at P/B are S/S`, exit status 0 whatever they are); its primary down
    and backup up was taken for a controller that did not answer, and nothing could be submitted."""
    assert slurm.ping_answered(text) is answered
