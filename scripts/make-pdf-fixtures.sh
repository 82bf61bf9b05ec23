#!/usr/bin/env bash
# Builds the PDF and image fixtures of tests/fixtures/formats from sample 000:
#   release.pdf              Chromium's print of an RTL page (text layer)
#   release-libreoffice.pdf  LibreOffice's export of the same page (text layer)
#   release-scan.pdf         the Chromium pages as 150 dpi grey images, slightly
#                            rotated, printed again: no text layer, as a scanner makes
#   release-scan.png         the first scanned page alone
#   release-columns.pdf      the first paragraphs set in two columns
#   encrypted.pdf            a one-page PDF with a user password
#   *.expected               the text a reader should find, one block per line
#
# Needs: chromium, poppler-utils, qpdf, python3, fonts-noto-core; libreoffice-writer-nogui
# for the LibreOffice fixture (skipped, with a message, without it). Rerunning it
# rewrites the fixtures; the page images depend on the installed fonts, so commit
# them together with the expected text.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/tests/fixtures/formats"
sample="$root/samples/000_e0e78c066911b3fb.txt"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

for tool in chromium pdftoppm qpdf python3; do
  command -v "$tool" >/dev/null || { echo "make-pdf-fixtures: needs $tool" >&2; exit 1; }
done

# The page: the article, then a short list, a small table and a sentence with a
# number range, so that list markers, table rows and digits inside Arabic lines are
# all exercised. The expected text is written by the same program, so the two agree.
python3 - "$sample" "$work" <<'PY'
import html, re, sys

sample, work = sys.argv[1], sys.argv[2]

def norm(s):
    # What tarjama's load::normalize does to these lines: NBSP and runs of spaces
    # become one space, the ends are trimmed.
    return re.sub(r"[ \u00a0\t]+", " ", s).strip()

paragraphs = [norm(p) for p in open(sample, encoding="utf-8").read().split("\n\n")]
paragraphs = [p for p in paragraphs if p]
title, dateline, body = paragraphs[0], paragraphs[1], paragraphs[2:]
subheadings = {p for p in body if p.startswith("جمهورية") and len(p.split()) <= 3}

list_intro = "وتناولت المباحثات في كل محطة ما يلي:"
items = ["تعزيز التبادل التجاري والاستثمار", "أمن الطاقة والمياه", "الأمن الغذائي والتنمية المستدامة"]
table_heading = "مواعيد الجولة"
table = [
    ["الدولة", "التاريخ", "المدينة"],
    ["تركمانستان", "1/8/2022", "عشق آباد"],
    ["طاجيكستان", "2/8/2022", "دوشانبي"],
    ["قيرغيزستان", "3/8/2022", "بشكيك"],
]
closing = "وتغطي خطة العمل المشترك بين الجانبين الفترة 2024-2028، على أن تراجع في 12/5/2024."

e = html.escape
parts = [f"<h1>{e(title)}</h1>", f'<p class="dateline">{e(dateline)}</p>']
for p in body:
    parts.append(f"<h2>{e(p)}</h2>" if p in subheadings else f"<p>{e(p)}</p>")
parts.append(f"<p>{e(list_intro)}</p><ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>")
parts.append(f"<h2>{e(table_heading)}</h2><table>")
for n, row in enumerate(table):
    cell = "th" if n == 0 else "td"
    parts.append("<tr>" + "".join(f"<{cell}>{e(c)}</{cell}>" for c in row) + "</tr>")
parts.append("</table>")
parts.append(f"<p>{e(closing)}</p>")

style = """
@page { size: A4; margin: 25mm 22mm;
  @top-center { content: "الأمانة العامة لمجلس التعاون – بيان صحفي"; font-family: 'Noto Naskh Arabic'; font-size: 9pt; }
  @bottom-center { content: counter(page); font-family: 'Noto Naskh Arabic'; font-size: 9pt; } }
body { font-family: 'Noto Naskh Arabic', serif; font-size: 13pt; line-height: 1.7; text-align: justify; }
h1 { font-size: 18pt; text-align: center; } h2 { font-size: 14pt; margin: 1.2em 0 0.4em; }
p.dateline { font-weight: bold; }
table { border-collapse: collapse; margin: 0.5em 0; } th, td { border: 1px solid #444; padding: 2px 12px; }
"""
page = f"""<!doctype html>
<html lang="ar" dir="rtl"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>{style}</style></head><body>
{chr(10).join(parts)}
</body></html>
"""
open(f"{work}/release.html", "w", encoding="utf-8").write(page)

# LibreOffice ignores @page margin boxes: same page without them.
open(f"{work}/release-lo.html", "w", encoding="utf-8").write(
    re.sub(r"@top-center \{[^}]*\}\s*@bottom-center \{[^}]*\}", "", page))

expected = [title, dateline] + body + [list_intro] + items + [table_heading]
expected += [" ".join(row) for row in table] + [closing]
open(f"{work}/release.expected", "w", encoding="utf-8").write("\n".join(expected) + "\n")
# The first printed page ends with this paragraph (at the fonts and margins above):
# the single scanned page holds the blocks up to it.
first_page_end = next(i for i, p in enumerate(expected) if "اجتماعات منفردة" in p)
open(f"{work}/page-one.expected", "w", encoding="utf-8").write(
    "\n".join(expected[: first_page_end + 1]) + "\n")
PY

print_pdf() { # HTML file, PDF file
  chromium --headless --no-sandbox --disable-gpu --no-pdf-header-footer \
    --print-to-pdf="$2" "file://$1" 2>/dev/null
}

print_pdf "$work/release.html" "$out/release.pdf"
cp "$work/release.expected" "$out/release.pdf.expected"

if command -v soffice >/dev/null; then
  soffice --headless -env:UserInstallation="file://$work/lo-profile" \
    --convert-to pdf:writer_web_pdf_Export --outdir "$work" "$work/release-lo.html" >/dev/null
  mv "$work/release-lo.pdf" "$out/release-libreoffice.pdf"
  cp "$work/release.expected" "$out/release-libreoffice.pdf.expected"
else
  echo "make-pdf-fixtures: no soffice (apt-get install libreoffice-writer-nogui): release-libreoffice.pdf not rebuilt" >&2
fi

# The scan: each page as a 150 dpi grey image with 16 levels (as a scanner's "text"
# mode keeps files small), turned by a fraction of a degree as a sheet on a scanner
# glass is, one image per page and nothing else: no text layer. Written directly
# (Chromium would re-encode the images as RGB, three times the size).
pdftoppm -r 150 -gray "$out/release.pdf" "$work/page"
python3 - "$work" "$out/release-scan.pdf" <<'PY'
import glob, math, sys, zlib

work, target = sys.argv[1], sys.argv[2]
ANGLE = 0.4  # degrees
WIDTH, HEIGHT = 595.276, 841.89  # A4 in points

def read_pgm(path):
    data = open(path, "rb").read()
    magic, w, h, _, rest = data.split(maxsplit=4)
    assert magic == b"P5"
    w, h = int(w), int(h)
    return w, h, rest[-w * h:]

def four_bit(w, h, pixels):
    """Rows of 4-bit samples, two per byte, each row padded to a whole byte."""
    q = pixels.translate(bytes(round(v * 15 / 255) for v in range(256)))
    out = bytearray()
    for y in range(h):
        row = q[y * w:(y + 1) * w] + bytes(w % 2)
        hi, lo = row[0::2], row[1::2]
        out += bytes((a << 4) | b for a, b in zip(hi, lo))
    return bytes(out)

objects = []  # (number, bytes)
def add(body):
    objects.append(body)
    return len(objects)

pages = []
catalog = add(None)
tree = add(None)
c, s = math.cos(math.radians(ANGLE)), math.sin(math.radians(ANGLE))
for path in sorted(glob.glob(f"{work}/page-*.pgm")):
    w, h, pixels = read_pgm(path)
    data = zlib.compress(four_bit(w, h, pixels), 9)
    image = add(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
                b"/BitsPerComponent 4 /Filter /FlateDecode /Length %d >>\nstream\n" % (w, h, len(data))
                + data + b"\nendstream")
    cx, cy = WIDTH / 2, HEIGHT / 2
    ops = (f"q 1 0 0 1 {cx:.3f} {cy:.3f} cm {c:.6f} {s:.6f} {-s:.6f} {c:.6f} 0 0 cm "
           f"1 0 0 1 {-cx:.3f} {-cy:.3f} cm {WIDTH} 0 0 {HEIGHT} 0 0 cm /Im Do Q").encode()
    contents = add(b"<< /Length %d >>\nstream\n" % len(ops) + ops + b"\nendstream")
    pages.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.3f %.3f] "
                     b"/Resources << /XObject << /Im %d 0 R >> >> /Contents %d 0 R >>"
                     % (tree, WIDTH, HEIGHT, image, contents)))
objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
kids = b" ".join(b"%d 0 R" % p for p in pages)
objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(pages))

pdf = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
offsets = []
for n, body in enumerate(objects, 1):
    offsets.append(len(pdf))
    pdf += b"%d 0 obj\n" % n + body + b"\nendobj\n"
xref = len(pdf)
pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
pdf += b"".join(b"%010d 00000 n \n" % o for o in offsets)
pdf += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, catalog, xref)
open(target, "wb").write(pdf)
PY
cp "$work/release.expected" "$out/release-scan.pdf.expected"

# One scanned page as an image file, as a phone or scanner app saves it.
pdftoppm -r 150 -gray -f 1 -l 1 -singlefile "$out/release-scan.pdf" "$work/scan-one"
python3 - "$work/scan-one.pgm" "$out/release-scan.png" <<'PY'
import struct, sys, zlib

data = open(sys.argv[1], "rb").read()
magic, w, h, _, rest = data.split(maxsplit=4)
w, h = int(w), int(h)
q = rest[-w * h:].translate(bytes(round(v * 15 / 255) for v in range(256)))
raw = bytearray()
for y in range(h):
    row = q[y * w:(y + 1) * w] + bytes(w % 2)
    raw.append(0)  # PNG filter: none
    raw += bytes((a << 4) | b for a, b in zip(row[0::2], row[1::2]))

def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

dpm = round(150 / 0.0254)  # 150 dpi, so OCR knows the scale
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 4, 0, 0, 0, 0))
png += chunk(b"pHYs", struct.pack(">IIB", dpm, dpm, 1))
png += chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")
open(sys.argv[2], "wb").write(png)
PY
cp "$work/page-one.expected" "$out/release-scan.png.expected"

# The first paragraphs again, set in two columns: -layout interleaves such pages line
# by line; the reader must notice and say that the order may be off.
python3 - "$sample" "$work/columns.html" <<'PY'
import html, sys
paragraphs = [" ".join(p.split()) for p in open(sys.argv[1], encoding="utf-8").read().split("\n\n")]
body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs[:12] if p)
open(sys.argv[2], "w", encoding="utf-8").write(
    '<!doctype html><html lang="ar" dir="rtl"><meta charset="utf-8"><style>'
    "body { font-family: 'Noto Naskh Arabic'; font-size: 11pt; columns: 2; column-gap: 12mm;"
    " text-align: justify }</style><body>" + body + "</body></html>")
PY
print_pdf "$work/columns.html" "$out/release-columns.pdf"

# A PDF only its password opens.
printf '<!doctype html><html dir="rtl"><meta charset="utf-8"><p>نص سري</p></html>' >"$work/secret.html"
print_pdf "$work/secret.html" "$work/secret.pdf"
qpdf --encrypt secret owner 256 -- "$work/secret.pdf" "$out/encrypted.pdf"

ls -l "$out"
