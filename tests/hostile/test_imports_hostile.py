"""`luyue import` against hostile files: every one refused with exit 1, a
message naming what is wrong (the encoding, or the row and column), no
traceback, nothing written; the encodings a spreadsheet saves in are
accepted or refused by name."""
from __future__ import annotations

import codecs
import time

import pytest
from hostile import every_table
from corpus import MAX_CPU_SECONDS

SKUS = "sku,name,barcodes,weight_g,presale\nSKU-0901,碧螺春 100g,6927735001017,150,false\n"
NODES = ("code,name,kind,province,city,lat,lon,daily_capacity,same_city_radius_km,active\n"
         "SZ-GY-01,苏州工业园区仓,warehouse,江苏省,苏州市,31.3150,120.7230,2000,0,true\n")
STOCK = "node,location,sku,on_hand\nSZ-GY-01,B-01-01-1,SKU-0901,120\n"
GOOD = {"skus": SKUS, "nodes": NODES, "stock": STOCK}

# (name, bytes of the file, what the message must say)
def hostile_files(what: str) -> list[tuple[str, bytes, str]]:
    text = GOOD[what]
    header, row = text.splitlines()[0], text.splitlines()[1]
    return [
        ("binary", bytes(range(256)) * 40, "not a text file"),
        ("png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not a text file"),
        ("gb18030", (text + "备注,仓库\n").encode("gb18030"), "GB18030"),
        ("latin-1", (text + "Café,Zürich\n").encode("latin-1", "ignore"), "not UTF-8"),
        ("utf-16 without a BOM", text.encode("utf-16-le"), "not a text file"),
        ("empty", b"", "empty"),
        ("no header", row.encode() + b"\n", "not a header"),
        ("a 200 KB field", (header + "\n" + row.replace(",", "," + "x" * 200_000, 1) + "\n").encode(),
         "row 2, column"),
        ("a field over 1000 characters", (header + "\n" + row.replace(",", "," + "x" * 1001, 1) + "\n").encode(),
         "row 2, column"),
        ("a NUL in a row", (header + "\n" + row.replace(",", ",A\x00B", 1) + "\n").encode(), "not a text file"),
        ("a bell in a row", (header + "\n" + row.replace(",", ",A\x07B", 1) + "\n").encode(), "row 2, column"),
        ("a GS in a row", (header + "\n" + row.replace(",", ",A\x1dB", 1) + "\n").encode(), "row 2, column"),
        ("an escape in the header", ("\x1b[2J" + header + "\n" + row + "\n").encode(), "row 1"),
        ("too many columns", (header + "," * 60 + "\n" + row + "\n").encode(), "row 1"),
        ("more fields than the header", (header + "\n" + row + ",x,y,z,w,v,u\n").encode(), "row 2"),
        ("an unclosed quote", (header + "\n" + '"' + row + "\n" + "x" * 5000 + "\n").encode(), "row"),
        ("a UTF-16 BOM then bad bytes", codecs.BOM_UTF16_LE + b"\x00\xd8", "UTF-16"),
    ]


CASES = [(what, *case) for what in ("skus", "nodes", "stock") for case in hostile_files(what)]


@pytest.mark.parametrize("what,name,content,says", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_a_hostile_csv_file_is_refused_by_name_and_imports_nothing(runner, db, tmp_path, what, name, content, says):
    path = tmp_path / f"{what}.csv"
    path.write_bytes(content)
    before = every_table(db)
    started = time.process_time()
    result = runner.invoke(args=["import", what, str(path)])
    assert time.process_time() - started < MAX_CPU_SECONDS
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "nothing imported" in result.output and says in result.output, result.output
    assert every_table(db) == before


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_a_sku_file_saved_as_utf8_with_or_without_a_bom_or_as_utf16_imports(runner, db, tmp_path, encoding):
    path = tmp_path / "skus.csv"
    path.write_bytes(SKUS.encode(encoding))
    result = runner.invoke(args=["import", "skus", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 rows imported" in result.output
