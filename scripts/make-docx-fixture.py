#!/usr/bin/env python3
"""Builds tests/fixtures/formats/release.docx from samples/000_*.txt (a GCC press release).

The package is written by hand, as Word writes one, so that the DOCX reader is tested on
what real documents contain: localized style ids resolved through styles.xml, runs
split mid-word with identical formatting, a list through numbering.xml, a table with a
header row, a header, a footer with a PAGE field, a footnote and a hyperlink.

Standard library only. Run from the repository root:
    python3 scripts/make-docx-fixture.py
"""

import pathlib
import zipfile
from xml.sax.saxutils import escape, quoteattr

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "000_e0e78c066911b3fb.txt"
OUT = ROOT / "tests" / "fixtures" / "formats" / "release.docx"

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS = f'xmlns:w="{W}" xmlns:r="{R}"'
DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
LINK = "https://www.gcc-sg.org/ar"

# Arabic runs as Word writes them: right-to-left, complex-script language.
RTL_RPR = '<w:rPr><w:rtl/><w:lang w:bidi="ar-SA"/></w:rPr>'


def run(text, rpr=RTL_RPR):
    return f'<w:r>{rpr}<w:t xml:space="preserve">{escape(text)}</w:t></w:r>'


def split_mid_word(text):
    """Two runs with identical formatting, cut inside a word, as Word leaves them
    after an edit (each with its own revision id)."""
    at = len(text) // 2
    while at < len(text) - 1 and (text[at].isspace() or text[at - 1].isspace()):
        at += 1
    return (
        f'<w:r w:rsidR="00A1">{RTL_RPR}<w:t xml:space="preserve">{escape(text[:at])}</w:t></w:r>'
        f'<w:r w:rsidR="00B2">{RTL_RPR}<w:t xml:space="preserve">{escape(text[at:])}</w:t></w:r>'
    )


def para(content, style=None, extra_ppr=""):
    style_xml = f'<w:pStyle w:val="{style}"/>' if style else ""
    return f"<w:p><w:pPr>{style_xml}{extra_ppr}<w:bidi/></w:pPr>{content}</w:p>"


def body_paragraphs(paragraphs, countries):
    title, dateline, first, second, heading, third, fourth = (
        paragraphs[0], paragraphs[1], paragraphs[2], paragraphs[3],
        paragraphs[4], paragraphs[5], paragraphs[6],
    )
    footnote_mark = '<w:r><w:rPr><w:rStyle w:val="FootnoteReference"/></w:rPr><w:footnoteReference w:id="1"/></w:r>'
    out = [
        para(split_mid_word(title), "Titre1"),
        para(run(dateline)),
        para(split_mid_word(first)),
        para(split_mid_word(second) + footnote_mark),
        para(run(heading), "Titre2"),
        para(split_mid_word(third)),
        para(run(fourth)),
        para(
            run("ولمزيد من المعلومات يمكن زيارة ")
            + '<w:hyperlink r:id="rId20" w:history="1">'
            + run("موقع الأمانة العامة", '<w:rPr><w:rStyle w:val="Hyperlink"/><w:rtl/></w:rPr>')
            + "</w:hyperlink>"
            + run(".")
        ),
    ]
    bullet = '<w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr>'
    out += [para(run(c), "Liste", bullet) for c in countries]
    return out


def cell(text, header=False):
    shade = '<w:shd w:val="clear" w:color="auto" w:fill="D9E2F3"/>' if header else ""
    return f'<w:tc><w:tcPr><w:tcW w:w="3000" w:type="dxa"/>{shade}</w:tcPr>{para(run(text))}</w:tc>'


def table():
    rows = [
        ("الدولة", "العاصمة", "التاريخ"),
        ("جمهورية طاجيكستان", "دوشانبي", "الثاني من أغسطس 2022م"),
        ("جمهورية قيرغيزستان", "بشكيك", "الثالث من أغسطس 2022م"),
    ]
    xml = [
        '<w:tbl><w:tblPr><w:tblStyle w:val="Grille"/><w:bidiVisual/><w:tblW w:w="0" w:type="auto"/>'
        '<w:tblLook w:val="04A0" w:firstRow="1" w:lastRow="0" w:firstColumn="1" w:lastColumn="0" '
        'w:noHBand="0" w:noVBand="1"/></w:tblPr>'
        '<w:tblGrid><w:gridCol w:w="3000"/><w:gridCol w:w="3000"/><w:gridCol w:w="3000"/></w:tblGrid>'
    ]
    for i, row in enumerate(rows):
        header = i == 0
        props = "<w:trPr><w:tblHeader/></w:trPr>" if header else ""
        xml.append(f"<w:tr>{props}{''.join(cell(t, header) for t in row)}</w:tr>")
    xml.append("</w:tbl>")
    return "".join(xml)


def document(paragraphs, countries):
    sect = (
        '<w:sectPr><w:headerReference w:type="default" r:id="rId10"/>'
        '<w:footerReference w:type="default" r:id="rId11"/>'
        '<w:pgSz w:w="11906" w:h="16838"/>'
        '<w:pgMar w:top="1440" w:right="1440" w:bottom="1440" w:left="1440" w:header="708" w:footer="708" w:gutter="0"/>'
        '<w:bidi/></w:sectPr>'
    )
    body = "".join(body_paragraphs(paragraphs, countries)) + table() + "<w:p/>" + sect
    return f"{DECL}<w:document {NS}><w:body>{body}</w:body></w:document>"


def header():
    text = "الأمانة العامة لمجلس التعاون لدول الخليج العربية"
    return f"{DECL}<w:hdr {NS}>{para(run(text), 'EnTete')}</w:hdr>"


def footer():
    page_field = (
        run("صفحة ")
        + '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        + '<w:r><w:instrText xml:space="preserve"> PAGE \\* MERGEFORMAT </w:instrText></w:r>'
        + '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        + run("1")
        + '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )
    line = "الرياض – المملكة العربية السعودية"
    return f"{DECL}<w:ftr {NS}>{para(page_field, 'PiedDePage')}{para(run(line), 'PiedDePage')}</w:ftr>"


def footnotes():
    separator = '<w:p><w:r><w:separator/></w:r></w:p>'
    continuation = '<w:p><w:r><w:continuationSeparator/></w:r></w:p>'
    note = para(
        '<w:r><w:rPr><w:rStyle w:val="FootnoteReference"/></w:rPr><w:footnoteRef/></w:r>'
        + run(" شملت الجولة خمس دول هي تركمانستان وطاجيكستان وقيرغيزستان وأوزبكستان وكازاخستان."),
        "NoteDeBasDePage",
    )
    return (
        f"{DECL}<w:footnotes {NS}>"
        f'<w:footnote w:type="separator" w:id="-1">{separator}</w:footnote>'
        f'<w:footnote w:type="continuationSeparator" w:id="0">{continuation}</w:footnote>'
        f'<w:footnote w:id="1">{note}</w:footnote></w:footnotes>'
    )


def style(style_type, style_id, name, extra=""):
    return (
        f'<w:style w:type="{style_type}" w:styleId="{style_id}">'
        f'<w:name w:val={quoteattr(name)}/>{extra}</w:style>'
    )


def styles():
    # Ids as a French Word writes them; the names are the built-in English ones.
    entries = [
        '<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/></w:style>',
        style("paragraph", "Titre1", "heading 1",
              '<w:basedOn w:val="Normal"/><w:pPr><w:keepNext/><w:outlineLvl w:val="0"/></w:pPr>'
              '<w:rPr><w:b/><w:bCs/><w:sz w:val="32"/><w:szCs w:val="32"/></w:rPr>'),
        style("paragraph", "Titre2", "heading 2",
              '<w:basedOn w:val="Normal"/><w:pPr><w:keepNext/><w:outlineLvl w:val="1"/></w:pPr>'
              '<w:rPr><w:b/><w:bCs/></w:rPr>'),
        style("paragraph", "Liste", "List Paragraph",
              '<w:basedOn w:val="Normal"/><w:pPr><w:ind w:left="720"/></w:pPr>'),
        style("paragraph", "EnTete", "header", '<w:basedOn w:val="Normal"/>'),
        style("paragraph", "PiedDePage", "footer", '<w:basedOn w:val="Normal"/>'),
        style("paragraph", "NoteDeBasDePage", "footnote text", '<w:basedOn w:val="Normal"/>'),
        style("character", "FootnoteReference", "footnote reference", '<w:rPr><w:vertAlign w:val="superscript"/></w:rPr>'),
        style("character", "Hyperlink", "Hyperlink", '<w:rPr><w:color w:val="0563C1"/><w:u w:val="single"/></w:rPr>'),
        style("table", "Grille", "Table Grid",
              '<w:tblPr><w:tblBorders>'
              + "".join(f'<w:{side} w:val="single" w:sz="4" w:space="0" w:color="auto"/>'
                        for side in ("top", "left", "bottom", "right", "insideH", "insideV"))
              + '</w:tblBorders></w:tblPr>'),
    ]
    return f"{DECL}<w:styles {NS}>{''.join(entries)}</w:styles>"


def numbering():
    levels = "".join(
        f'<w:lvl w:ilvl="{i}"><w:start w:val="1"/><w:numFmt w:val="bullet"/>'
        f'<w:lvlText w:val="{"•◦▪"[i % 3]}"/><w:lvlJc w:val="left"/>'
        f'<w:pPr><w:ind w:left="{720 * (i + 1)}" w:hanging="360"/></w:pPr></w:lvl>'
        for i in range(3)
    )
    return (
        f"{DECL}<w:numbering {NS}>"
        f'<w:abstractNum w:abstractNumId="0"><w:multiLevelType w:val="hybridMultilevel"/>{levels}</w:abstractNum>'
        f'<w:num w:numId="1"><w:abstractNumId w:val="0"/></w:num></w:numbering>'
    )


def relationships(entries):
    rels = "".join(
        f'<Relationship Id="{rid}" Type="{R}/{kind}" Target={quoteattr(target)}'
        + (' TargetMode="External"' if kind == "hyperlink" else "")
        + "/>"
        for rid, kind, target in entries
    )
    return f'{DECL}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>'


def content_types():
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml"
    overrides = [
        ("/word/document.xml", f"{main}.document.main+xml"),
        ("/word/styles.xml", f"{main}.styles+xml"),
        ("/word/numbering.xml", f"{main}.numbering+xml"),
        ("/word/header1.xml", f"{main}.header+xml"),
        ("/word/footer1.xml", f"{main}.footer+xml"),
        ("/word/footnotes.xml", f"{main}.footnotes+xml"),
        ("/docProps/core.xml", "application/vnd.openxmlformats-package.core-properties+xml"),
    ]
    xml = "".join(f'<Override PartName="{p}" ContentType="{t}"/>' for p, t in overrides)
    return (
        f'{DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        f'<Default Extension="xml" ContentType="application/xml"/>{xml}</Types>'
    )


def core(title):
    return (
        f'{DECL}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>{escape(title)}</dc:title><dc:language>ar-SA</dc:language></cp:coreProperties>"
    )


def main():
    text = SAMPLE.read_text(encoding="utf-8")
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    countries = [p for p in paragraphs if p.startswith("جمهورية ") and len(p.split()) <= 3]
    assert len(countries) == 5, countries
    parts = {
        "[Content_Types].xml": content_types(),
        "_rels/.rels": relationships([
            ("rId1", "officeDocument", "word/document.xml"),
            ("rId2", "metadata/core-properties", "docProps/core.xml"),
        ]).replace(f"{R}/metadata/core-properties",
                   "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"),
        "docProps/core.xml": core(paragraphs[0]),
        "word/document.xml": document(paragraphs, countries),
        "word/styles.xml": styles(),
        "word/numbering.xml": numbering(),
        "word/header1.xml": header(),
        "word/footer1.xml": footer(),
        "word/footnotes.xml": footnotes(),
        "word/_rels/document.xml.rels": relationships([
            ("rId1", "styles", "styles.xml"),
            ("rId2", "numbering", "numbering.xml"),
            ("rId3", "footnotes", "footnotes.xml"),
            ("rId10", "header", "header1.xml"),
            ("rId11", "footer", "footer1.xml"),
            ("rId20", "hyperlink", LINK),
        ]),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(OUT, "w", zipfile.ZIP_DEFLATED) as z:
        for name, xml in parts.items():
            # A fixed date keeps the file identical from one run to the next.
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, xml.encode("utf-8"))
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
