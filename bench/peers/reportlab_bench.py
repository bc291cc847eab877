"""ReportLab on the benchmark table, with the features reportd's PDF has: A4
landscape, DejaVu Sans embedded, the header row repeated on every page, zebra
rows, right-aligned numbers and "N / M" page numbers (a second pass over the
saved pages, the usual ReportLab way).

The table is built one page at a time (a Table of ROWS_PER_PAGE rows with its
header, then a page break), as one does for large reports: a single LongTable
of 100k rows is split again and again and takes quadratic time.
usage: reportlab_bench.py ROWS SCRATCH_DIR FONT"""
import os, sys, time

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import PageBreak, SimpleDocTemplate, Table, TableStyle

from common import COLUMNS, report, row

rows, scratch, font = int(sys.argv[1]), sys.argv[2], sys.argv[3]
pdfmetrics.registerFont(TTFont("DejaVu", font))
path = os.path.join(scratch, f"peer-reportlab-{os.getpid()}.pdf")


class NumberedCanvas(canvas.Canvas):
    """Keeps every page until save, then writes "N / M" on each."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self._pages = []

    def showPage(self):
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont("DejaVu", 7)
            self.drawCentredString(landscape(A4)[0] / 2, 20, f"{self._pageNumber} / {total}")
            super().showPage()
        super().save()


ROWS_PER_PAGE = 40
STYLE = TableStyle([
    ("FONT", (0, 0), (-1, -1), "DejaVu", 7),
    ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
    ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.whitesmoke]),
    ("ALIGN", (1, 1), (2, -1), "RIGHT"),
    ("ALIGN", (6, 1), (7, -1), "RIGHT"),
])

start = time.perf_counter()
story = []
for first in range(0, max(rows, 1), ROWS_PER_PAGE):
    data = [COLUMNS]
    for i in range(first, min(first + ROWS_PER_PAGE, rows)):
        r = row(i)
        data.append([r[0], f"{r[1]:,.2f}", str(r[2]), r[3].isoformat(), "TRUE" if r[4] else "FALSE",
                     r[5], f"{r[6]:,.2f}", str(r[7]), r[8].isoformat(), "TRUE" if r[9] else "FALSE"])
    table = Table(data)
    table.setStyle(STYLE)
    story += [table, PageBreak()]
doc = SimpleDocTemplate(path, pagesize=landscape(A4), title="Benchmark — relatório")
doc.build(story[:-1], canvasmaker=NumberedCanvas)
elapsed = time.perf_counter() - start
report(elapsed, path)
os.remove(path)
