"""The ``cljax`` console script: it only dispatches to the experiments' subcommands.

``cljax demo`` (the default) runs a small Monte Carlo study of the paper's Example 2;
``cljax gaussian``, ``cljax covid``, ``cljax vision`` and ``cljax compare`` run the
paper's experiments.  Every subcommand takes ``--json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

# Each subcommand's module defines ``add_parser(subparsers)``, which adds its
# parser with ``set_defaults(run=f, report=g)``: ``f(args) -> dict`` does the
# work and ``g(dict)`` prints it for people; ``--json`` prints the dict instead.
# Every module is imported to build the parser, so they keep heavy imports
# (flax, matplotlib, tensorflow-datasets) inside their ``run`` functions.
SUBCOMMAND_MODULES: dict[str, str] = {
    "demo": "cljax.experiments.gaussian.demo",
    "gaussian": "cljax.experiments.gaussian.cli",
    "covid": "cljax.experiments.covid.cli",
    "vision": "cljax.experiments.vision.cli",
    "compare": "cljax.experiments.compare.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cljax", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    for module in SUBCOMMAND_MODULES.values():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(argv if argv is not None else sys.argv[1:])
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["demo"] + argv)
    from cljax.experiments._common import UsageError

    try:
        out = args.run(args)
    except UsageError as err:
        print(f"cljax {args.command}: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out))
    else:
        args.report(out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
