"""Writes typed.xls and typed.xlsx, the loader's typed-cell fixtures.

They are made with third-party writers (xlwt for .xls, openpyxl for .xlsx)
rather than with this project's code, so the loader is tested against files
it did not write itself.  Run with: pip install xlwt openpyxl; python3 make_fixtures.py
Both files hold the same two sheets; see the table in the Rust tests.
"""
import datetime
import os

import openpyxl
import xlwt

HERE = os.path.dirname(os.path.abspath(__file__))

# (row, column) are 0-based here; the spreadsheet shows them 1-based.
# The title sits in B2 and the header in row 4 starting at column B, so the
# used range does not begin at A1.
HIDDEN = [(0, 0, "ip"), (1, 0, "127.9.9.9")]
VISIBLE = [
    (1, 1, "Monitoring targets"),
    (3, 1, "Name"), (3, 2, "IP_Address"), (3, 3, "Site"), (3, 4, "Notes"),
    (4, 1, "loopback"), (4, 2, "127.0.0.1"), (4, 3, "lab"),
    (5, 1, "number"), (5, 2, 127001), (5, 3, "lab"),
    (6, 1, "date"), (6, 2, datetime.date(2024, 1, 15)), (6, 3, "lab"),
    (7, 1, "bool"), (7, 2, True),
    (8, 1, "error"), (8, 2, "#N/A"),
    (10, 1, "v6"), (10, 2, "[::1]"), (10, 3, "lab"), (10, 4, "bracketed"),
    (11, 1, "name only"),
    (12, 1, "dup"), (12, 2, " 127.0.0.1\u00a0"),
    (13, 1, "host"), (13, 2, "localhost"), (13, 3, "lab"),
]


def write_xls(path):
    book = xlwt.Workbook()
    hidden = book.add_sheet("Old")
    hidden.visibility = 1
    for r, c, v in HIDDEN:
        hidden.write(r, c, v)
    sheet = book.add_sheet("Targets")
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for r, c, v in VISIBLE:
        if isinstance(v, bool):
            sheet.row(r).set_cell_boolean(c, v)
        elif v == "#N/A":
            # xlwt's table lacks the "#N/A" spelling; 0x2A is its BIFF code.
            sheet.row(r).set_cell_error(c, 0x2A)
        elif isinstance(v, datetime.date):
            sheet.write(r, c, v, date_style)
        else:
            sheet.write(r, c, v)
    # xlwt makes the first sheet active; a hidden active sheet confuses
    # office suites, so point the active tab at the visible one.
    book.active_sheet = 1
    hidden.selected = False
    sheet.selected = True
    book.save(path)


def write_xlsx(path):
    book = openpyxl.Workbook()
    hidden = book.active
    hidden.title = "Old"
    hidden.sheet_state = "hidden"
    for r, c, v in HIDDEN:
        hidden.cell(row=r + 1, column=c + 1, value=v)
    sheet = book.create_sheet("Targets")
    for r, c, v in VISIBLE:
        cell = sheet.cell(row=r + 1, column=c + 1, value=v)
        if isinstance(v, datetime.date):
            cell.number_format = "yyyy-mm-dd"
    book.active = 1
    book.save(path)


write_xls(os.path.join(HERE, "typed.xls"))
write_xlsx(os.path.join(HERE, "typed.xlsx"))
