"""The report as a reader gets it: a real browser with networking off, and the PDF's pages."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from conftest import need_tool

PROBE = """<script>
window.__errors = [];
(function () {
  const original = console.error;
  console.error = function (...args) { window.__errors.push(args.join(' ')); original.apply(console, args); };
  window.addEventListener('error', function (ev) {
    const t = ev.target;
    window.__errors.push(ev.message || ('failed to load ' + (t && (t.src || t.href))));
  }, true);
  window.addEventListener('load', function () {
    const toc = [...document.querySelectorAll('nav#toc a')];
    const report = {
      h1: [...document.querySelectorAll('h1')].map(h => h.textContent.replace('\\u00b6', '').trim()),
      toc_links: toc.length,
      toc_broken: toc.filter(a => !document.getElementById(decodeURIComponent(a.hash.slice(1)))).length,
      images: document.images.length,
      images_broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length,
      errors: window.__errors,
    };
    const pre = document.createElement('pre');
    pre.id = 'report-check';
    pre.textContent = JSON.stringify(report);
    document.body.appendChild(pre);
  });
})();
</script>"""

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-quic", "--virtual-time-budget=10000"]


def _offline(cmd: list[str]) -> list[str]:
    """Run with no network at all (a fresh network namespace) where we can."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n", *cmd]
    return [*cmd, "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]


@pytest.mark.slow
def test_report_renders_offline_in_chromium(tiny_run, tmp_path):
    chromium = need_tool("chromium")
    root, _, res = tiny_run
    assert res.returncode == 0, res.stdout + res.stderr
    html = (root / "report" / "report.html").read_text()
    assert not re.search(r"<script[^>]+src=\"https?://", html), "the report must not load remote scripts"
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("<head>", "<head>" + PROBE, 1))
    base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(_offline([*base, "--dump-dom", probe.as_uri()]),
                         capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="report-check">(.*?)</pre>', dom.stdout, re.S)
    assert match, dom.stderr[-2000:]
    check = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert check["errors"] == []
    assert check["h1"][0].startswith("Rethinking compression")  # the title, unnumbered
    assert "1 Aims and method" in check["h1"]  # numbered sections
    assert any(re.match(r"\d+ .*VGG-19 on CIFAR-10", h) for h in check["h1"])
    assert "A Appendix" in check["h1"]
    assert check["toc_links"] >= 10 and check["toc_broken"] == 0
    assert check["images"] >= 8 and check["images_broken"] == 0
    shot = tmp_path / "report.png"
    subprocess.run(_offline([*base, f"--screenshot={shot}", "--window-size=1200,3000",
                             (root / "report" / "report.html").as_uri()]),
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 50_000  # a real page, not a blank one


@pytest.mark.slow
def test_pdf_pages_render(tiny_run, tmp_path):
    pdftoppm = need_tool("pdftoppm")
    root, _, res = tiny_run
    pdf = root / "report" / "report.pdf"
    assert pdf.is_file(), res.stdout + res.stderr
    subprocess.run([pdftoppm, "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=300)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 6
    from PIL import Image

    sizes = {Image.open(p).size for p in pages}
    (w, h), = sizes  # every page the same size
    assert abs(h / w - 297 / 210) < 0.02, f"not A4: {w}x{h}"
    import numpy as np

    assert all(np.asarray(Image.open(p).convert("L")).std() > 1 for p in pages), "a blank page"


@pytest.mark.slow
def test_pipeline_report_stays_inside_the_page(tiny_run):
    """The report run_all.py builds: no word beyond the A4 right margin, an outline by section."""
    pdftotext = need_tool("pdftotext")
    pdftohtml = need_tool("pdftohtml")
    root, _, res = tiny_run
    pdf = root / "report" / "report.pdf"
    assert pdf.is_file(), res.stdout + res.stderr
    _, beyond = _words_beyond_margin(pdf, pdftotext)
    assert beyond == [], f"{len(beyond)} words beyond the right margin: {beyond[:10]}"
    xml = subprocess.run([pdftohtml, "-xml", "-i", "-q", "-stdout", str(pdf)],
                         capture_output=True, text=True, check=True).stdout
    items = re.findall(r"<item[^>]*>(.*?)</item>", xml)
    assert "1 Aims and method" in items and "A Appendix" in items, items


# ---- the PDF's layout: nothing beyond the A4 text area, an outline by section ----------

RIGHT_MARGIN_PT = 11 / 25.4 * 72  # PRINT_CSS: @page margin 14mm 11mm 16mm 11mm
CLASSES = ["T-shirt/top with a rather long descriptive name", "Trouser", "Pullover sweater_knitted",
           "Dress", "Coat_with_hood_and_zip", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot high-top"]


def _wide_notebook_columns() -> list[str]:
    return [f"{a}_{b}_{c}" for a, b, c in zip(
        ["n_cie_images_population", "mean_impacted_images_single", "val_accuracy_mean",
         "macro_f1", "micro_precision", "tflite_gzip_bytes", "agreement_with_keras",
         "speedup_throughput", "hw_utilization_mean_pct", "significant_classes", "top1",
         "mean_norm_recall_comp", "gzip_ratio_vs_dense", "throughput_vs_dense"],
        ["single", "population", "over", "seeds", "per", "setting", "x", "y", "z", "w", "v", "u", "t", "s"],
        ["long_suffix_number_one", "another_long_suffix", "third", "fourth_suffix", "fifth", "sixth",
         "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth"])]


def _wide_notebook():
    """Synthetic executed notebook: the kinds of wide output that clipped in the real report."""
    import base64
    import io

    import nbformat
    import numpy as np
    import pandas as pd
    from PIL import Image

    from cielib import tables

    rng = np.random.default_rng(0)
    wide_cols = _wide_notebook_columns()
    wide = pd.DataFrame(rng.uniform(0, 100000, size=(10, 14)), columns=wide_cols,
                        index=pd.Index(CLASSES, name="class_name_of_the_fashion_item"))
    confusion = pd.DataFrame(rng.dirichlet(np.ones(10), size=10), index=CLASSES, columns=CLASSES)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, size=(200, 3000, 3), dtype=np.uint8)).save(buf, format="PNG")
    png = base64.b64encode(buf.getvalue()).decode()

    def out(html=None, png_data=None, text=None, md=None):
        if text is not None:
            return nbformat.v4.new_output("stream", name="stdout", text=text)
        data = {"text/html": html} if html else {"text/markdown": md} if md else {"image/png": png_data}
        return nbformat.v4.new_output("display_data", data=data)

    nb = nbformat.v4.new_notebook()
    cells = [nbformat.v4.new_markdown_cell("# Wide things\n\n### Raw wide table\n\nA raw DataFrame, 14 columns."),
             nbformat.v4.new_code_cell("", outputs=[out(html=wide.to_html())]),
             nbformat.v4.new_markdown_cell("**Presented**: through cielib.tables (at most 12 columns)."),
             nbformat.v4.new_code_cell("", outputs=[out(html=tables.present(wide.iloc[:, :PRESENTED],
                                                                            caption="Wide").to_html())]),
             nbformat.v4.new_markdown_cell("### Confusion\n\nA 10x10 table with long class names."),
             nbformat.v4.new_code_cell("", outputs=[out(html=confusion.round(3).to_html())]),
             nbformat.v4.new_code_cell("", outputs=[out(md="| " + " | ".join(wide_cols[:9]) + " |\n|"
                                                         + "---|" * 9 + "\n| " + " | ".join(CLASSES[:9]) + " |")]),
             nbformat.v4.new_code_cell("", outputs=[out(png_data=png)], metadata={"caption": "A wide image"}),
             nbformat.v4.new_code_cell("", outputs=[out(text="x" * 400 + "\n" + " ".join(wide_cols) + "\n")])]
    for c in cells:
        if c.cell_type == "code":
            c.execution_count = 1
    nb.cells = cells
    return nb


PRESENTED = 11  # columns of the presented table (+ the index: the widest the report allows)


def _pdf_words(pdf, pdftotext) -> set[str]:
    xml = subprocess.run([pdftotext, "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"<word [^>]*>(.*?)</word>", xml))


def _words_beyond_margin(pdf, pdftotext) -> tuple[int, list[str]]:
    xml = subprocess.run([pdftotext, "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pages = re.findall(r'<page width="([\d.]+)" height="[\d.]+">(.*?)</page>', xml, re.S)
    beyond = []
    for width, page in pages:
        limit = float(width) - RIGHT_MARGIN_PT + 0.5
        for xmax, word in re.findall(r'<word xMin="[\d.]+" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">(.*?)</word>',
                                     page):
            if float(xmax) > limit:
                beyond.append(f"{word} (xMax {float(xmax):.1f} > {limit:.1f})")
    return len(pages), beyond


def test_wide_tables_stay_inside_the_page_and_the_pdf_has_an_outline(tmp_path):
    pdftotext = need_tool("pdftotext")
    pdftohtml = need_tool("pdftohtml")
    import nbformat
    import pandas as pd

    from cielib import report

    path = tmp_path / "wide.ipynb"
    nbformat.write(_wide_notebook(), str(path))
    index = pd.DataFrame([{"run_id": f"{i:012x}", "stage": "quantize", "task": "fashion_mnist_vgg_small_long",
                           "sparsity": 0.9, "technique": "dynamic_int8", "seed": i, "top1": 0.9,
                           "path": f"runs/quantize/{i:012x}_with_a_long_directory_name"} for i in range(3)])
    sections = [report.Section("Aims and method", markdown="Text."),
                report.task_section("Small CNN", {"results": [path], "cie": [path]},
                                    stand_in_for="VGG-19 on CIFAR-10", paper_task="vgg19_cifar10")]
    html = report.build_html(sections, out=tmp_path / "report.html", title="Wide report", index=index)
    pdf = report.build_pdf(html, out=tmp_path / "report.pdf")
    n_pages, beyond = _words_beyond_margin(pdf, pdftotext)
    assert n_pages >= 2
    assert beyond == [], f"{len(beyond)} words beyond the right margin: {beyond[:10]}"
    # no header of a presented table is broken mid-word: every header word is whole in the PDF
    from cielib import tables

    words = _pdf_words(pdf, pdftotext)
    heads = [tables.header(c) for c in _wide_notebook_columns()[:PRESENTED]]
    broken = [w for h in heads for w in h.split() if w not in words]
    assert broken == [], f"header words broken in the PDF: {broken[:10]}"
    # the PDF's outline (bookmarks) follows the numbered sections
    xml = subprocess.run([pdftohtml, "-xml", "-i", "-q", "-stdout", str(pdf)],
                         capture_output=True, text=True, check=True).stdout
    items = re.findall(r"<item[^>]*>(.*?)</item>", xml)
    for title in ("1 Aims and method", "2 Results: Small CNN, standing in for VGG-19 on CIFAR-10",
                  "2.1 Training and test performance under pruning", "2.2 Impacted classes and images",
                  "A Appendix", "A.2 Runs"):
        assert title in items, items


def test_the_margin_check_sees_a_word_beyond_the_margin(tmp_path):
    """The check above can fail: a table forced wider than the page is caught."""
    pdftotext = need_tool("pdftotext")
    from cielib import report

    cells = "".join(f"<td>cell_{i}_wide</td>" for i in range(40))
    html = tmp_path / "r.html"
    html.write_text(f"<html><head>{report.PRINT_CSS}</head><body><table style='table-layout: fixed; "
                    f"width: 400mm'><tr>{cells}</tr></table></body></html>")
    _, beyond = _words_beyond_margin(report.build_pdf(html, out=tmp_path / "r.pdf"), pdftotext)
    assert beyond
