"""The ``cljax`` console script: it only dispatches to the experiments' subcommands.

``cljax demo`` (the default) runs a small Monte Carlo study of the paper's Example 2;
``cljax gaussian``, ``cljax covid``, ``cljax vision`` and ``cljax compare`` run the
paper's experiments.  Every subcommand takes ``--json``: one strict JSON object (RFC 8259) on
stdout, where a non-finite number is ``null`` and its JSON Pointer is listed under
``"non_finite"`` with what it was (``{"/sigmas/1.0/E_S_se": "nan"}``).
"""

from __future__ import annotations

import argparse
import importlib
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


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (and status 2), no usage dump.

    Subparsers inherit the class, so every subcommand's bad option reads
    ``cljax demo: error: argument --mu: must be a number > 0, got -1 (see cljax demo -h)``.
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cljax", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    for module in SUBCOMMAND_MODULES.values():
        importlib.import_module(module).add_parser(sub)
    from cljax.distributed import add_distributed_arguments

    for subparser in sub.choices.values():  # every subcommand runs multi-process too
        add_distributed_arguments(subparser)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(argv if argv is not None else sys.argv[1:])
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["demo"] + argv  # the default subcommand, with its options
    args = parser.parse_args(argv)
    from cljax.distributed import initialize_from_args, is_main_process
    from cljax.experiments._common import UsageError, dumps_strict

    try:
        initialize_from_args(args)
        out = args.run(args)
    except UsageError as err:
        print(f"cljax {args.command}: error: {err}", file=sys.stderr)
        return 2
    if not is_main_process():
        return 0  # only process 0 reports
    if args.json:
        # strict JSON (RFC 8259): NaN / inf become null, listed under "non_finite"
        print(dumps_strict(out))
    else:
        args.report(out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
