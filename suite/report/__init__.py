"""Reports of ablation runs: tables (Markdown, CSV, LaTeX, HTML) and figures, from the run store.

    suite report SPEC [--preset P] [k=v] [--metric M]
                                         results/SPEC[.P][+k=v][@M].md, .csv and figures/SPEC[.P][+k=v][@M]_*.png|svg
    suite report SPEC --to FILE|-        one format to one file or stdout
    suite report SPEC --into README.md   fill the <!-- suite:report SPEC --> block
    suite report --all                   every spec with a done run, and results/complexity.md

`tables` builds the frames (tidy runs, per-cell summaries, the pivot), `labels` names axes and
values as the papers do, `formats` renders them, `plots` draws the figures, `splice` edits
Markdown between markers, `names` names a report's table, `files` writes them, `complexity` writes
the model-complexity page.
"""

from suite.report.files import write, write_all, write_to
from suite.report.tables import Report, build, load

__all__ = ["Report", "build", "load", "write", "write_all", "write_to"]
