"""The upload corpus: small hostile and malformed data files, and what the service must answer.

``python tests/data/corpus/make_corpus.py`` writes the small files and ``expected.json`` (the
manifest) next to this script; they are checked in. The large cases — a 10,000-column table,
a file one byte over the upload limit and an NPZ zip bomb — are written at test time into a
temporary directory by :func:`write_large`, since their size depends on the limit under test.

Every file is built byte for byte the same on each run (NPZ members carry a fixed timestamp), so
a test can check that the checked-in files are what this script makes.

The manifest gives, for each file: the upload's form fields (``label``, ``task``) and either
``"accepted"`` (201, and exit code 0 from ``automl data check``) or the status and a phrase the
error message must contain (exit code 2 and the same phrase from the CLI). ``cli`` overrides the
CLI's expectation where it differs: the upload limit is the service's, so a file over it is
still read by the CLI. ``note`` says why an entry is what it is.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
MANIFEST = "expected.json"
_DATE = (1980, 1, 1, 0, 0, 0)  # a fixed member timestamp keeps the archives reproducible


# ---- building blocks ---------------------------------------------------------------------------
def _table(rows: int = 30, label: str = "label") -> str:
    """A small table that every check accepts: two numeric features, two balanced classes."""
    lines = [f"a,b,{label}"]
    lines += [f"{i},{(i * 7) % 11 / 10},{'cat' if i % 2 else 'dog'}" for i in range(rows)]
    return "\n".join(lines) + "\n"


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def _npz(members: dict[str, bytes]) -> bytes:
    """An NPZ archive (what numpy.savez writes) with fixed timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def _xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 3)).astype(np.float32), np.arange(40) % 2


# ---- the small files (checked in) --------------------------------------------------------------
def _nan_features() -> bytes:
    rows = _table().splitlines()
    rows[3] = "NaN,0.2,dog"
    rows[5] = "4,nan,dog"
    return ("\n".join(rows) + "\n").encode()


def _inf_feature() -> bytes:
    rows = _table().splitlines()
    rows[4] = "3,inf,cat"
    return ("\n".join(rows) + "\n").encode()


def _nan_label() -> bytes:
    rows = _table().splitlines()
    rows[6] = "5,0.5,NaN"
    return ("\n".join(rows) + "\n").encode()


def _ragged() -> bytes:
    rows = _table().splitlines()
    rows[2] = "1,0.7"
    return ("\n".join(rows) + "\n").encode()


def _text_feature() -> bytes:
    cities = ["Paris", "Lyon", "Nice"]
    lines = ["city,a,label"]
    lines += [f"{cities[i % 3]},{i},{'cat' if i % 2 else 'dog'}" for i in range(30)]
    return ("\n".join(lines) + "\n").encode()


def _one_class() -> bytes:
    return ("a,b,label\n" + "".join(f"{i},{i % 5},cat\n" for i in range(30))).encode()


def _duplicate_columns() -> bytes:
    return ("a,a,label\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(30))).encode()


def _bom() -> bytes:
    return b"\xef\xbb\xbf" + _table().encode()


def _quoted() -> bytes:
    names = ['"Smith, John"', '"Doe, Jane"', '"O\'Brien, ""Pat"""']
    lines = ["name,a,label"]
    lines += [f"{names[i % 3]},{i},{'cat' if i % 2 else 'dog'}" for i in range(30)]
    return ("\n".join(lines) + "\n").encode()


def _crlf() -> bytes:
    return _table().replace("\n", "\r\n").encode()


def _non_ascii_names() -> bytes:
    lines = ["température,高さ,étiquette"]
    lines += [f"{i},{(i * 3) % 7},{'chat' if i % 2 else 'chien'}" for i in range(30)]
    return ("\n".join(lines) + "\n").encode()


def _semicolon() -> bytes:
    return _table().replace(",", ";").encode()


def _tab() -> bytes:
    return _table().replace(",", "\t").encode()


def _latin1() -> bytes:
    return _table().replace("a,b,", "a,é,").encode("latin-1")


def _nul_header() -> bytes:
    return _table().replace("a,b,", "a\x00,b,", 1).encode()


def _good_npz() -> bytes:
    x, y = _xy()
    return _npz({"x.npy": _npy(x), "y.npy": _npy(y)})


def _pickled_npz() -> bytes:
    _, y = _xy()
    x = np.empty(40, dtype=object)
    x[:] = [[1.0] * (1 + i % 3) for i in range(40)]  # ragged rows: only a pickle holds them
    return _npz({"x.npy": _npy(x), "y.npy": _npy(y)})


def _npz_without_y() -> bytes:
    x, _ = _xy()
    return _npz({"x.npy": _npy(x)})


def _not_an_npz() -> bytes:
    return b"PK\x03\x04" + bytes(range(256)) * 4


Maker = Callable[[], bytes]
# file name -> (maker, upload form fields, expectation, note)
SMALL: dict[str, tuple[Maker, dict[str, str], Any, str]] = {
    "empty.csv": (
        lambda: b"",
        {"label": "label"},
        {"status": 422, "message": "the CSV file is empty"},
        "",
    ),
    "header_only.csv": (
        lambda: b"a,b,label\n",
        {"label": "label"},
        {"status": 422, "message": "has a header but no data rows"},
        "",
    ),
    "nan_features.csv": (
        _nan_features,
        {"label": "label"},
        "accepted",
        "NaN in a feature is a missing value (tables accept missing cells)",
    ),
    "inf_feature.csv": (
        _inf_feature,
        {"label": "label"},
        {"status": 422, "message": "feature 'b' in CSV line 5 is 'inf', not a finite number"},
        "",
    ),
    "nan_label.csv": (
        _nan_label,
        {"label": "label"},
        {"status": 422, "message": "the label in CSV line 7 is 'NaN', a missing value"},
        "",
    ),
    "ragged.csv": (
        _ragged,
        {"label": "label"},
        {"status": 422, "message": "CSV line 3 has 2 values but the header has 3 columns"},
        "",
    ),
    "text_feature.csv": (
        _text_feature,
        {"label": "label"},
        "accepted",
        "a non-numeric feature is accepted as a categorical column",
    ),
    "missing_label.csv": (
        lambda: _table(label="target").encode(),
        {"label": "label"},
        {"status": 422, "message": "label column 'label' is not in the CSV header"},
        "",
    ),
    "one_class.csv": (
        _one_class,
        {"label": "label"},
        {"status": 422, "message": "classification needs at least two classes"},
        "",
    ),
    "one_class_regression.csv": (
        _one_class,
        {"label": "b", "task": "regression"},
        "accepted",
        "one class only matters for classification: the same file as a regression on 'b'",
    ),
    "duplicate_columns.csv": (
        _duplicate_columns,
        {"label": "label"},
        {"status": 422, "message": "duplicate column names: 'a' (columns 1 and 2)"},
        "",
    ),
    "bom.csv": (_bom, {"label": "a"}, "accepted", "a UTF-8 byte order mark before the header"),
    "quoted.csv": (_quoted, {"label": "label"}, "accepted", "quoted values holding commas"),
    "crlf.csv": (_crlf, {"label": "label"}, "accepted", "Windows line endings"),
    "non_ascii_names.csv": (
        _non_ascii_names,
        {"label": "étiquette"},
        "accepted",
        "non-ASCII column names, label included",
    ),
    "semicolon.csv": (
        _semicolon,
        {"label": "label"},
        {"status": 422, "message": "separated by ';'"},
        "refused with a hint naming the separator",
    ),
    "tab_separated.csv": (
        _tab,
        {"label": "label"},
        {"status": 422, "message": "separated by tabs"},
        "refused with a hint naming the separator",
    ),
    "latin1.csv": (
        _latin1,
        {"label": "label"},
        {"status": 422, "message": "not UTF-8"},
        "",
    ),
    "nul_in_header.csv": (
        _nul_header,
        {"label": "label"},
        {"status": 422, "message": "NUL character"},
        "PostgreSQL cannot store a NUL in text",
    ),
    "markup_in_names.csv": (
        lambda: _table().replace("a,b,label", "[/x],[red]b,label").encode(),
        {"label": "target"},
        {"status": 422, "message": "columns are: [/x], [red]b, label"},
        "names that look like terminal markup are quoted as they are",
    ),
    "good.npz": (_good_npz, {}, "accepted", "the baseline NPZ"),
    "pickled.npz": (
        _pickled_npz,
        {},
        {"status": 422, "message": "pickles are never loaded"},
        "an object array, which only a pickle holds",
    ),
    "no_y.npz": (
        _npz_without_y,
        {},
        {"status": 422, "message": "has no array named 'y'"},
        "",
    ),
    "not_an_npz.npz": (
        _not_an_npz,
        {},
        {"status": 422, "message": "not an NPZ archive"},
        "",
    ),
}


# what each accepted small file reads as: rows, features
READ: dict[str, tuple[int, int]] = {
    "nan_features.csv": (30, 2),
    "text_feature.csv": (30, 2),
    "one_class_regression.csv": (30, 2),
    "bom.csv": (30, 2),
    "quoted.csv": (30, 2),
    "crlf.csv": (30, 2),
    "non_ascii_names.csv": (30, 2),
    "good.npz": (40, 3),
}


# ---- the large files (written at test time) ----------------------------------------------------
WIDE_COLUMNS = 10_000
WIDE_ROWS = 24


def write_wide(path: Path) -> None:
    """10,000 numeric feature columns and a label: 24 rows, about 0.5 MB."""
    header = ",".join(f"f{j}" for j in range(WIDE_COLUMNS)) + ",label\n"
    rows = (
        ",".join(str((r * 7 + j) % 10) for j in range(WIDE_COLUMNS)) + f",{r % 2}\n"
        for r in range(WIDE_ROWS)
    )
    path.write_text(header + "".join(rows))


def write_sized_csv(path: Path, size: int) -> None:
    """A valid CSV (label ``label``, two classes) of exactly ``size`` bytes."""
    out = [b"a,label\n"]
    total, i = len(out[0]), 0
    while size - total >= 64:  # rows of at most 40 bytes (few rows: quick to read)
        out.append(b"%d.%030d,%d\n" % (i % 1000, i, i % 2))
        total += len(out[-1])
        i += 1
    out.append(b"0" * (size - total - 3) + b",1\n")  # a last row padded with leading zeros
    path.write_bytes(b"".join(out))


def _npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def write_npz_bomb(path: Path, mib: int) -> None:
    """An NPZ whose ``x.npy`` inflates to ``mib`` MiB of float32 zeros from about 1 KB per MiB,
    with a plain ``y`` beside it; the archive's directory and the .npy header say so honestly.

    After a full flush a deflate stream starts afresh, so one compressed MiB of zeros can be
    repeated; the archive is written by hand (zipfile would have to compress every byte).
    """
    head = _npy_header((mib * 256, 1024))
    zero = bytes(1 << 20)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = co.compress(head) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(zero) + co.flush(zlib.Z_FULL_FLUSH)
    stream = first + block * mib + co.flush()
    crc = zlib.crc32(head)
    for _ in range(mib):
        crc = zlib.crc32(zero, crc)
    name, size = b"x.npy", len(head) + (mib << 20)
    assert size < 0xFFFFFFFF, "a bomb of 4 GiB or more needs ZIP64 fields"
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(stream), size, len(name), 0
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(stream), size, len(name), 0, 0, 0, 0, 0, 0,
    )  # fmt: skip
    cd_offset = len(local) + len(name) + len(stream)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central) + len(name), cd_offset, 0)
    path.write_bytes(local + name + stream + central + name + end)
    with zipfile.ZipFile(path, "a") as zf:  # a plain y next to the bomb
        info = zipfile.ZipInfo("y.npy", date_time=_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, _npy((np.arange(mib * 256) % 2).astype(np.uint8)))


def write_large(directory: Path, limit: int, bomb_mib: int) -> dict[str, dict[str, Any]]:
    """Write the large cases into ``directory`` for an upload limit of ``limit`` bytes; return
    their manifest entries (the same shape as ``expected.json``'s)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_wide(directory / "wide_10000_columns.csv")
    write_sized_csv(directory / "at_limit.csv", limit)
    write_sized_csv(directory / "over_limit_by_one_byte.csv", limit + 1)
    write_npz_bomb(directory / "bomb.npz", bomb_mib)
    too_large = {"status": 413, "message": "upload limit (AUTOML_MAX_UPLOAD_MB)"}
    return {
        "wide_10000_columns.csv": {
            "form": {"label": "label"},
            "expect": "accepted",
            "rows": WIDE_ROWS,
            "features": WIDE_COLUMNS,
            "note": "10,000 feature columns",
        },
        "at_limit.csv": {
            "form": {"label": "label"},
            "expect": "accepted",
            "note": "exactly the upload limit",
        },
        "over_limit_by_one_byte.csv": {
            "form": {"label": "label"},
            "expect": too_large,
            "cli": "accepted",
            "note": "the limit is the service's; the CLI reads a local file of any size",
        },
        "bomb.npz": {
            "form": {},
            "expect": {"status": 422, "message": "once decompressed"},
            "note": f"x.npy inflates to {bomb_mib} MiB; refused from its headers",
        },
    }


def manifest() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, (_, form, expect, note) in SMALL.items():
        out[name] = {"form": form, "expect": expect}
        if name in READ:
            out[name]["rows"], out[name]["features"] = READ[name]
        if note:
            out[name]["note"] = note
    return out


def write_small(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (make, *_rest) in SMALL.items():
        (directory / name).write_bytes(make())
        paths.append(directory / name)
    text = json.dumps(manifest(), indent=2, ensure_ascii=False) + "\n"
    (directory / MANIFEST).write_text(text, encoding="utf-8")
    return [*paths, directory / MANIFEST]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    for p in write_small(target):
        print(p)
