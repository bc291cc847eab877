"""Python XlsxWriter in constant_memory mode on the benchmark table.
usage: xlsxwriter_bench.py ROWS SCRATCH_DIR FONT(unused)"""
import os, sys, time

import xlsxwriter

from common import COLUMNS, report, row

rows, scratch = int(sys.argv[1]), sys.argv[2]
path = os.path.join(scratch, f"peer-xlsxwriter-{os.getpid()}.xlsx")
start = time.perf_counter()
wb = xlsxwriter.Workbook(path, {"constant_memory": True, "tmpdir": scratch})
ws = wb.add_worksheet("Dados")
bold = wb.add_format({"bold": True})
money = wb.add_format({"num_format": "#,##0.00"})
date = wb.add_format({"num_format": "yyyy-mm-dd"})
for j, name in enumerate(COLUMNS):
    ws.write_string(0, j, name, bold)
for i in range(rows):
    r = row(i)
    n = i + 1
    ws.write_string(n, 0, r[0])
    ws.write_number(n, 1, r[1], money)
    ws.write_number(n, 2, r[2])
    ws.write_datetime(n, 3, r[3], date)
    ws.write_boolean(n, 4, r[4])
    ws.write_string(n, 5, r[5])
    ws.write_number(n, 6, r[6], money)
    ws.write_number(n, 7, r[7])
    ws.write_datetime(n, 8, r[8], date)
    ws.write_boolean(n, 9, r[9])
wb.close()
elapsed = time.perf_counter() - start
report(elapsed, path)
os.remove(path)
