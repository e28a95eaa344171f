"""The report's HTML after nbconvert: numbering, tables fitted to the page, ids, contents.

:mod:`cielib.report` assembles the executed notebooks into one HTML page; this module
post-processes that page: it removes every script that would reach the network,
numbers sections, figures and tables, sets wide tables smaller so that nothing is
clipped in the A4 PDF, makes heading ids unique and builds the table of contents.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import html as html_lib
import re

_EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.S)
_MODULE_SCRIPT = re.compile(r"<script type=\"module\">.*?</script>", re.S)
_MATHJAX_CONFIG = re.compile(r"<script type=\"text/x-mathjax-config\">.*?</script>", re.S)
_HEADING_TAG = re.compile(r"<h([1-6]) id=\"([^\"]*)\">(.*?)</h\1>", re.S)
_NUMBERED = re.compile(r"<h([1-6]) id=\"[^\"]*\">|<figcaption class=\"cielib-caption\">|<caption\b[^>]*>"
                       r"|<table\b[^>]*>(?!\s*<caption)", re.S)
_TABLE = re.compile(r"<table\b([^>]*)>(.*?)</table>", re.S)
WIDE_COLUMNS, VERY_WIDE_COLUMNS = 8, 12  # cells in a row from which a table is set smaller
TEXT_WIDTH_PT = (210 - 2 * 11) / 25.4 * 72 - 10  # A4 less PRINT_CSS's side margins, less a little


def number(body: str) -> str:
    """Number the sections (1, 1.1, 1.1.1, 1.1.1.1; the appendix A) and the captions per section.

    The first h1 is the document's title and stays unnumbered. Figures and tables are
    counted per top-level section: "Figure 2.3." is section 2's third figure.
    """
    counts = [0, 0, 0, 0]
    letter = ""
    figures = tables_ = 0
    seen_title = False

    def top() -> str:
        return letter or str(counts[0])

    last_heading = ""

    def fix(m: re.Match) -> str:
        nonlocal letter, figures, tables_, seen_title, last_heading
        tag = m.group(0)
        if m.group(1):
            level = int(m.group(1))
            end = body.find(f"</h{level}>", m.end())
            text = re.sub(r"<[^>]+>", "", body[m.end(): end]).replace("¶", "").strip()
            last_heading = text
            if level > 4:
                return tag
            if level == 1 and not seen_title:
                seen_title = True
                return tag
            if level == 1:
                if text.startswith("Appendix"):
                    letter = "A"
                else:
                    counts[0] += 1
                counts[1:] = [0, 0, 0]
                figures = tables_ = 0
                num = top()
            else:
                counts[level - 1] += 1
                counts[level:] = [0] * (4 - level)
                # a heading that skips a level (### under a part's ##) is not numbered x.0.y
                num = ".".join([top(), *(str(c) for c in counts[1:level] if c)])
            if not (counts[0] or letter):
                return tag
            return f'{tag}<span class="secnum">{num}</span> '
        if tag.startswith("<figcaption"):
            figures += 1
            return f'{tag}<span class="capnum">Figure {top()}.{figures}.</span> '
        tables_ += 1
        label = f'<span class="capnum">Table {top()}.{tables_}.</span> '
        if tag.startswith("<table"):  # a table with no caption (markdown): its heading's text
            return f'{tag}<caption class="cielib-caption">{label}{html_lib.escape(last_heading)}.</caption>'
        return tag + label

    return _NUMBERED.sub(fix, body)


def fit_class(inner: str, *, start: int = 75) -> str:
    """The print font-size class that lets a table's data cells fit the A4 text width.

    Cells break at spaces, and header cells also after ``_`` and ``/``
    (:func:`breakable_headers`), so the longest such words set the narrowest the table
    can be. That width is estimated from the
    characters (DejaVu Sans: about 0.62 em each) and the font chosen in 0.5 pt steps
    from ``start`` (tenths of a point: the size the table has anyway) down to 4.5 pt;
    below that, data cells may break anywhere (``squeeze``).
    """
    longest: dict[int, int] = {}
    for row in re.findall(r"<tr\b.*?</tr>", inner, re.S):
        for j, cell in enumerate(re.findall(r"<t[hd]\b[^>]*>(.*?)</t[hd]>", row, re.S)):
            text = html_lib.unescape(re.sub(r"<[^>]+>", "", cell))
            word = max((len(w) for w in re.split(r"[\s_/]+", text)), default=0)
            longest[j] = max(longest.get(j, 0), word)
    chars, cols = sum(longest.values()), max(len(longest), 1)
    if not chars:
        return ""
    for tenths in range(start, 40, -5):
        if chars * 0.62 * tenths / 10 + cols * 3.5 <= TEXT_WIDTH_PT:
            return f"fs{tenths}" if tenths < start else ""
    return "fs45 squeeze"


def breakable_headers(inner: str) -> str:
    """Let header cells break after ``_`` and ``/`` (long snake_case names, paths)."""

    def cell(m: re.Match) -> str:
        parts = re.split(r"(<[^>]+>)", m.group(2))
        text = "".join(p if p.startswith("<") else re.sub(r"([_/])", r"\1<wbr>", p) for p in parts)
        return f"{m.group(1)}{text}</th>"

    return re.sub(r"(<th\b[^>]*>)(.*?)</th>", cell, inner, flags=re.S)


def mark_wide_tables(body: str) -> str:
    """Classes on tables with many columns (``wide``, ``very-wide``) or long cells, so print sets them smaller."""

    def fix(m: re.Match) -> str:
        attrs, inner = m.group(1), m.group(2)
        cols = 0
        for row in re.findall(r"<tr\b.*?</tr>", inner, re.S):
            cells = re.findall(r"<t[hd]\b([^>]*)>", row)
            cols = max(cols, sum(int(re.search(r'colspan="(\d+)"', c).group(1)) if "colspan" in c else 1
                                 for c in cells))
        size = "very-wide" if cols >= VERY_WIDE_COLUMNS else "wide" if cols >= WIDE_COLUMNS else ""
        fit = fit_class(inner, start={"very-wide": 55, "wide": 65}.get(size, 75))
        extra = " ".join(c for c in (size, fit) if c)
        if not extra:
            return f"<table{attrs}>{breakable_headers(inner)}</table>"
        if re.search(r'\bclass="', attrs):
            attrs = re.sub(r'\bclass="', f'class="{extra} ', attrs, count=1)
        else:
            attrs += f' class="{extra}"'
        return f"<table{attrs}>{breakable_headers(inner)}</table>"

    return _TABLE.sub(fix, body)


def unique_ids(body: str) -> tuple[str, list[tuple[int, str, str]]]:
    """Make heading ids unique (sections repeat per task) and list the headings."""
    seen: dict[str, int] = {}
    headings: list[tuple[int, str, str]] = []

    def fix(m: re.Match) -> str:
        level, hid, inner = int(m.group(1)), m.group(2), m.group(3)
        n = seen.get(hid, 0)
        seen[hid] = n + 1
        new = hid if n == 0 else f"{hid}-{n + 1}"
        inner = inner.replace(f'href="#{hid}"', f'href="#{new}"')
        text = re.sub(r"<[^>]+>", "", inner).replace("¶", "").strip()
        headings.append((level, new, text))
        return f'<h{level} id="{new}">{inner}</h{level}>'

    return _HEADING_TAG.sub(fix, body), headings


def toc(headings: list[tuple[int, str, str]]) -> str:
    """Nested list of links to the h1 sections and their h2 parts."""
    items: list[str] = []
    open_sub = False
    for level, hid, text in headings[1:]:  # [0] is the document title
        link = f'<a href="#{hid}">{text}</a>'
        if level == 1:
            if open_sub:
                items.append("</ul></li>")
                open_sub = False
            elif items:
                items.append("</li>")
            items.append(f"<li>{link}")
        elif level == 2 and items:
            if not open_sub:
                items.append("<ul>")
                open_sub = True
            items.append(f"<li>{link}</li>")
    if items:
        items.append("</ul></li>" if open_sub else "</li>")
    return '<nav id="toc"><strong>Contents</strong><ul>' + "".join(items) + "</ul></nav>"


def offline(body: str) -> str:
    """Remove scripts that would fetch from the network (MathJax, require.js, mermaid)."""
    body = _EXTERNAL_SCRIPT.sub("", body)
    body = _MODULE_SCRIPT.sub("", body)
    return _MATHJAX_CONFIG.sub("", body)


def finish(body: str) -> str:
    """The whole post-processing of nbconvert's page: offline, numbered, fitted, with
    unique ids and the table of contents right after the document title."""
    body, headings = unique_ids(mark_wide_tables(number(offline(body))))
    first = _HEADING_TAG.search(body)
    if first:
        body = body[: first.end()] + toc(headings) + body[first.end():]
    return body
