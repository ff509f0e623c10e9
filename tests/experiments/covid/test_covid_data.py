"""The COVID-19 loader: series as the data README defines them, and its errors."""

import csv
import datetime as dt
import gzip

import numpy as np
import pytest

from cljax.experiments.covid import cases as cd
HEADER = "iso_code,continent,location,date,total_cases,new_cases,extra,population\n"


@pytest.fixture(scope="module")
def table():
    return cd.load_cases()


def _write_owid(path, rows, header=HEADER, gz=False):
    text = header + "".join(rows)
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def _toy_rows(iso="AAA", name="Aland", days=40, pop=1000.0):
    start = dt.date(2021, 1, 1)
    rows, total = [], 0.0
    for k in range(days):
        new = float(k + 1)
        total += new
        rows.append(f"{iso},X,{name},{start + dt.timedelta(days=k)},{total},{new},q,{pop}\n")
    return rows


def _set_field(rows, k, column, value):
    """Row k of the toy rows with field ``column`` (index in HEADER) replaced."""
    parts = rows[k].rstrip("\n").split(",")
    parts[column] = value
    rows[k] = ",".join(parts) + "\n"
    return rows


def _raw_peak(iso, start, days):
    """Max and argmax date of the 14-day sum of new_cases, read from the shipped CSV with
    the csv module alone (independent of cljax.experiments.covid.cases)."""
    new = {}
    with gzip.open(cd.shipped_file("covid_cases_jhu.csv.gz").open("rb"), "rt") as f:
        for row in csv.DictReader(f):
            if row["iso_code"] == iso:
                new[dt.date.fromisoformat(row["date"])] = float(row["new_cases"])
    sums = {}
    for k in range(days):
        day = start + dt.timedelta(days=k)
        sums[day] = sum(new[day - dt.timedelta(days=j)] for j in range(14))
    top = max(sums.values())
    return top, [d for d, v in sums.items() if v == top]


def test_shipped_windows_are_the_papers_fifteen():
    specs = cd.load_windows()
    assert len(specs) == 15
    assert specs[0] == cd.WindowSpec("ARG", dt.date(2021, 12, 31), 100, "target")
    assert {w.role for w in specs[1:]} == {"source"}
    assert dict((w.iso_code, w.window_days) for w in specs)["GBR"] == 55


def test_argentina_peak_matches_the_readme_and_the_raw_csv(table):
    w = cd.build_window(table, "ARG", "2021-12-31", 100)
    assert w.full_days == 100
    # stated by the data README (shared/data/covid/README.md: "its peak is on 2022-01-21,
    # 1,558,670 infected") and recomputed here from the raw shipped CSV
    raw_peak, raw_days = _raw_peak("ARG", dt.date(2021, 12, 31), 100)
    assert (raw_peak, raw_days) == (1_558_670, [dt.date(2022, 1, 21)])
    assert np.max(w.infected) == raw_peak
    assert w.dates[int(np.argmax(w.infected))] == raw_days[0]
    # the cut: the last kept day is above 0.8 max, the day after is not
    full = cd.sir_series(table.country("ARG"), w.start_date, 100)[0]
    assert full[w.days - 1] > 0.8 * full.max() >= full[w.days]


@pytest.mark.parametrize("iso,start", [("USA", "2021-07-25"), ("GBR", "2021-06-13"),
                                       ("JPN", "2021-08-04")])
def test_series_follow_the_definitions(table, iso, start):
    cases = table.country(iso)
    w = cd.build_window(table, iso, start, 30, peak_fraction=None)
    k0 = (w.start_date - cases.first_date).days
    new = np.nan_to_num(cases.new_cases)
    expected_i = [new[k0 + k - 13:k0 + k + 1].sum() for k in range(30)]
    np.testing.assert_array_equal(w.infected, expected_i)
    np.testing.assert_array_equal(w.susceptible, w.population - cases.total_cases[k0:k0 + 30])
    np.testing.assert_allclose(w.susceptible + w.infected + w.recovered, w.population)
    assert w.initial_condition == (w.susceptible[0], w.infected[0], w.recovered[0])


def test_every_shipped_window_builds_and_keeps_its_peak():
    windows = cd.build_windows()
    for w in windows:
        assert 2 <= w.days <= w.full_days
        assert np.argmax(w.infected) < w.days - 1 or w.days == w.full_days
        assert np.all(w.infected > 0)


def test_rolling_sum_needs_the_full_lookback_inside_the_data(tmp_path):
    t = cd.load_cases(_write_owid(tmp_path / "toy.csv", _toy_rows()))
    # the first window with a full 14-day lookback starts 13 days after the data
    w = cd.build_window(t, "AAA", "2021-01-14", 5, peak_fraction=None)
    np.testing.assert_array_equal(w.infected, [sum(range(k + 1, k + 15)) for k in range(5)])
    w = cd.build_window(t, "AAA", "2021-01-20", 3, peak_fraction=None)
    assert w.infected[0] == sum(range(7, 21))
    for start in ("2021-01-01", "2021-01-13"):
        with pytest.raises(ValueError, match=r"AAA: I on 2021-01-\d\d is the sum of new_cases "
                                             r"over 2020-12-.*data start on 2021-01-01.*"
                                             r"start the window on 2021-01-14 or later"):
            cd.build_window(t, "AAA", start, 5, peak_fraction=None)


@pytest.mark.parametrize("blank,date", [(5, "2021-01-06"), (25, "2021-01-26")])
def test_missing_new_cases_in_the_lookback_or_window_is_an_error(tmp_path, blank, date):
    rows = _set_field(_toy_rows(), blank, 5, "")
    t = cd.load_cases(_write_owid(tmp_path / "gap.csv", rows))
    with pytest.raises(ValueError, match=f"AAA: new_cases is missing on {date}, inside the "
                                         "window 2021-01-19 .. 2021-01-28 or its 13-day "
                                         "lookback from 2021-01-06"):
        cd.build_window(t, "AAA", "2021-01-19", 10, peak_fraction=None)
    # a date absent from the file is missing as well
    del rows[blank]
    t = cd.load_cases(_write_owid(tmp_path / "absent.csv", rows))
    with pytest.raises(ValueError, match=f"new_cases is missing on {date}"):
        cd.build_window(t, "AAA", "2021-01-19", 10, peak_fraction=None)


def test_user_owid_file_plain_and_gzipped(tmp_path):
    for gz, name in ((False, "o.csv"), (True, "o.csv.gz")):
        path = _write_owid(tmp_path / name, _toy_rows() + _toy_rows("BBB", "Bbb"), gz=gz)
        t = cd.load_cases(path, countries=["BBB"])
        assert set(t.countries) == {"BBB"}
        assert t.country("BBB").location == "Bbb"
        assert t.country("BBB").population[0] == 1000.0


def test_unknown_iso_code_suggests_close_matches(table):
    with pytest.raises(ValueError, match=r"unknown ISO code 'ARH'.*ARG \(Argentina\)"):
        table.country("ARH")
    with pytest.raises(ValueError, match=r"'Argentina'.*ARG"):
        table.country("Argentina")
    with pytest.raises(ValueError, match=r"unknown ISO code 'ZZZ'"):
        cd.load_cases(countries=["ARG", "ZZZ"])


def test_missing_columns_are_named(tmp_path):
    path = _write_owid(tmp_path / "bad.csv", ["AAA,2021-01-01,1\n"],
                       header="iso_code,date,total_cases\n")
    with pytest.raises(ValueError, match="lacks the column.*new_cases, population"):
        cd.load_cases(path)


def test_dates_outside_the_data(table):
    with pytest.raises(ValueError, match="outside its data.*2020-01-22 .. 2023-03-09"):
        cd.build_window(table, "ARG", "2023-03-01", 30)
    with pytest.raises(ValueError, match="outside its data"):
        cd.build_window(table, "ARG", "2019-12-01", 30)


def test_too_few_days(table, tmp_path):
    with pytest.raises(ValueError, match="window_days = 1 is too few"):
        cd.build_window(table, "ARG", "2021-12-31", 1)
    path = tmp_path / "w.csv"
    path.write_text("iso_code,start_date,window_days\nARG,2021-12-31,1\n")
    with pytest.raises(ValueError, match="window_days = 1 is too few"):
        cd.load_windows(path)


def test_a_window_cut_to_one_day_is_rejected(tmp_path):
    rows = _toy_rows(days=40, pop=1e6)
    for k, new in ((25, 100000.0), (26, -100000.0)):  # a spike, corrected the next day
        _set_field(rows, k, 5, str(new))
    t = cd.load_cases(_write_owid(tmp_path / "spike.csv", rows))
    with pytest.raises(ValueError, match="keeps only 1 day"):
        cd.build_window(t, "AAA", "2021-01-26", 10, allow_negative=True)


def test_missing_file_directory_and_non_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cd.load_cases(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="is a directory"):
        cd.load_cases(tmp_path)
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(ValueError, match="not a CSV"):
        cd.load_cases(binary)
    text = tmp_path / "notes.txt"
    text.write_text("just some words\nand more\n")
    with pytest.raises(ValueError, match="not a CSV file with a header"):
        cd.load_cases(text)


def test_bad_values_name_the_line(tmp_path):
    rows = _toy_rows(days=3)
    rows[1] = rows[1].replace(",2.0,", ",two,")
    with pytest.raises(ValueError, match="line 3, column new_cases: 'two'"):
        cd.load_cases(_write_owid(tmp_path / "v.csv", rows))
    rows = _toy_rows(days=3) + _toy_rows(days=1)
    with pytest.raises(ValueError, match="date 2021-01-01 twice"):
        cd.load_cases(_write_owid(tmp_path / "d.csv", rows))


def test_missing_total_cases_inside_a_window_is_an_error(tmp_path):
    rows = _set_field(_toy_rows(days=30), 17, 4, "")
    t = cd.load_cases(_write_owid(tmp_path / "m.csv", rows))
    with pytest.raises(ValueError, match="total_cases is missing on 2021-01-18"):
        cd.build_window(t, "AAA", "2021-01-14", 8)


@pytest.mark.parametrize("text,message", [
    ("iso_code,start_date,window_days\nARG,2021-12-31,100\nUSA,2021-07-25\n",
     r"line 3: 2 fields, expected at least 3"),
    ("iso_code,start_date,window_days,role\nARG,2021-12-31,100\n",
     r"line 2: 3 fields, expected at least 4"),
    ("iso_code,start_date,window_days\nARG,2021-12-31,1" + "0" * 200_000 + "\n",
     r"is not a readable CSV file: field larger than field limit"),
    ("iso_code,start_date,window_days,role\nARG,2021-12-31,100,targt\n",
     r"line 2, column role: 'targt' is not one of target, source"),
])
def test_bad_windows_rows_name_the_line(tmp_path, text, message):
    path = tmp_path / "w.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        cd.load_windows(path)


def test_the_target_is_the_row_with_role_target(tmp_path):
    assert cd.target_of(cd.load_windows()) == "ARG"
    path = tmp_path / "w.csv"
    path.write_text("window_days,iso_code,start_date,role\n100,ARG,2021-12-31,source\n"
                    "100,COL,2021-12-26,Target\n")
    specs = cd.load_windows(path)
    assert [w.role for w in specs] == ["source", "target"]
    assert cd.target_of(specs) == "COL"
    for text, found in (("ARG,2021-12-31,100,source\nCOL,2021-12-26,100,source\n", "no row"),
                        ("ARG,2021-12-31,100,target\nCOL,2021-12-26,100,target\n",
                         r"2 rows \(ARG, COL\)"),
                        ("ARG,2021-12-31,100\n", "no row")):
        header = "iso_code,start_date,window_days" + (",role" if text.count(",") > 2 else "")
        path.write_text(header + "\n" + text)
        with pytest.raises(ValueError, match=f"has {found} with role = target.*--target"):
            cd.target_of(cd.load_windows(path))


def _raw_series():
    """{iso: {date: (new_cases, total_cases, population)}} of the shipped CSV, read with the
    csv module alone (independent of cljax.experiments.covid.cases)."""
    out = {}
    with gzip.open(cd.shipped_file("covid_cases_jhu.csv.gz").open("rb"), "rt") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["iso_code"], {})[dt.date.fromisoformat(row["date"])] = (
                float(row["new_cases"]), float(row["population"]))
    return out


def test_both_window_protocols_against_a_numpy_reimplementation():
    """cljax keeps the last day above 0.8·peak; the authors' ``I[:t2]`` drops it, for every
    window; the authors' target keeps its first N days cut the same way (N − 1 while rising)."""
    from cljax.experiments.covid import experiment as ce

    raw = _raw_series()
    kept = {}
    for protocol in ("cljax", "authors"):
        windows = cd.build_windows(protocol=protocol)
        assert [w.iso_code for w in windows] == [s.iso_code for s in cd.load_windows()]
        for w, spec in zip(windows, cd.load_windows()):
            new = raw[spec.iso_code]
            days = [spec.start_date + dt.timedelta(days=k - 13)
                    for k in range(spec.window_days + 13)]
            i_full = np.convolve([new[d][0] for d in days], np.ones(14), "valid")
            t2 = np.nonzero(i_full > 0.8 * i_full.max())[0][-1]
            expect = i_full[:t2 + 1] if protocol == "cljax" else i_full[:t2]
            np.testing.assert_array_equal(w.infected, expect)
            assert w.population == new[spec.start_date][1]
            kept[protocol, w.iso_code] = w.days
    # pinned: the authors' windows are one day shorter, e.g. ARG's ground truth 30 -> 29 days
    assert (kept["cljax", "ARG"], kept["authors", "ARG"]) == (30, 29)
    assert all(kept["cljax", c] == kept["authors", c] + 1 for _, c in kept)
    arg = cd.build_windows(protocol="authors")[0].infected
    for n in (2, 10, 17, 29):
        problem = ce.make_problem(protocol="authors", n_train=n)
        first = arg[:n]
        assert problem.train_days() == np.nonzero(first > 0.8 * first.max())[0][-1]
        assert ce.make_problem(n_train=n).train_days() == n
    assert ce.make_problem(protocol="authors", n_train=10).train_days() == 9  # ARG rises
    with pytest.raises(ValueError, match="protocol must be one of cljax, authors"):
        cd.build_windows(protocol="paper")


@pytest.mark.parametrize("value,message", [
    ("inf", "new_cases = inf is not finite"),
    ("1e300", r"new_cases = 1e\+300 exceeds the population 1000"),
    ("-5", "new_cases = -5 is negative .*--allow-negative-cases"),
])
def test_bad_new_cases_in_a_window_name_the_file_line_and_column(tmp_path, value, message):
    rows = _set_field(_toy_rows(), 20, 5, value)  # day 20 = 2021-01-21, file line 22
    path = _write_owid(tmp_path / "bad.csv", rows)
    table = cd.load_cases(path)
    with pytest.raises(ValueError, match=f"'{path}' line 22, column new_cases: {message}"):
        cd.build_window(table, "AAA", "2021-01-14", 20)
    # the same value outside the window and its 13-day lookback is not read
    cd.build_window(table, "AAA", "2021-01-14", 7)


def test_negative_new_cases_are_allowed_on_request(tmp_path):
    rows = _set_field(_toy_rows(), 20, 5, "-5")
    path = _write_owid(tmp_path / "neg.csv", rows)
    w = cd.build_window(cd.load_cases(path), "AAA", "2021-01-14", 20, peak_fraction=None,
                        allow_negative=True)
    new = np.arange(1.0, 41.0)
    new[20] = -5.0
    np.testing.assert_array_equal(w.infected, np.convolve(new, np.ones(14), "valid")[:20])


def test_non_finite_total_cases_names_the_line(tmp_path):
    rows = _set_field(_toy_rows(), 18, 4, "inf")
    path = _write_owid(tmp_path / "tot.csv", rows)
    with pytest.raises(ValueError, match=f"'{path}' line 20, column total_cases: "
                                         "total_cases = inf is not finite"):
        cd.build_window(cd.load_cases(path), "AAA", "2021-01-14", 20)
