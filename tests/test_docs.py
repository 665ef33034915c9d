"""What the README and the command-line help tell a user: the commands they show exist and run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_m(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=120, env=env,
                          cwd=ROOT, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("module", ["suite", "suite.cli"])
def test_the_command_runs_as_a_module(module):
    """`python -m suite.cli` (the module the `suite` entry point names) is the command too, not silence."""
    done = _python_m(module, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: suite ")
    done = _python_m(module, "models", "ran56*")
    assert done.returncode == 0, done.stderr
    assert "ran56_cifar" in done.stdout


def test_the_run_process_entry_point_says_its_usage():
    """`python -m suite.execute RUN_DIR` (the README's flow) without a run directory: a usage line,
    not an IndexError traceback; `--help` is not read as a run directory."""
    done = _python_m("suite.execute")
    assert done.returncode == 2
    assert done.stderr.startswith("usage: python -m suite.execute RUN_DIR")
    assert "Traceback" not in done.stderr
    done = _python_m("suite.execute", "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m suite.execute RUN_DIR")


def _readme_commands() -> list[str]:
    """Every `suite ...` command the README shows (in code spans and in its shell blocks), and the
    specs' descriptions."""
    import re

    text = (ROOT / "README.md").read_text()
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        found += [m for line in joined.splitlines() for m in re.findall(r"(?:^|&& |\.venv/bin/)(suite [^#&]*)", line)]
    found += re.findall(r"`(suite [^`]*)`", text)
    for spec in (ROOT / "ablations").glob("*.yaml"):  # a spec's description is shown atop its report
        found += re.findall(r"`(suite [^`]*)`", spec.read_text())
    return [" ".join(c.replace("\\|", "|").split()) for c in found]


def _subcommands():
    import argparse

    from suite.cli import parser

    (sub,) = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


def test_every_command_the_readme_shows_has_its_subcommand_and_options():
    import argparse

    commands = _readme_commands()
    assert len(commands) > 20 and any(c.startswith("suite bench --compare-rev") for c in commands)
    choices = _subcommands()
    wrong = []
    for command in commands:
        words = command.split()
        if len(words) < 2 or words[1].startswith("-") or words[1] in ("command", "package", "COMMAND"):
            continue  # prose ("the `suite` command") and placeholders (`suite COMMAND --help`)
        if words[1] not in choices:
            wrong.append(f"{command}: no subcommand {words[1]!r}")
            continue
        known = {o for o, a in choices[words[1]]._option_string_actions.items() if a.help != argparse.SUPPRESS}
        wrong += [f"{command}: no option {w}" for w in (w.strip("[]").split("=")[0] for w in words[2:])
                  if w.startswith("--") and w not in known]  # a hidden one is a renamed option, refused
        if words[1] == "profile":  # model options as every other command spells them
            wrong += [f"{command}: {w} is not model.KEY=VALUE" for w in words[2:]
                      if "=" in w and not w.startswith(("-", "model.", "[model."))]
    assert wrong == []


def test_every_option_the_readme_names_is_one_of_a_command():
    """An option named in prose (`--dry-run`, `--threads`) is one of some suite command's; the others
    the README names are setup.sh's, sbatch's and srun's, and `python -m suite.ops.benchmark`'s."""
    import re

    known = set().union(*(set(p._option_string_actions) for p in _subcommands().values()))
    others = {"--slurm", "--usage", "--test-only", "--kill-on-bad-exit"}  # setup.sh; sbatch; srun
    bench_help = _python_m("suite.ops.benchmark", "--help").stdout
    assert "--modes" in bench_help
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", (ROOT / "README.md").read_text()))
    assert sorted(o for o in named - known - others if o not in bench_help) == []


def test_every_option_with_a_default_says_it_in_its_help():
    import argparse

    silent = [f"suite {name} {action.option_strings[0]}" for name, p in _subcommands().items() for action in p._actions
              if action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
              and not isinstance(action, (argparse._StoreTrueAction, argparse._HelpAction))
              and "default" not in (action.help or "")]
    assert silent == []
    worded = [f"suite {name} {action.option_strings[0]}" for name, p in _subcommands().items() for action in p._actions
              if "(default " in (action.help or "")]
    assert worded == []  # "(default: X)", as argparse's own ArgumentDefaultsHelpFormatter writes it
    bench_help = " ".join(_python_m("suite.ops.benchmark", "--help").stdout.split())
    for option, default in [("--batch-size N", 8), ("--input-size N", 224), ("--threads N", 2), ("--rounds N", 7),
                            ("--steps N", 2), ("--warmup N", 2)]:
        assert f"{option} " in bench_help and f"(default: {default})" in bench_help.split(f"{option} ", 2)[-1][:80]


@pytest.mark.parametrize("args, status", [(["--help"], 0), (["--slrum"], 2), (["--slurm", "x"], 2)])
def test_setup_installs_nothing_on_an_argument_it_does_not_take(args, status, tmp_path):
    """`bash setup.sh --help` (or a misspelt --slurm) says the usage and stops; it used to install."""
    copy = tmp_path / "setup.sh"
    copy.write_text((ROOT / "setup.sh").read_text())
    done = subprocess.run(["bash", str(copy), *args], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHON": "false"}, stdin=subprocess.DEVNULL)
    assert done.returncode == status
    assert "usage: bash setup.sh [--slurm]" in done.stdout + done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["setup.sh"]


def test_the_command_says_its_version(capsys):
    from suite import __version__
    from suite.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"suite {__version__}\n"


def test_every_file_and_test_the_readme_names_exists():
    import re

    text = (ROOT / "README.md").read_text()
    paths = set(re.findall(r"(?<![\w/.-])((?:suite|tests|slurm|ablations|results|\.ci)/[\w./-]*\w)", text))
    placeholders = {"ablations/NAME.yaml", "ablations/x.yaml", "results/runs"}  # examples; the run store
    assert sorted(p for p in paths - placeholders if not (ROOT / p).exists()) == []
    tests = "".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    assert sorted(n for n in re.findall(r"`(test_\w+)`", text) if f"def {n}(" not in tests) == []


def test_the_profile_child_says_its_usage():
    """`python -m suite.measure.profile` is `suite profile`'s child; run by hand it points there."""
    done = _python_m("suite.measure.profile")
    assert done.returncode == 2 and "run `suite profile MODEL` instead" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_python_snippet_the_readme_shows_runs_as_written(tmp_path):
    """Each ```python block of the README, run as written in a fresh interpreter from an empty
    folder (so `tables.load` reads an empty store there): a renamed function or option, or a
    snippet that needs what it does not import, fails here rather than in a researcher's notebook.
    The blocks cover the Python entry points: the registry, a plugin's registration, complexity,
    a `suite profile` row and a report's frames."""
    import re

    blocks = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), flags=re.S | re.M)
    shown = "".join(blocks)
    for entry in ("create_model(", "register_model", "model_complexity(", "profile_model(", "tables.load("):
        assert entry in shown, f"no README snippet shows {entry}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SUITE_OUT": str(tmp_path / "store")}
    for i, code in enumerate(blocks, 1):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env,
                              cwd=tmp_path, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"README python block {i} failed:\n{code}\n{done.stderr[-2000:]}"


def _section(title: str) -> str:
    """The text of the README's section `## title`, up to the next one."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_the_command_table_has_a_row_for_each_subcommand():
    """The Commands table is the README's `suite --help`: a command added, renamed or dropped there
    shows here, where a user looks for it (in the README's order, by what a user does first)."""
    import re

    rows = re.findall(r"^\| `suite (\w+)", _section("Commands"), flags=re.M)
    assert sorted(rows) == sorted(_subcommands())


def test_the_spec_table_lists_every_spec_with_the_runs_suite_specs_counts():
    """The Ablation specs table's `runs` column is what `suite specs` prints; a grid or a seed
    count changed in a spec file changes it."""
    import re

    from suite import ablations

    rows = dict(re.findall(r"^\| `(\w+)` \|[^\n]*\| (\d+) \|$", _section("Ablation specs"), flags=re.M))
    counted = {name: len(ablations.expand(ablations.load(name))) for name in ablations.list()}
    assert {name: int(runs) for name, runs in rows.items()} == counted


def test_the_model_table_lists_every_registered_model():
    """What is in it names each model `suite models` lists (patterns such as `san15_*` as that
    command reads them), and no other."""
    import fnmatch
    import re

    from suite.models import list_models

    table = [line for line in _section("What is in it").splitlines() if line.startswith("| ")][1:]
    names = [n for line in table for n in re.findall(r"`([\w*]+)`", line.split(" | ")[1])]
    registered = list_models()
    assert sorted({m for n in names for m in fnmatch.filter(registered, n)}) == sorted(registered)
    assert [n for n in names if not fnmatch.filter(registered, n)] == []


def test_the_spec_and_cluster_file_examples_load_as_shown(tmp_path):
    """The README's spec is the shipped file it is named after, run for run; its cluster file is one
    the suite reads, with the keys the README lists."""
    import re

    from suite import ablations
    from suite.dispatch.cluster import FIELDS, resolve_options

    text = (ROOT / "README.md").read_text()
    (spec,) = [b for b in re.findall(r"^```yaml\n(.*?)^```", text, flags=re.S | re.M) if b.startswith("name: ")]
    name = spec.split()[1]  # the shipped spec's: the copy takes another, as a second file of one name is refused
    (tmp_path / "shown.yaml").write_text(spec.replace(f"name: {name}\n", "name: shown\n", 1))
    shown = ablations.expand(ablations.load(tmp_path / "shown.yaml"))
    assert [r.run_id for r in shown] == [r.run_id for r in ablations.expand(ablations.load(name))]
    cluster = re.search(r"# ~/.config/suite/cluster.yaml\n(.*?)```", text, flags=re.S).group(1)
    (tmp_path / "cluster.yaml").write_text("\n".join(line.strip() for line in cluster.splitlines()))
    options = resolve_options(user=tmp_path / "cluster.yaml")
    assert options.partition == "gpu" and options.sbatch == {"exclude": "node7"}
    keys = re.search(r"Keys: (.*?)\. A spec's", " ".join(text.split())).group(1)
    assert re.findall(r"`(\w+)`", re.sub(r"\([^()]*\)", "", keys)) == list(FIELDS)  # what each is for aside


def test_the_readme_shows_the_command_that_writes_each_committed_result():
    """A committed table's numbers are trusted as what a command prints: each file of `results/`
    has its command in the README (a table's from its header, complexity.csv's from the page that
    reads it), and that command's options are checked above. complexity.csv's was shown nowhere."""
    import re

    from suite.report import complexity

    commands = _readme_commands()
    writers = {"complexity.csv": re.search(r"written by `(suite [^`]*)`", " ".join(complexity.__doc__.split())).group(1)}
    for table in (ROOT / "results").glob("*.md"):
        writers[table.name] = re.search(r"generated by `(suite [^`]*)`", table.read_text()).group(1)
        writers.setdefault(table.with_suffix(".csv").name, writers[table.name])  # a report's md and csv
    assert sorted(p.name for p in (ROOT / "results").glob("*.*")) == sorted(writers)
    assert {name: c for name, c in writers.items() if c not in commands} == {}


def test_the_fidelity_table_s_counts_are_those_of_results_complexity_csv():
    """Fidelity to the papers quotes our parameters and GMACs; results/complexity.csv is kept equal
    to the code by test_measure, so a count that changes with a model changes there, and here."""
    import csv
    import re

    rows = {r["model"]: r for r in csv.DictReader((ROOT / "results" / "complexity.csv").open())}
    table = [line.split(" | ") for line in _section("Fidelity to the papers").splitlines() if line.startswith("| `")]
    assert len(table) > 10
    wrong, checked = [], 0
    for first, params, gmacs in ((cells[0], cells[1], cells[2].rstrip(" |")) for cells in table):
        names = re.findall(r"`(\w+)`", first)
        models = [n if n in rows else  # `_patchwise`, `38`: the first name with its last part replaced
                  re.sub(r"_[a-z]+$", n, names[0]) if n.startswith("_") else re.sub(r"\d+$", n, names[0])
                  for n in names]
        for column, cell, unit in (("params", params, 1e6), ("gmacs", gmacs, 1)):
            ours = re.split(r" vs | / (?=[\d.,]+ M$)", cell)[0] if cell.strip() else ""
            mine = len(models) if " vs " in cell or len(models) > 1 else 1  # one model's: ours / the paper's
            quoted = re.findall(r"[\d.,]+", ours)[:mine]
            checked += len(quoted)
            for model, text in zip(models, quoted):
                value = float(rows[model][column])
                shown = int(text.replace(",", "")) if "," in text else float(text)
                decimals = len(text.split(".")[1]) if "." in text else 0
                if shown != (value if "," in text else round(value / unit, decimals)):
                    wrong.append(f"{model} {column}: README {text}, complexity.csv {value}")
    assert wrong == [] and checked == 43  # every model of the table, both columns


def test_the_readme_s_quick_table_and_its_figures_are_those_of_results():
    """The block `suite report quick --into README.md` fills is results/quick.md's table, and the
    prose around it quotes results/quick.csv: a report regenerated without its README block, or
    the block without the prose, fails here."""
    import csv
    import re

    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- suite:report quick -->\n")[1].split("<!-- /suite:report -->")[0].strip()
    assert block and block in (ROOT / "results" / "quick.md").read_text()
    runs = list(csv.DictReader((ROOT / "results" / "quick.csv").open()))
    walls = sorted(round(float(r["wall_time_s"])) for r in runs)
    intro = " ".join(text.split("<!-- suite:report quick -->")[0].split())
    assert f"{walls[0]} to {walls[-1]} s a run (`wall_time_s` in `results/quick.csv`)" in intro
    assert f"trains {len(runs)} small Attention-56 networks" in intro
    means = [float(m) for m in re.findall(r"\| ([\d.]+) ± ", block)]
    assert len(means) == 4 and max(means) < 3  # "every variant averages under 3 % test error"


def test_setup_remakes_a_venv_left_without_pip(tmp_path):
    """Debian's python3 without python3-venv makes .venv/bin/python, then stops for the missing
    ensurepip; setup.sh run again (after `apt install python3-venv`) went straight to that venv's
    pip and failed with 'No module named pip'. It now makes the venv again."""
    copy = tmp_path / "setup.sh"
    copy.write_text((ROOT / "setup.sh").read_text())
    venv_python = tmp_path / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text("#!/bin/sh\nexit 1\n")  # a python whose `-m pip` fails
    venv_python.chmod(0o755)
    python = tmp_path / "python3"  # records how setup.sh asks for a venv, and fails as the Debian one does
    python.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'asked'}\nexit 1\n")
    python.chmod(0o755)
    done = subprocess.run(["bash", str(copy)], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHON": str(python)}, stdin=subprocess.DEVNULL)
    assert done.returncode != 0
    assert (tmp_path / "asked").read_text().split() == ["-m", "venv", "--clear", ".venv"]


def test_the_layout_names_every_module_and_package_of_the_suite():
    """Layout and design is the map a contributor reads first: a module or package of `suite/`
    missing there (locks.py, idcache.py and again.py were) is code nobody is told of."""
    import re

    layout = (ROOT / "README.md").read_text().split("## Layout and design\n\n```\n")[1].split("```")[0]
    named = set(re.findall(r"^(suite/\S+)", layout, flags=re.M))
    parts = {f"suite/{p.name}/" if p.is_dir() else f"suite/{p.name}" for p in (ROOT / "suite").iterdir()
             if (p / "__init__.py").exists() or (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))}
    assert sorted(parts - named) == [] and sorted(named - parts) == []


def test_the_readme_s_recipes_data_sets_and_views_are_the_suite_s():
    """Lists a user picks a value from, or reads a column of: a recipe, data set, turned view or
    attack step added or renamed in the code and not in the README (or the other way) is a value
    the README hides or one that fails."""
    import re

    from suite.data import DATASETS
    from suite.metrics import ATTACK_STEPS, VIEW_LABELS
    from suite.train.recipes import RECIPES

    text = " ".join((ROOT / "README.md").read_text().split())
    recipes = re.search(r"Recipes \(`recipe`\): (.*?), each overridable", text).group(1)
    data = re.search(r"Data sets \(`data.name`\): (.*?) Files are looked for", text).group(1)
    views = re.search(r"on the test images turned: (.*?) \(reports:", text).group(1)
    assert re.findall(r"`(\w+)`", recipes) == list(RECIPES)
    assert sorted(re.findall(r"`(\w+)`", data)) == sorted(DATASETS)
    assert re.findall(r"`(\w+)`", views) == list(VIEW_LABELS)
    steps = re.search(r"targeted L∞ PGD attack on the trained network after t = ([\d, ]+) steps", text).group(1)
    assert [int(t) for t in steps.split(", ")] == list(ATTACK_STEPS)


def test_the_dependencies_section_names_every_dependency_pyproject_requires():
    """Dependencies says why each library is there; one pyproject.toml requires (numpy was) and
    the section does not name is a dependency nobody is told the reason for."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = project["dependencies"] + [d for ds in project["optional-dependencies"].values() for d in ds]
    section = _section("Dependencies").lower()
    names = [re.match(r"[\w.-]+", d).group(0) for d in required]
    assert len(names) > 10 and [n for n in names if n.lower() not in section] == []


def test_the_contents_link_every_section_by_its_github_anchor():
    """A section renamed, added or dropped leaves Contents with a dead link or a gap; anchors as
    GitHub makes them (lower case, punctuation but `-` and `_` dropped, spaces as `-`)."""
    import re

    text = (ROOT / "README.md").read_text()
    headings = [h for h in re.findall(r"^## (.+)$", text, flags=re.M) if h != "Contents"]
    anchors = [re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings]
    contents = _section("Contents")
    assert re.findall(r"^- \[(.+?)\]\(#([\w-]+)\)$", contents, flags=re.M) == list(zip(headings, anchors))
    assert sorted(set(re.findall(r"\]\(#([\w-]+)\)", text)) - set(anchors)) == []  # links in the prose too
