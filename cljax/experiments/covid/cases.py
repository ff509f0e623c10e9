"""COVID-19 case data for the SIR experiment (paper Section VI-A; DESIGN §6).

Reads the case table shipped with cljax (JHU CSSE, CC BY 4.0, see
``cljax/data/covid/README.md``) or a user's own Our World in Data
``owid-covid-data.csv`` (plain or gzipped; only the columns ``iso_code``,
``date``, ``total_cases``, ``new_cases`` and ``population`` are used), and builds
the SIR series of a window as the data README defines them:

    I(t) = Σ_{s=t−13}^{t} new_cases(s)       (14-day trailing sum)
    S(t) = population − total_cases(t)
    R(t) = population − S(t) − I(t)

A window is ``window_days`` days from ``start_date``, cut at the last day on
which I exceeds ``peak_fraction`` · max I inside the window; its SIR initial
condition is (S, I, R) on ``start_date``.  Two window protocols (``PROTOCOLS``):

* ``"cljax"`` (default): the cut keeps that last day above the threshold, and
  the target's N training days are its first N days;
* ``"authors"``: the authors' public scripts (``cutdata`` in
  crossLearningFunctional): ``I[:t2]`` with t2 the index of that last day, so
  the day itself is dropped, for every window (sources and the target's ground
  truth); the target's training series is its first N days cut the same way
  (N − 1 days while the wave rises).

Every new_cases value of a window and of its 13-day lookback must be in the
file (an error names the missing dates), finite, at most the population and,
unless ``allow_negative``, ≥ 0 (errors name the file, line and column), so I is
never a partial sum and never overflows.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import gzip
import io
import os
from dataclasses import dataclass
from importlib import resources
from typing import NamedTuple

import numpy as np

REQUIRED_COLUMNS = ("iso_code", "date", "total_cases", "new_cases", "population")
ROLLING_DAYS = 14
MIN_WINDOW_DAYS = 2
DEFAULT_PEAK_FRACTION = 0.8
PROTOCOLS = ("cljax", "authors")

_CASES_FILE = "covid_cases_jhu.csv.gz"
_WINDOWS_FILE = "paper_windows.csv"


def shipped_file(name: str):
    """A file of ``cljax/data/covid`` as an ``importlib.resources`` traversable."""
    return resources.files("cljax.experiments.covid").joinpath("data", name)


# ---------------------------------------------------------------------------
# Reading CSV files
# ---------------------------------------------------------------------------


def _open_text(path) -> io.TextIOBase:
    """Open a CSV (plain or gzipped) as text, with errors naming the file."""
    if hasattr(path, "open") and not isinstance(path, (str, os.PathLike)):
        raw = path.read_bytes()  # an importlib.resources traversable
        name = str(path)
    else:
        name = os.fspath(path)
        if not os.path.exists(name):
            raise FileNotFoundError(f"COVID data file {name!r} does not exist")
        if os.path.isdir(name):
            raise ValueError(f"COVID data file {name!r} is a directory, not a CSV file")
        with open(name, "rb") as f:
            raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{name!r} looks gzipped but cannot be decompressed: {err}") from err
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{name!r} is not a CSV text file (it is not UTF-8 text)") from err
    if "\x00" in text[:4096]:
        raise ValueError(f"{name!r} is not a CSV text file (it contains binary data)")
    return io.StringIO(text), name


def _csv_reader(path, required):
    stream, name = _open_text(path)
    try:
        reader = csv.reader(stream)
        header = next(reader, None)
    except csv.Error as err:
        raise ValueError(f"{name!r} is not a readable CSV file: {err}") from err
    if not header or len(header) < 2:
        raise ValueError(f"{name!r} is not a CSV file with a header row of comma-separated "
                         f"column names (first line: {header!r})")
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(f"{name!r} lacks the column(s) {', '.join(missing)}; "
                         f"it needs {', '.join(required)} (found: {', '.join(header)})")
    return reader, {c: header.index(c) for c in header}, name


def _data_rows(reader, name, width):
    """(line number, row) of every non-empty data row, each checked to have ``width`` fields."""
    try:
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < width:
                raise ValueError(f"{name!r} line {line}: {len(row)} fields, expected "
                                 f"at least {width}")
            yield line, row
    except csv.Error as err:
        raise ValueError(f"{name!r} is not a readable CSV file: {err}") from err


def _parse_date(text, what):
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError as err:
        raise ValueError(f"{what}: {text!r} is not a date in YYYY-MM-DD form") from err


def _parse_number(text, what):
    text = text.strip()
    if text == "":
        return np.nan
    try:
        return float(text)
    except ValueError as err:
        raise ValueError(f"{what}: {text!r} is not a number") from err


# ---------------------------------------------------------------------------
# The case table
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CountryCases:
    """One country's daily series on a gap-free daily grid from ``first_date``.

    Days absent from the file have ``new_cases`` = NaN and ``total_cases`` = NaN.
    ``lines`` holds each day's line number in ``source`` (0 where absent), for errors.
    """

    iso_code: str
    location: str
    first_date: dt.date
    total_cases: np.ndarray
    new_cases: np.ndarray
    population: np.ndarray
    lines: np.ndarray | None = None
    source: str = ""

    def where(self, k: int, column: str) -> str:
        """'FILE line L, column C' of day index ``k`` (for error messages)."""
        line = int(self.lines[k]) if self.lines is not None else 0
        if not line:
            return f"{self.iso_code} on {self.first_date + dt.timedelta(days=int(k))}"
        return f"{self.source!r} line {line}, column {column}"

    @property
    def last_date(self) -> dt.date:
        return self.first_date + dt.timedelta(days=len(self.total_cases) - 1)


@dataclass(frozen=True)
class CaseTable:
    """Daily case series by ISO code, read by :func:`load_cases`."""

    source: str
    countries: dict  # iso_code -> CountryCases
    locations: dict  # iso_code -> location name (every code in the file)

    def country(self, iso_code: str) -> CountryCases:
        """The series of ``iso_code``; unknown codes raise with close matches."""
        code = str(iso_code).strip()
        if code in self.countries:
            return self.countries[code]
        if code in self.locations:
            raise ValueError(f"ISO code {code!r} is in {self.source!r} but was not loaded "
                             "(load_cases(..., countries=...) left it out)")
        raise ValueError(f"unknown ISO code {code!r} in {self.source!r}"
                         + _suggestion(code, self.locations))


def _suggestion(code, locations) -> str:
    codes = sorted(locations)
    close = difflib.get_close_matches(code.upper(), codes, n=5, cutoff=0.5)
    by_name = {name.lower(): iso for iso, name in locations.items() if name}
    for name in difflib.get_close_matches(code.lower(), list(by_name), n=3, cutoff=0.6):
        if by_name[name] not in close:
            close.append(by_name[name])
    if not close:
        return f"; it has {len(codes)} codes, e.g. {', '.join(codes[:8])}"
    return "; did you mean " + ", ".join(
        f"{c} ({locations[c]})" if locations.get(c) else c for c in close) + "?"


def load_cases(path=None, countries=None) -> CaseTable:
    """Read the shipped case table (``path=None``) or an OWID-style CSV file.

    Args:
      path: ``None`` for the data shipped with cljax, else a path to a CSV file
        (optionally gzipped) with the columns ``iso_code``, ``date``,
        ``total_cases``, ``new_cases``, ``population`` (``location`` optional).
      countries: ISO codes to keep (all if ``None``); unknown codes raise.
    """
    source = shipped_file(_CASES_FILE) if path is None else path
    reader, col, name = _csv_reader(source, REQUIRED_COLUMNS)
    keep = None if countries is None else {str(c).strip() for c in countries}
    i_iso, i_date = col["iso_code"], col["date"]
    i_tot, i_new, i_pop = col["total_cases"], col["new_cases"], col["population"]
    i_loc = col.get("location")
    width = max(col.values()) + 1
    rows: dict[str, list] = {}
    locations: dict[str, str] = {}
    for line, row in _data_rows(reader, name, width):
        iso = row[i_iso].strip()
        if iso not in locations:
            locations[iso] = row[i_loc].strip() if i_loc is not None else ""
        if keep is None or iso in keep:
            rows.setdefault(iso, []).append(
                (row[i_date], row[i_tot], row[i_new], row[i_pop], line))
    if not locations:
        raise ValueError(f"{name!r} has a header but no data rows")
    if keep is not None:
        for code in sorted(keep - set(rows)):
            raise ValueError(f"unknown ISO code {code!r} in {name!r}"
                             + _suggestion(code, locations))
    table = {iso: _country(iso, locations[iso], r, name) for iso, r in rows.items()}
    return CaseTable(source=name, countries=table, locations=locations)


def _country(iso, location, rows, name) -> CountryCases:
    dates = [_parse_date(r[0], f"{name!r} line {r[4]}, column date") for r in rows]
    first, last = min(dates), max(dates)
    n = (last - first).days + 1
    total = np.full(n, np.nan)
    new = np.full(n, np.nan)
    pop = np.full(n, np.nan)
    lines = np.zeros(n, np.int64)
    for d, (_, t, c, p, line) in zip(dates, rows):
        k = (d - first).days
        if lines[k]:
            raise ValueError(f"{name!r} line {line}: {iso} has the date {d} twice")
        lines[k] = line
        where = f"{name!r} line {line}"
        total[k] = _parse_number(t, f"{where}, column total_cases")
        new[k] = _parse_number(c, f"{where}, column new_cases")
        pop[k] = _parse_number(p, f"{where}, column population")
    return CountryCases(iso, location, first, total, new, pop, lines, name)


# ---------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------


class WindowSpec(NamedTuple):
    """One row of the windows table."""

    iso_code: str
    start_date: dt.date
    window_days: int
    role: str


ROLES = ("target", "source")


def load_windows(path=None) -> tuple[WindowSpec, ...]:
    """The windows table: ``iso_code,start_date,window_days[,role]`` per row.

    ``role`` is ``target`` or ``source`` (all ``source`` without the column);
    :func:`target_of` picks the target.  ``path=None`` reads the paper's
    15-country table shipped with cljax (target ARG).
    """
    source = shipped_file(_WINDOWS_FILE) if path is None else path
    reader, col, name = _csv_reader(source, ("iso_code", "start_date", "window_days"))
    width = max(col[c] for c in ("iso_code", "start_date", "window_days", "role")
                if c in col) + 1
    out = []
    for line, row in _data_rows(reader, name, width):
        where = f"{name!r} line {line}"
        try:
            days = int(row[col["window_days"]])
        except ValueError as err:
            raise ValueError(f"{where}, column window_days: {row[col['window_days']]!r} "
                             "is not an integer") from err
        if days < MIN_WINDOW_DAYS:
            raise ValueError(f"{where}: window_days = {days} is too few; a SIR fit needs "
                             f"at least {MIN_WINDOW_DAYS} days")
        role = row[col["role"]].strip().lower() if "role" in col else "source"
        if role not in ROLES:
            raise ValueError(f"{where}, column role: {row[col['role']]!r} is not one of "
                             f"{', '.join(ROLES)}")
        out.append(WindowSpec(row[col["iso_code"]].strip(),
                              _parse_date(row[col["start_date"]], f"{where}, column start_date"),
                              days, role))
    if not out:
        raise ValueError(f"{name!r} has no windows")
    codes = [w.iso_code for w in out]
    dup = sorted({c for c in codes if codes.count(c) > 1})
    if dup:
        raise ValueError(f"{name!r} lists {', '.join(dup)} more than once")
    return tuple(out)


def target_of(specs) -> str:
    """ISO code of the one window whose role is ``target``; raises if none or several."""
    targets = [w.iso_code for w in specs if w.role == "target"]
    if len(targets) != 1:
        found = "no row" if not targets else f"{len(targets)} rows ({', '.join(targets)})"
        raise ValueError(f"the windows table has {found} with role = target; mark exactly "
                         "one, or name the target explicitly (--target ISO)")
    return targets[0]


class CountryWindow(NamedTuple):
    """The SIR series of one country's window (counts of people, daily).

    ``infected``, ``susceptible``, ``recovered`` cover the cut window (``days``
    long); ``full_days`` is the window length before the cut.
    """

    iso_code: str
    location: str
    start_date: dt.date
    population: float
    infected: np.ndarray
    susceptible: np.ndarray
    recovered: np.ndarray
    full_days: int

    @property
    def days(self) -> int:
        return len(self.infected)

    @property
    def initial_condition(self) -> tuple[float, float, float]:
        """(S, I, R) on the start date."""
        return float(self.susceptible[0]), float(self.infected[0]), float(self.recovered[0])

    @property
    def dates(self) -> list[dt.date]:
        return [self.start_date + dt.timedelta(days=k) for k in range(self.days)]


def sir_series(cases: CountryCases, start_date, window_days: int,
               allow_negative: bool = False):
    """(I, S, R, population) for ``window_days`` days from ``start_date`` (uncut).

    Raises, naming the file, line and column, on a new_cases value of the window
    or its lookback that is not finite, exceeds the population or (unless
    ``allow_negative``: data corrections) is negative, and on a total_cases value
    that is not finite.
    """
    start = start_date if isinstance(start_date, dt.date) else _parse_date(start_date,
                                                                           "start_date")
    window_days = int(window_days)
    if window_days < MIN_WINDOW_DAYS:
        raise ValueError(f"window_days = {window_days} is too few for {cases.iso_code}; "
                         f"a SIR fit needs at least {MIN_WINDOW_DAYS} days")
    end = start + dt.timedelta(days=window_days - 1)
    if start < cases.first_date or end > cases.last_date:
        raise ValueError(
            f"the window {start} .. {end} of {cases.iso_code} is outside its data, which "
            f"covers {cases.first_date} .. {cases.last_date}")
    k0 = (start - cases.first_date).days
    lookback = start - dt.timedelta(days=ROLLING_DAYS - 1)
    if k0 < ROLLING_DAYS - 1:
        raise ValueError(
            f"{cases.iso_code}: I on {start} is the sum of new_cases over {lookback} .. "
            f"{start}, but the data start on {cases.first_date}; start the window on "
            f"{cases.first_date + dt.timedelta(days=ROLLING_DAYS - 1)} or later")
    new = cases.new_cases[k0 - (ROLLING_DAYS - 1):k0 + window_days]
    if np.any(np.isnan(new)):
        missing = [str(lookback + dt.timedelta(days=int(k)))
                   for k in np.flatnonzero(np.isnan(new))]
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ValueError(f"{cases.iso_code}: new_cases is missing on {', '.join(missing[:5])}"
                         f"{more}, inside the window {start} .. {end} or its "
                         f"{ROLLING_DAYS - 1}-day lookback from {lookback}")
    idx = np.arange(k0, k0 + window_days)
    total = cases.total_cases[idx]
    pop = cases.population[k0]
    if not np.isfinite(pop) or pop <= 0:
        raise ValueError(f"{cases.where(k0, 'population')}: population of {cases.iso_code} "
                         f"on {start} is {pop}; it must be a number > 0")
    first = k0 - (ROLLING_DAYS - 1)
    span = f"the window {start} .. {end} of {cases.iso_code} or its lookback"
    for j, value in enumerate(new):
        if not np.isfinite(value) or abs(value) > pop:
            what = "is not finite" if not np.isfinite(value) else (
                f"exceeds the population {pop:.0f}")
            raise ValueError(f"{cases.where(first + j, 'new_cases')}: new_cases = {value:g} "
                             f"{what} (inside {span})")
        if value < 0 and not allow_negative:
            raise ValueError(f"{cases.where(first + j, 'new_cases')}: new_cases = {value:g} "
                             f"is negative (inside {span}); data corrections are refused "
                             "unless allowed (--allow-negative-cases)")
    csum = np.concatenate([[0.0], np.cumsum(new)])
    infected = csum[ROLLING_DAYS:] - csum[:-ROLLING_DAYS]
    if np.any(np.isnan(total)):
        bad = start + dt.timedelta(days=int(np.flatnonzero(np.isnan(total))[0]))
        raise ValueError(f"{cases.iso_code}: total_cases is missing on {bad}, inside the "
                         f"window {start} .. {end}")
    if np.any(~np.isfinite(total)):
        j = int(np.flatnonzero(~np.isfinite(total))[0])
        raise ValueError(f"{cases.where(k0 + j, 'total_cases')}: total_cases = {total[j]:g} "
                         f"is not finite (inside the window {start} .. {end} of "
                         f"{cases.iso_code})")
    susceptible = pop - total
    recovered = pop - susceptible - infected
    return infected, susceptible, recovered, float(pop)


def check_protocol(protocol: str) -> str:
    """``protocol`` if it is one of :data:`PROTOCOLS`, else a ValueError naming them."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    return protocol


def cut_length(infected: np.ndarray, peak_fraction: float = DEFAULT_PEAK_FRACTION,
               protocol: str = "cljax") -> int:
    """Days kept by the cut at ``peak_fraction`` · max I.

    t2 = the last day on which I > peak_fraction · max I; ``"cljax"`` keeps days
    0..t2 (t2 + 1 days), ``"authors"`` keeps ``I[:t2]`` (t2 days), as their
    ``cutdata``.  A series with no day above the threshold (all ≤ 0) is kept whole.
    """
    check_protocol(protocol)
    above = np.flatnonzero(infected > peak_fraction * np.max(infected))
    if not above.size:
        return len(infected)
    return int(above[-1]) + (1 if protocol == "cljax" else 0)


def build_window(table: CaseTable, iso_code: str, start_date, window_days: int,
                 peak_fraction: float | None = DEFAULT_PEAK_FRACTION,
                 protocol: str = "cljax", allow_negative: bool = False) -> CountryWindow:
    """The cut SIR window of one country (``peak_fraction=None``: no cut).

    ``protocol``: ``"cljax"`` or ``"authors"`` (:func:`cut_length`);
    ``allow_negative``: accept negative new_cases (data corrections).
    """
    cases = table.country(iso_code)
    infected, susceptible, recovered, pop = sir_series(cases, start_date, window_days,
                                                       allow_negative)
    keep = (len(infected) if peak_fraction is None
            else cut_length(infected, peak_fraction, protocol))
    if keep < MIN_WINDOW_DAYS:
        raise ValueError(f"{iso_code}: the window from {start_date} keeps only {keep} day(s) "
                         f"after the cut at {peak_fraction} of its peak; a SIR fit needs at "
                         f"least {MIN_WINDOW_DAYS}")
    start = start_date if isinstance(start_date, dt.date) else _parse_date(start_date,
                                                                           "start_date")
    return CountryWindow(cases.iso_code, cases.location, start, pop, infected[:keep],
                         susceptible[:keep], recovered[:keep], len(infected))


def build_windows(table: CaseTable | None = None, windows=None,
                  peak_fraction: float | None = DEFAULT_PEAK_FRACTION,
                  protocol: str = "cljax", allow_negative: bool = False
                  ) -> tuple[CountryWindow, ...]:
    """Every window of a windows table (default: the paper's 15), cut (:func:`build_window`)."""
    check_protocol(protocol)
    specs = load_windows() if windows is None else windows
    if table is None:
        table = load_cases(countries=[w.iso_code for w in specs])
    return tuple(build_window(table, w.iso_code, w.start_date, w.window_days, peak_fraction,
                              protocol, allow_negative)
                 for w in specs)
