"""Rendering a Report: GitHub Markdown, CSV (the tidy runs), LaTeX (booktabs) and one
self-contained HTML page (figures embedded as base64 PNG, no external files or links).

The Markdown and LaTeX renderers are written out rather than taken from pandas (`to_markdown`,
`Styler.to_latex`) because the tables have grouped column headers, blank-versus-missing cells and
notes that must survive unchanged into README splices; the output is deterministic (no dates), so
regenerated files only change when the numbers do.
"""

from __future__ import annotations

import base64
import html
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from suite.metrics import ATTACK_METRICS, error
from suite.report.tables import Report, Table, failed_runs

FORMATS = ("md", "csv", "tex", "html")
SUFFIXES = {".md": "md", ".markdown": "md", ".csv": "csv", ".tex": "tex", ".html": "html", ".htm": "html"}
LEGEND = ("Cells: mean ± std (n) over the done runs' seeds; — no value (run not done, or not measured); "
          "blank: no paper value, or not in the grid.")


def render(report: Report, fmt: str, figures: Sequence[tuple[str, str, bytes]] = ()) -> str:
    """`fmt` in FORMATS; `figures` (title, alt text, PNG bytes) only matter for HTML."""
    if fmt == "md":
        return markdown(report)
    if fmt == "csv":
        return csv(report)
    if fmt == "tex":
        return latex(report)
    if fmt == "html":
        return page(report, figures)
    raise ValueError(fmt)


# ------------------------------------------------------------------------------------- markdown
def md_escape(text: str) -> str:
    """`text` shown literally in GitHub Markdown, inline (a table cell, a note, a paragraph): a
    spec's label `*bold*` or `_a_` was set in italics, `` `code` `` as code, `<b>` read as an HTML tag
    (it vanished), `$x$` as math, `a|b` ended its cell and `&lt;` read as `<`. Every character GFM
    reads as markup is backslash-escaped (CommonMark renders an escaped punctuation character as
    itself), except `_` between two letters or digits (`ran56_cifar`, `x_1`), which is never
    emphasis; a `#`, `>`, `- `, `+ ` or `1. ` opening the text would start a heading, a quote or a
    list, so its mark is escaped, and a line break would start a new block (or end a row): it is a
    space. Numbers (`-1.5`) stay as written."""
    text = _MD_INLINE.sub(r"\\\g<0>", " ".join(text.splitlines()))
    return _MD_BLOCK.sub(r"\g<1>\\\g<2>", text, count=1)


_MD_INLINE = re.compile(r"[\\`*\[\]<|$~&]|(?<![^\W_])_|_(?![^\W_])")
_MD_BLOCK = re.compile(r"^(\s*\d*)([#>]|[-+.)](?=\s|$))")  # `# h`, `> q`, `- i`, `+ i`, `1. i`, `1) i`


def markdown_table(table: Table) -> str:
    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(map(md_escape, cells)) + " |"

    rule = ["---:" if n else "---" for n in table.numeric]
    return "\n".join([row(table.header), "|" + "|".join(rule) + "|", *(row(r) for r in table.body)])


def code_span(text: str) -> str:
    """`text` as Markdown code, whatever backticks it holds (CommonMark: a longer fence, padded)."""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def fragment(report: Report) -> str:
    """The table with its legend and notes: what a README splice holds."""
    lines = [markdown_table(report.table), "", md_escape(_legend(report))]
    lines += [f"- {md_escape(n)}" for n in report.notes]
    failed = failed_runs(report)
    if failed:
        lines += ["", f"Failed or stopped runs ({code_span(f'suite status {report.same_runs}')}, run in "
                      f"{md_escape(report.folder)}):"]
        lines += [f"- {code_span(f)}" for f in failed]
    return "\n".join(lines) + "\n"


def markdown(report: Report, figures: Sequence[tuple[str, str]] = ()) -> str:
    """The standalone page: title, description, the fragment and `figures` (alt text, path), each
    image's alt text saying what it plots for a reader who cannot see it. The spec's description,
    paper and the notes are plain text, shown as written, as in HTML."""
    title = report.title
    paper = ", ".join(str(v) for v in report.spec.paper.values())
    parts = [_generated(report), f"# {md_escape(title)}", ""]
    if report.spec.description:
        parts += [md_escape(report.spec.description), ""]
    if paper:
        parts += [f"Paper: {md_escape(paper)}.", ""]
    parts.append(fragment(report).rstrip("\n"))
    for alt, path in figures:
        parts += ["", f"![{md_escape(alt)}]({path})"]
    return "\n".join(parts) + "\n"


def _generated(report: Report) -> str:
    """The header comment of the Markdown and HTML pages, with the command that writes them again.
    A `-->` (or `--!>`) in a spec path or --out ended the comment there and showed the rest as text;
    shlex has single-quoted every word holding a `>`, so `-''-` splits the dashes and the shell
    still reads the word as written. Entities are not read in a comment: `'` stays `'`."""
    command = re.sub(r"-(?=-!?>)", "-''", report.command)
    folder = re.sub(r"-(?=-!?>)", "- ", report.folder)
    return f"<!-- generated by `{command}`, run in {folder}; do not edit -->"


def _legend(report: Report) -> str:
    axes = f"Rows: {', '.join(map(report.labels.heading, report.rows))}." if report.rows else ""
    if report.columns:
        axes += f" Column blocks: {', '.join(map(report.labels.heading, report.columns))}."
    kinds = [kind for kind, shown in (("Errors", any(map(error, report.metrics))),
                                      ("attack success rates", any(m in ATTACK_METRICS for m in report.metrics))) if shown]
    units = f" {' and '.join(kinds).capitalize()} in %." if kinds else ""
    compared = " Δ = measured − paper." if any(label.startswith("Δ ") for _, label in report.table.columns) else ""
    ranges = " Costs are the row's: lowest–highest where its column blocks differ." if report.table.ranges else ""
    return f"{axes} {LEGEND}{units}{compared}{ranges}".strip()


# ------------------------------------------------------------------------------------------ csv
def csv(report: Report) -> str:
    """The tidy frame: every run of the spec, one row each, raw per-seed values. Booleans are
    written `true`/`false`, as the table and `suite status` show them (pandas' `read_csv` reads
    them back as booleans, as it does `True`/`False`)."""
    runs = report.runs.copy()
    for name, column in runs.items():  # as object, so [null, 40] stays [, 40], not [, 40.0] as map would infer
        if column.dtype in (object, bool):
            runs[name] = pd.Series([_csv_value(v) for v in column], index=column.index, dtype=object)
    return runs.to_csv(index=False, lineterminator="\n")


def _csv_value(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, (bool, np.bool_)) else value


# ---------------------------------------------------------------------------------------- latex
_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        # LaTeX's default (OT1) text fonts print these as ¡, ¿ and —: a spec's label `<hi>` read `¡hi¿`
        "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
        "`": r"\textasciigrave{}",  # not an opening quote: `code` read ‘code’
        "-": "-{}", ",": ",{}"}  # before another: not the ligatures -- (–), --- (—) and ,, (T1's „)
_TEX_SYMBOLS = {"±": r"$\pm$", "×": r"$\times$", "—": "---", "–": "--", "Δ": r"$\Delta$", "−": "$-$",
                # math pdfLaTeX's utf8 input has no text glyph for (a label `≤ 5 px` stopped the document)
                "≤": r"$\leq$", "≥": r"$\geq$", "≠": r"$\neq$", "≈": r"$\approx$", "∞": r"$\infty$",
                "⊙": r"$\odot$", "∘": r"$\circ$", "⋅": r"$\cdot$", "′": r"$^\prime$", "√": r"$\surd$",
                "∑": r"$\sum$", "∏": r"$\prod$", "∈": r"$\in$", "ℓ": r"$\ell$", "∝": r"$\propto$",
                "⊗": r"$\otimes$", "⊕": r"$\oplus$", "∗": r"$\ast$", "≡": r"$\equiv$", "∼": r"$\sim$",
                "∓": r"$\mp$", "∂": r"$\partial$", "∇": r"$\nabla$", "←": r"$\leftarrow$", "⇒": r"$\Rightarrow$"}


_LATIN = dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΧο", "ABEZHIKMNOPTXo"))  # Greek letters LaTeX has no command for: alike Latin
# φ and ε are drawn open (loop, curve) as LaTeX's \varphi, \varepsilon; \phi and \epsilon are ϕ and ϵ
_VAR = {"phi": "varphi", "epsilon": "varepsilon"}


def _greek() -> dict[str, str]:
    """Greek letters as math (γ: $\\gamma$), which pdfLaTeX's utf8 input has no glyph for: a spec's
    label such as `Mapping γ` stopped the document."""
    out = {}
    for char in map(chr, [*range(0x391, 0x3AA), *range(0x3B1, 0x3CA)]):
        name = unicodedata.name(char, "unassigned")  # U+03A2
        word = name.split()[-1].lower().replace("lamda", "lambda")
        if name != "unassigned":
            out[char] = _LATIN.get(char) or (r"$\varsigma$" if "FINAL" in name else
                                             f"$\\{word.capitalize() if 'CAPITAL' in name else _VAR.get(word, word)}$")
    return out


_TEX_SYMBOLS |= {k: v for k, v in _greek().items() if k not in _TEX_SYMBOLS}
_TEX_RE = re.compile("|".join([r"[-,](?=[-,])", "[\"']", *(re.escape(k) for k in [*_TEX, *_TEX_SYMBOLS]
                                                             if k not in "-,")]))
_OPENS = " ([{/-\u2013\u2014"  # a quote after these (or first) opens: "a" is ``a'', as TeX sets quotes


_NEGATIVE = re.compile(r"(?<![\w.])-(?=\d)")  # a number's minus sign, typeset as one ($-$), not as a hyphen


def tex_escape(text: str) -> str:
    """`text` typeset by pdfLaTeX as written, in a table cell: its special characters escaped, the
    papers' symbols (Greek, ±, ×, −, ⊙, ...) as math, straight quotes as TeX's opening and closing
    ones (`"` printed ” at both ends, a backtick ‘), no ligature of `--` or `''`, one line (a blank
    line ends a cell with an error). A leading `[` or `*` is braced, else the `\\\\` or `\\midrule`
    before it read it as its optional argument (`[0, 1]` stopped the document, a leading `*`
    vanished). Other non-ASCII characters stay UTF-8."""
    text = _TEX_RE.sub(_tex_char, " ".join(text.splitlines()))
    return "{}" + text if text[:1] in ("[", "*") else text


def _tex_char(m: re.Match[str]) -> str:
    char = m.group()
    if char in "\"'":
        before = m.string[:m.start()].rstrip("\"'")  # after quotes that open, a quote opens: "'a'" is ``{}`a'{}''
        opening = not before or before[-1] in _OPENS
        quote = ("``" if opening else "''") if char == '"' else ("`" if opening else "'")
        after = m.string[m.end():m.end() + 1]
        return quote + "{}" if after and after in "\"'" else quote  # '' then ' is not the ligature '''
    return _TEX.get(char) or _TEX_SYMBOLS[char]


def latex(report: Report) -> str:
    """A booktabs `tabular` (to `\\input` into a table environment); grouped columns get a
    `\\multicolumn` header row with `\\cmidrule`s. Needs `\\usepackage{booktabs}` and pdfLaTeX's
    default setup (utf8 input, OT1 fonts) for all but the non-ASCII characters `tex_escape` leaves
    as UTF-8, which a comment lists."""
    t = report.table
    spec = "".join("r" if n else "l" for n in t.numeric)
    notes = [f"generated by `{report.command}`, run in {report.folder}; do not edit", _legend(report), *report.notes]
    failed = failed_runs(report)  # as comments, as the notes are: the tabular is what gets \input
    if failed:
        notes += [f"Failed or stopped runs (suite status {report.same_runs}, run in {report.folder}):",
                  *(f"  {f}" for f in failed)]
    lines = [f"\\begin{{tabular}}{{{spec}}}", r"\toprule"]
    if t.grouped:
        head, rules, col = [""] * len(t.index), [], len(t.index) + 1
        for group, width in _spans(t):
            head.append(f"\\multicolumn{{{width}}}{{c}}{{{tex_escape(group)}}}" if width > 1 or group else
                        tex_escape(group))
            if group:
                rules.append(f"\\cmidrule(lr){{{col}-{col + width - 1}}}")
            col += width
        lines.append(" & ".join(head) + r" \\")
        lines.append(" ".join(rules))
        names = t.index + [f for _, f in t.columns]
    else:
        names = t.header
    lines.append(" & ".join(tex_escape(n) for n in names) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(tex_escape(_NEGATIVE.sub("\u2212", c) if n else c) for c, n in zip(row, t.numeric)) + r" \\"
              for row in t.body]
    lines += [r"\bottomrule", r"\end{tabular}"]
    utf8 = sorted({c for line in lines for c in line if ord(c) > 127})
    if utf8:
        notes.append(f"Left as UTF-8: {' '.join(utf8)} (pdfLaTeX sets accented letters; it stops at a character "
                     r"it has no glyph for, naming it: \usepackage[T1]{fontenc} covers more, LuaLaTeX all).")
    return "\n".join([*(_comment(n) for n in notes), *lines]) + "\n"


def _comment(text: str) -> str:
    """`text` as one LaTeX comment line, as written (a command in it can be copied): a line break
    would end the comment and put the rest into the document."""
    return "% " + " ".join(text.splitlines())


def _spans(t: Table) -> list[tuple[str, int]]:
    """Consecutive column groups as (group, width); ungrouped columns stand alone."""
    spans: list[tuple[str, int]] = []
    for group, _ in t.columns:
        if spans and group and spans[-1][0] == group:
            spans[-1] = (group, spans[-1][1] + 1)
        else:
            spans.append((group, 1))
    return spans


# ----------------------------------------------------------------------------------------- html
_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{padding:.25em .6em;border-bottom:1px solid #ddd}
thead th{border-bottom:2px solid #444}td.n{text-align:right;font-variant-numeric:tabular-nums}
th.g{border-bottom:1px solid #888}img{max-width:100%;display:block;margin:1em 0}
.notes{color:#555}code{font-size:90%}"""


def html_table(t: Table) -> str:
    e = html.escape
    head = []
    if t.grouped:
        cells = [f"<th rowspan=2>{e(n)}</th>" for n in t.index]
        for group, width in _spans(t):
            cells.append(f'<th class=g colspan={width}>{e(group)}</th>' if group else "<th></th>")
        head.append("<tr>" + "".join(cells) + "</tr>")
        head.append("<tr>" + "".join(f"<th>{e(f)}</th>" for _, f in t.columns) + "</tr>")
    else:
        head.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr>")
    body = ["<tr>" + "".join(f"<td class=n>{e(c)}</td>" if n else f"<td>{e(c)}</td>"
                             for c, n in zip(row, t.numeric)) + "</tr>" for row in t.body]
    return "<table>\n<thead>\n" + "\n".join(head) + "\n</thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


def page(report: Report, figures: Sequence[tuple[str, str, bytes]] = ()) -> str:
    """One HTML file with everything inline: styles, the table, notes and the figures (title, alt
    text, PNG bytes): the title is the visible caption, the alt text what the figure plots."""
    e = html.escape
    title = report.title
    paper = ", ".join(str(v) for v in report.spec.paper.values())
    parts = ["<!DOCTYPE html>", _generated(report),
             '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(title)}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{e(title)}</h1>"]
    if report.spec.description:
        parts.append(f"<p>{e(report.spec.description)}</p>")
    if paper:
        parts.append(f"<p>Paper: {e(paper)}.</p>")
    parts += [html_table(report.table), f'<p class="notes">{e(_legend(report))}</p>', '<ul class="notes">']
    parts += [f"<li>{e(n)}</li>" for n in report.notes]
    parts.append("</ul>")
    failed = failed_runs(report)
    if failed:
        parts.append("<h2>Failed or stopped runs</h2><ul>" + "".join(f"<li><code>{e(f)}</code></li>" for f in failed)
                     + "</ul>")
    for caption, alt, png in figures:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<figure><img alt="{e(alt)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{e(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
