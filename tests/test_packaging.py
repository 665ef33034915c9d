"""The wheel a user installs elsewhere: what it holds, and that the installed suite finds its specs;
and the sources it is built from."""

import ast
import email
import email.message
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The first torch release with each torch API the suite calls that older releases lack (read from
# the releases' wheels): pip must not install the suite beside a torch it fails on at first use.
TORCH_APIS = {"torch.compiler.is_exporting": (2, 7)}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel .` builds, from a copy of the sources (setuptools writes build/ and
    *.egg-info next to what it builds; the checkout is left as it is). pip fetches the build
    backend as any install from source does."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("suite", "ablations"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(src)],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    (built,) = (tmp / "dist").glob("attention_suite-*.whl")
    return built


def test_the_wheel_holds_every_package_and_every_shipped_spec(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "suite").rglob("__init__.py")}
    assert {p for p in packages if f"{p}/__init__.py" not in names} == set()  # a new subpackage is not left out
    specs = sorted(p.name for p in (ROOT / "ablations").glob("*.yaml"))
    assert "quick.yaml" in specs
    assert [s for s in specs if f"suite/_specs/{s}" not in names] == []
    assert "suite/py.typed" in names  # the hints are there for a plugin's or a notebook's type checker
    assert not any("__pycache__" in n or n.startswith(("tests/", "results/")) for n in names)


def test_an_installed_suite_finds_its_specs_outside_the_checkout(wheel, tmp_path):
    """`suite run quick` after `pip install attention-suite`, in a folder with no ablations/."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    here = tmp_path / "elsewhere"
    here.mkdir()
    code = ("import suite, suite.ablations as a; print(suite.__file__); "
            "print(a.find('quick')); print(a.load('quick').name)")
    env = {k: v for k, v in os.environ.items() if k != "SUITE_ABLATIONS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=here,
                          env={**env, "PYTHONPATH": str(site)}, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    package, found, name = done.stdout.split("\n")[:3]
    assert Path(package).is_relative_to(site)  # the installed copy, not the checkout
    assert Path(found) == site / "suite" / "_specs" / "quick.yaml" and name == "quick"


def test_the_wheel_says_its_version_and_carries_its_licence(wheel):
    """One version, suite.__version__ (which every run records), and the licence text the metadata names."""
    import suite

    meta = _metadata(wheel)
    assert meta["Version"] == suite.__version__ and wheel.name.startswith(f"attention_suite-{suite.__version__}-")
    assert meta["License-Expression"] == "MIT" and meta["License-File"] == "LICENSE"
    names = zipfile.ZipFile(wheel).namelist()
    (licence,) = [n for n in names if n.endswith("/LICENSE") and ".dist-info/" in n]
    assert "MIT License" in zipfile.ZipFile(wheel).read(licence).decode()


def _floor(requirement: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.search(r">=\s*([0-9.]+)", requirement).group(1).split("."))


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        (meta,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(z.read(meta))


def test_the_torch_floor_has_every_torch_api_the_code_calls(wheel):
    requires = _metadata(wheel).get_all("Requires-Dist")
    torch = _floor(next(r for r in requires if re.match(r"torch\b(?!vision)", r)))
    vision = _floor(next(r for r in requires if r.startswith("torchvision")))
    sources = "\n".join(p.read_text() for p in (ROOT / "suite").rglob("*.py"))
    needed = {api: version for api, version in TORCH_APIS.items() if api in sources}
    assert {api: version for api, version in needed.items() if torch < version} == {}
    assert torch[:2] == (2, vision[1] - 15)  # torchvision 0.N is built for torch 2.(N - 15), one floor for both


def _distribution(name: str) -> str:
    """A distribution's name as PEP 503 compares them (PyYAML, pyyaml; scikit_learn, scikit-learn)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_library_the_code_imports_is_a_requirement_of_the_wheel(wheel):
    """A library imported but not required is installed only as long as some requirement happens to
    pull it in (numpy, through pandas and matplotlib): pip would let a user remove it or pin it to
    any version, and `suite` fail at its import."""
    import importlib.metadata

    imported: set[str] = set()
    for path in (ROOT / "suite").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    libraries = imported - set(sys.stdlib_module_names) - {"suite"}
    requires = {_distribution(re.match(r"[A-Za-z0-9._-]+", r).group())
                for r in _metadata(wheel).get_all("Requires-Dist") if "extra ==" not in r}
    installed = importlib.metadata.packages_distributions()  # import name -> the distributions that provide it
    assert {"torch", "yaml", "sklearn"} <= libraries  # what the check reads is the code's imports
    unrequired = {m: installed.get(m) for m in libraries
                  if not {_distribution(d) for d in installed.get(m, [])} & requires}
    assert unrequired == {}


def test_requires_python_is_one_where_a_slurm_job_imports_its_snapshot(wheel):
    """A job starts as `python -m submitit...` in the submitter's folder, usually the checkout, whose
    suite/ would come first on sys.path; PYTHONSAFEPATH=1 (suite.dispatch.slurm) keeps it off, but
    only from Python 3.11: on 3.10 every job fails its check that it runs the snapshot."""
    requires = _metadata(wheel)["Requires-Python"]
    assert "PYTHONSAFEPATH" in (ROOT / "suite" / "dispatch" / "slurm.py").read_text()
    assert _floor(requires) >= (3, 11)


def test_no_function_of_the_suite_has_a_mutable_default():
    """A `{}` or `[]` default is one object shared by every call: a function that ever wrote to it
    would change its own default for the next caller. Defaults that are only read are immutable
    (None, a tuple, a MappingProxyType), so that no one has to check which ones are written."""
    mutable = (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)
    found = []
    for path in sorted((ROOT / "suite").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
                found += [f"{path.relative_to(ROOT)}:{d.lineno}" for d in defaults
                          if isinstance(d, mutable) or (isinstance(d, ast.Call) and getattr(d.func, "id", None)
                                                         in ("dict", "list", "set", "bytearray"))]
    assert not found


@pytest.mark.parametrize("where", [".venv/lib/python3.11/site-packages", "env/site-packages", "results/code/0123abcd"])
def test_a_suite_that_no_checkout_tracks_records_no_commit_of_the_repository_around_it(tmp_path, monkeypatch, where):
    """An installed suite in the .venv of a user's own git project (ignored, or merely untracked), or a
    SLURM job's snapshot of one in a store inside that project, is in that repository's folder but not
    its code: the project's HEAD, recorded as the suite's commit, would tell runs apart by the user's
    own commits (and the reports' note of code versions with them)."""
    import suite
    from suite.dispatch import snapshot
    from suite.measure import env

    project = tmp_path / "project"
    package = project / where / "suite"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (project / ".gitignore").write_text(".venv/\n")
    (project / "train.py").write_text("print('mine')\n")
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", ".gitignore", "train.py"], ["commit", "-qm", "mine"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    monkeypatch.delenv("SUITE_GIT_COMMIT", raising=False)
    monkeypatch.setattr(suite, "PACKAGE_DIR", package)
    assert snapshot.git_state(package) == (None, None)
    assert "git_commit" not in env.code_version() and "git_dirty" not in env.code_version()
