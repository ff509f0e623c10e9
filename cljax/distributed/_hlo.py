"""Collectives of a compiled program, read from its optimised HLO text.

Each collective (all-reduce, all-gather, reduce-scatter, all-to-all,
collective-permute, and their async ``-start`` forms) is reported with the bytes
of the array it moves and its loop depth: how many ``while`` bodies enclose it
(the Newton loop of the projection is a ``while``).  Bytes are the payload: the
reduced array for an all-reduce, the gathered (output) array for an all-gather,
the input for a reduce-scatter; what a ring implementation puts on the wire is
this times 2(n−1)/n (all-reduce) or (n−1)/n (all-gather) for n participants.
Collectives inside a ``conditional`` branch count as if the branch ran.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2,
                "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8,
                "c128": 16}
_KINDS = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")
_OP = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*(.*?)\s(" + "|".join(_KINDS)
                 + r")(-start)?\(")
_ARRAY = re.compile(r"\b(" + "|".join(_DTYPE_BYTES) + r")\[([\d,]*)\]")
_CALLED = re.compile(r"\b(body|condition|to_apply|calls|true_computation|false_computation)"
                     r"=%?([\w.\-]+)")
_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}")


class Collective(NamedTuple):
    """One collective op: its kind, the array shapes it moves, bytes, loop depth."""

    kind: str
    shapes: tuple
    bytes: int
    loop_depth: int
    computation: str


def _arrays(type_text):
    out = []
    for dtype, dims in _ARRAY.findall(type_text):
        size = 1
        for d in filter(None, dims.split(",")):
            size *= int(d)
        out.append((f"{dtype}[{dims}]", size * _DTYPE_BYTES[dtype]))
    return out


def _computations(text):
    """{name: [lines]} and the entry computation's name."""
    comps, entry, name = {}, None, None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith("{"):
            head = line.split("(", 1)[0].split()
            is_entry = head[0] == "ENTRY"
            name = head[-1].lstrip("%")
            comps[name] = []
            if is_entry:
                entry = name
        elif line.startswith("}"):
            name = None
        elif name is not None:
            comps[name].append(line)
    return comps, entry


def collectives(hlo_text: str) -> list[Collective]:
    """Every collective of an optimised HLO module (``compiled.as_text()``)."""
    comps, entry = _computations(hlo_text)
    if entry is None:
        raise ValueError("no ENTRY computation in the HLO text")
    depth = {entry: 0}
    order = [entry]
    found = []
    while order:
        comp = order.pop()
        for line in comps.get(comp, ()):
            for role, callee in _CALLED.findall(line):
                inner = depth[comp] + (1 if role in ("body", "condition") else 0)
                if callee in comps and depth.get(callee, -1) < inner:
                    depth[callee] = inner
                    order.append(callee)
            for group in _BRANCHES.findall(line):
                for callee in (c.strip().lstrip("%") for c in group.split(",")):
                    if callee in comps and depth.get(callee, -1) < depth[comp]:
                        depth[callee] = depth[comp]
                        order.append(callee)
    for comp, d in depth.items():
        for line in comps[comp]:
            m = _OP.match(line)
            if not m:
                continue
            type_text, kind, start = m.groups()
            arrays = _arrays(type_text)
            if start and kind == "all-gather" and len(arrays) > 1:
                arrays = arrays[len(arrays) // 2:]  # (inputs..., outputs...)
            elif start and len(arrays) > 1 and kind != "all-reduce":
                arrays = arrays[-1:]
            found.append(Collective(kind, tuple(s for s, _ in arrays),
                                    sum(b for _, b in arrays), d, comp))
    return found


def bytes_per_run(ops: list[Collective], loop_trips: int) -> dict:
    """Bytes moved by one run whose loops (depth 1) take ``loop_trips`` trips:
    outside + per_trip × trips (deeper loops are reported, not multiplied)."""
    outside = sum(op.bytes for op in ops if op.loop_depth == 0)
    per_trip = sum(op.bytes for op in ops if op.loop_depth == 1)
    deeper = sum(op.bytes for op in ops if op.loop_depth > 1)
    return {"outside_loop": outside, "per_iteration": per_trip, "nested_loops": deeper,
            "iterations": int(loop_trips), "total": outside + per_trip * int(loop_trips)}
