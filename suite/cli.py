"""The `suite` command: a thin argparse layer over the library; no logic of its own.

Each subcommand is a pair `_add_<name>(subparsers)` / `_<name>(args) -> int`. Library imports
happen inside the handlers so `suite --help` stays fast. A SuiteError (a mistake the user can fix)
is printed without a traceback and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from suite.errors import SuiteError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="suite", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_models,):
        add(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except SuiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------------------------- models
def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list registered models with their parameter counts")
    p.add_argument("pattern", nargs="*", default=["*"], help="fnmatch patterns (default: all)")
    p.add_argument("--options", action="store_true", help="also list each model's options and defaults")
    p.set_defaults(handler=_models)


def _models(args: argparse.Namespace) -> int:
    from suite.measure.complexity import count_params
    from suite.models import get_model_info, list_models

    names = list_models(args.pattern)
    if not names:
        raise SuiteError(f"no model matches {' '.join(args.pattern)!r}")
    print(f"{'model':<22} {'family':<8} {'input':>5} {'params (M)':>11}")
    for name in names:
        info = get_model_info(name)
        print(f"{name:<22} {info.family:<8} {info.input_size:>5} {count_params(name) / 1e6:>11.2f}")
        if args.options:
            for opt in info.options.values():
                choices = f"  {{{', '.join(map(str, opt.choices))}}}" if opt.choices else ""
                print(f"    {opt.name} = {opt.default!r}{choices}")
    return 0
