"""Where a report's files go, and `--all`.

Names: `<dir>/<name>.<fmt>` and `<dir>/figures/<name>_<figure>.png|svg`, where `<dir>` is the run
store (`results/` by default, so the committed tables sit beside the runs they come from) and
`<name>` names the table (suite.report.names): the spec, its preset, the command line's overrides
and metrics other than the spec's (`san_main.smoke+epochs=1.md`, `quick@top5_err.md`), so a smoke
table never overwrites the real one, nor a table of overridden runs or other metrics the preset's own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from suite import files
from suite.errors import SuiteError, shell_path, unknown
from suite.report import formats as fmt
from suite.report import plots
from suite.report.names import report_name
from suite.report.tables import Report

DEFAULT_FORMATS = ("md", "csv")
FIGURES = "figures"


def parse_formats(text: str | None) -> list[str]:
    """`md,csv` -> ["md", "csv"]; None -> []."""
    if text is None:
        return []
    names = [f.strip() for f in text.split(",") if f.strip()]
    for name in names:
        if name not in fmt.FORMATS:
            raise unknown("format", name, fmt.FORMATS, key="--format")
    if not names:
        raise SuiteError("name at least one format", key="--format", choices=fmt.FORMATS)
    return list(dict.fromkeys(names))


def _figures(report: Report) -> list[plots.Plot]:
    """The report's figures; why any is missing goes into its notes (once)."""
    figures, notes = plots.figures(report)
    report.notes += [n for n in notes if n not in report.notes]
    return figures


def table_paths(report: Report, formats: Sequence[str], directory: Path | None = None) -> list[Path]:
    directory = Path(directory) if directory is not None else report.out
    return [directory / f"{report.name}.{name}" for name in formats]


def write(report: Report, formats: Sequence[str] = DEFAULT_FORMATS, directory: Path | None = None) -> list[Path]:
    """The report's tables in `formats` and its figures; plots that cannot be drawn become notes."""
    directory = Path(directory) if directory is not None else report.out
    directory.mkdir(parents=True, exist_ok=True)  # a report's output: made here, as no record's folder is
    sweep(directory)
    return _write(report, formats, directory)


def sweep(directory: Path) -> None:
    """Remove what a report killed mid-write left in `directory` and its figures (`files.sweep`):
    once a command, before its first write there (`write_all` lists the store once, not once a table)."""
    for folder in (directory, directory / FIGURES):
        files.sweep(folder)


def _write(report: Report, formats: Sequence[str], directory: Path) -> list[Path]:
    """`write` into `directory`, which is there and swept."""
    figures = _figures(report)
    paths: list[Path] = []
    pngs = []  # (title, alt text, bytes of the PNG just written): the HTML embeds them without drawing again
    for plot in figures:
        png, svg = plot.save(directory / FIGURES, report.name)
        paths += [png, svg]
        pngs.append((plot.title, plot.alt, png.read_bytes()))
    # An earlier report's figure of data no longer there goes, whatever formats are written now: a
    # stale picture beside a current table (the README embeds quick's) misleads more than a dead link.
    for name in set(plots.NAMES) - {p.name for p in figures}:
        for suffix in ("png", "svg"):
            (directory / FIGURES / f"{report.name}_{name}.{suffix}").unlink(missing_ok=True)
    for name in formats:
        if name == "md":
            links = [(p.alt, f"{FIGURES}/{report.name}_{p.name}.svg") for p in figures]
            text = fmt.markdown(report, links)
        elif name == "html":
            text = fmt.page(report, pngs)
        else:
            text = fmt.render(report, name)
        path, = table_paths(report, [name], directory)
        files.write_text(path, text)
        paths.append(path)
    return paths


def write_to(report: Report, target: str, formats: Sequence[str] = ()) -> str:
    """One format to one file (`-`: stdout): the named format, else the file's suffix, else md.
    Figures only appear in HTML (embedded); returns the format used."""
    if len(formats) > 1:
        raise SuiteError(f"--to writes one format, got {','.join(formats)}", key="--format")
    if target != "-":
        _check_store_file(report, Path(target))
        files.check_writable(Path(target), key="--to")
    if formats:
        name = formats[0]
    elif target == "-":
        name = "md"
    else:
        suffix = Path(target).suffix.lower()
        if suffix not in fmt.SUFFIXES:
            raise SuiteError(f"cannot tell the format from {target!r}: pass --format", key="--to",
                             choices=fmt.FORMATS)
        name = fmt.SUFFIXES[suffix]
    if name == "html":
        figures = _figures(report)
        text = fmt.page(report, [(p.title, p.alt, p.png()) for p in figures])
    else:
        text = fmt.render(report, name)
    if target == "-":
        sys.stdout.write(text)
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)  # --to in a new folder: a report's output
        files.sweep(Path(target).parent)  # what a report killed mid-write left there
        files.write_text(Path(target), text)
    return name


def _check_store_file(report: Report, target: Path) -> None:
    """A `--to` table in the store's own folder is one of the files `suite report` names after their
    runs, which it and `--all` rewrite or remove as those runs': only this report's own name may go
    there (and only for the spec file that holds that name in the store), or another command's
    table would be overwritten, or later this one taken for another's runs."""
    from suite.ablations import names

    if target.suffix[1:] not in fmt.FORMATS or target.parent.resolve() != report.out.resolve():
        return
    if target.stem != report.name:
        raise SuiteError(f"{shell_path(report.out)} holds the tables `suite report` names after their runs, and "
                         f"{target.name} is not this report's ({report.name}.{target.suffix[1:]}): `suite report` "
                         "or `--all` would overwrite or remove it as another's; write --to elsewhere",
                         file=str(target), key="--to")
    names.claim(report.out, report.spec)


def write_all(out: Path, *, preset: str | None = None, formats: Sequence[str] = DEFAULT_FORMATS,
              metrics: Sequence[str] | None = None, say: Callable[[str], None] = lambda line: None,
              ) -> tuple[list[Path], list[str], list[str]]:
    """Every table that has at least one done run (each spec without a preset and under each of
    its presets, or only under `preset`), then `complexity.md`. A preset whose runs are all the
    spec's own (it sets only what the spec has since come to set) has no table of its own, and once
    the spec's table is written its files from before (when its runs differed) are removed: that table
    shows those runs as they are now. Tables of runs with overrides, or of metrics other than these
    (`--metric`), have names of their own, which this neither writes nor removes. A spec
    (or preset) that fails to load, expand or tabulate is skipped, so one broken file never keeps
    the others' tables from being written. `say(line)` is called as each file is written or removed. Returns the paths, the
    errors of what was skipped, and the done runs of the store that no table covers (run with
    command-line overrides, another preset, or a spec file outside the spec folder)."""
    from suite import ablations, store
    from suite.report import complexity as cx
    from suite.report import tables

    paths: list[Path] = []
    errors: list[str] = []
    covered: set[str] = set()
    found = store.scan(out)  # once, for every table: where each table's runs an older version stored are
    sweep(out)  # once, for every table and complexity.md
    for name in ablations.list():
        try:
            spec = ablations.load(name)
        except SuiteError as err:
            errors.append(str(err))
            continue
        own: set[str] = set()  # the spec's runs, once its table is written here: those its presets' tables may repeat
        for p in [preset] if preset is not None else [None, *spec.presets]:
            if p is not None and p not in spec.presets:
                continue
            try:
                runs = ablations.expand(spec, preset=p)
                if p is not None and own and {r.run_id for r in runs} <= own:
                    for path in _remove(out, report_name(name, p, metrics=tables.chosen_metrics(spec, metrics))):
                        say(f"removed {shell_path(path)}: preset {p}'s runs are all {name}'s own, in its table")
                    continue
                frame = tables.collect(out, spec, runs, found.into(out, [r.run_id for r in runs]))
                covered.update(frame["run_id"], frame.attrs["stored_as"].values())  # an older id's run is in a table
                if not (frame["status"] == "done").any():
                    continue
                report = tables.build(spec, runs, frame, out=out, preset=p, metrics=metrics)
            except SuiteError as err:
                errors.append(str(err) if p is None else f"{name} under --preset {p}: {err}")
                if p is None:  # the spec itself is broken: its presets would only repeat the error
                    break
                continue
            for path in _write(report, formats, out):
                paths.append(path)
                say(f"wrote {shell_path(path)}")
            if p is None:
                own = {r.run_id for r in runs}
    paths.append(cx.write(out))
    say(f"wrote {shell_path(paths[-1])}")
    return paths, errors, runs_outside(out, covered)


def _remove(directory: Path, name: str) -> list[Path]:
    """Delete the tables (every format) and figures named `name`; the paths that were there."""
    paths = [directory / f"{name}.{f}" for f in fmt.FORMATS]
    paths += [directory / FIGURES / f"{name}_{figure}.{suffix}" for figure in plots.NAMES for suffix in ("png", "svg")]
    gone = [p for p in paths if p.is_file()]
    for path in gone:
        path.unlink()
    return gone


def runs_outside(out: Path, covered: set[str]) -> list[str]:
    """The store's done runs that are not in `covered`: run with key=value overrides, another
    preset or a spec file elsewhere, so the command at hand leaves them out."""
    from suite import store

    runs_dir = Path(out) / "runs"
    return [rid for rid in store.stored_runs(out)
            if rid not in covered and store.state_of(runs_dir / rid).state == "done"]
