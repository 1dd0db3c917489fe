"""index.html rendered in headless Chromium from fake generation and retrieval results: the page
loads every image, logs nothing to the console, has no empty table, shows the warnings a reader
must see, shows each run's images enlarged by one whole factor and wraps them within the window
rather than past its edge, and each of those checks fails when its fault is put in."""

from __future__ import annotations

import html
import json
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from test_report import FX, k_rows, make_results

from conftest import needs_chromium
from rdmbench.imaging import save_grid, save_panel
from rdmbench.report import write_report

pytestmark = needs_chromium
DATABASES = ("fashion-mnist", "digits", "shapes")


def tile(rng: np.random.Generator, size: int = 28) -> Image.Image:
    """A blob on black, like a Fashion-MNIST image."""
    im = Image.new("L", (size, size))
    x, y, w, h = rng.integers(4, 10, 2).tolist() + rng.integers(10, 18, 2).tolist()
    ImageDraw.Draw(im).ellipse((x, y, x + w, y + h), fill=int(rng.integers(120, 255)))
    return im


def fake_panel(path: Path, rng: np.random.Generator, k: int = 3, rows: int = 4, size: int = 28) -> None:
    """panel.png as the generation task draws it: query | k neighbours | sample | nearest training image."""
    names = ["query", *[f"n{i + 1}" for i in range(k)], "sample", "nearest X"]
    cell = size + 4
    im = Image.new("L", (cell * len(names), 14 + cell * rows), 255)
    draw = ImageDraw.Draw(im)
    for j, name in enumerate(names):
        draw.text((j * cell + 2, 1), name[:5], fill=0)
        for i in range(rows):
            im.paste(tile(rng, size), (j * cell + 2, 14 + i * cell + 2))
    im.convert("RGB").save(path)


def fake_samples(path: Path, rng: np.random.Generator) -> None:
    im = Image.new("L", (8 * 30, 4 * 30), 255)
    for i in range(32):
        im.paste(tile(rng), ((i % 8) * 30 + 1, (i // 8) * 30 + 1))
    im.convert("RGB").save(path)


def generation_results(root: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for d, base in zip(DATABASES, (60.0, 95.0, 120.0)):
        for seed in (0, 1):
            fid = base + 3 * seed
            rows.append(dict(run_id=f"sampling_database={d}_seed={seed}", status="ok", sampling_database=d, seed=seed,
                             fid=fid, fid_lo=fid - 4, fid_hi=fid + 5, precision=0.6 - base / 1000, precision_lo=0.5,
                             precision_hi=0.65, recall=0.3 + base / 1000, recall_lo=0.25, recall_hi=0.45,
                             class_agreement=0.4, class_agreement_lo=0.35, class_agreement_hi=0.45,
                             class_agreement_chance=0.1, near_copies=0.04 + base / 2000, near_copies_lo=0.02,
                             near_copies_hi=0.09, near_copy_quantile=0.05, k=3, feature_extractor=FX,
                             encoder="efficientnet-lite0", num_samples=500, head_parameters=1609569, wall_s=40.0,
                             profile="smoke"))
    rows.append(dict(run_id="sampling_database=mixed_seed=0", status="failed", sampling_database="mixed", seed=0,
                     error="ConfigError: the sampling database was built with another encoder", profile="smoke"))
    res = make_results(root, rows, ["sampling_database", "seed"], {"x": "sampling_database", "title": "Stylization"})
    for r in rows:
        if r["status"] == "ok":
            fake_panel(res / "runs" / r["run_id"] / "panel.png", rng)
            fake_samples(res / "runs" / r["run_id"] / "samples.png", rng)
    return res


def retrieval_results(root: Path) -> Path:
    rows = []
    for name, speed in (("exact", 1.0), ("hnswlib", 8.0)):
        for ef in (8, 32, 128):
            rows.append(dict(run_id=f"{name}_ef{ef}", status="ok", retriever=name, vectors="fashion-mnist-784",
                             recall=1.0 if name == "exact" else 1 - 2 / ef, qps=2000 * speed / (1 + ef / 64),
                             qps_single=300 * speed / (1 + ef / 64), latency_p50_ms=ef / 40, latency_p99_ms=ef / 20,
                             build_s=0.1 * speed, index_bytes=2**22, k=10, database_size=6000, dim=784,
                             encoder="pixels", metric="l2", num_queries=100,
                             **{"retriever.query.ef": ef if name != "exact" else "", "seed": 0}))
    return make_results(root, rows, ["retriever.name", "retriever.query.ef", "seed"], samples=False,
                        task="retrieval")


def browse(chromium: str, page: Path, work: Path, width: int = 1400) -> tuple[str, str]:
    """The page's DOM after load, and Chromium's log (console messages are its CONSOLE lines)."""
    args = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={work / 'profile'}",
            "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", f"--window-size={width},2400"]
    proc = subprocess.run([*args, "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, proc.stderr


def screenshot(chromium: str, page: Path, png: Path) -> Image.Image:
    subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={png.parent / 'profile'}", "--window-size=1400,2400",
                    "--virtual-time-budget=5000", f"--screenshot={png}", page.resolve().as_uri()],
                   capture_output=True, timeout=120, check=True)
    return Image.open(png)


def problems(dom: str, log: str) -> list[str]:
    """What a reader would trip over: images that did not load, console messages, empty tables."""
    found = []
    marker = re.search(r'data-broken-images="(\d+)"', dom)
    if marker is None:
        found.append("the image check did not run (no data-broken-images)")
    elif marker.group(1) != "0":
        found.append(f"{marker.group(1)} broken image(s)")
    found += [f"console: {line}" for line in log.splitlines() if ":CONSOLE" in line]
    for i, body in enumerate(re.findall(r"<tbody>(.*?)</tbody>", dom, re.S)):
        if "<tr" not in body or "No rows." in body:
            found.append(f"table {i} is empty")
    return found


def render(chromium: str, res: Path, tmp_path: Path) -> tuple[Path, str]:
    write_report(res)
    page = res / "report" / "index.html"
    dom, log = browse(chromium, page, tmp_path)
    assert problems(dom, log) == []
    shot = screenshot(chromium, page, tmp_path / f"{res.name}.png")
    assert shot.size == (1400, 2400) and len(set(shot.convert("L").resize((70, 120)).getdata())) > 20
    return page, dom


def test_generation_page(chromium, tmp_path):
    page, dom = render(chromium, generation_results(tmp_path / "stylization"), tmp_path)
    assert 'class="fact warn wide"' in dom and "NOT Inception" in dom  # the feature-space warning, styled as one
    tables = re.findall(r'<figure class="tbl (\w+)">', dom)
    assert tables == ["results", "failed"]
    results = re.search(r'<figure class="tbl results">.*?</figure>', dom, re.S).group(0)
    assert results.count("<tr>") == 1 + 4  # header, one row per database, the failed one's
    assert '<span class="ci">[42.44, 80.56]</span>' in results  # Student's t over the two seeds (60, 63)
    assert re.search(r'class="num best"><span class="v">61.5 ± 2.1</span>', results)  # lowest FD of the column
    assert "FD (efficientnet-lite2)" in results and '<span class="arrow">↓</span>' in results
    assert "(expected 0.05)" in results and "(chance 0.1)" in results
    assert "another encoder" in dom  # the failed run's error
    # panels and sample grids, one column per sampling database
    assert dom.count('src="panels/') == 6 and dom.count('src="samples/') == 6
    assert all(f'<div class="colhead">sampling_database={d}</div>' in dom for d in DATABASES)
    assert "<script" in dom and "<link" not in dom and "http" not in dom.replace("http-equiv", "")


def k_train_results(root: Path) -> Path:
    """A k_train sweep whose panels and sample grids are drawn as a run draws them (already enlarged 3x and
    2x): a panel of 16 neighbours is wider than half the page."""
    rng = np.random.default_rng(0)
    res = make_results(root, k_rows(), ["k_train", "seed"], {"x": "k_train"})
    for r in k_rows():
        if r["status"] == "ok":
            n, k = 8, r["k_train"]
            images = rng.integers(0, 256, (48, 28, 28, 1), dtype=np.uint8)
            save_panel(res / "runs" / r["run_id"] / "panel.png", images[:n], images[n:2 * n],
                       (images, rng.integers(0, 48, (n, k))), images, np.arange(n))
            save_grid(res / "runs" / r["run_id"] / "samples.png", images[:40], images[8:], max_items=40)
    return res


def layout(chromium: str, page: Path, work: Path, width: int) -> dict:
    """Where the window of ``width`` px draws each run image (see LAYOUT), and whether the page scrolls sideways."""
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", LAYOUT + "</body>"))
    dom, _ = browse(chromium, probe, work, width)
    return json.loads(html.unescape(re.search(r'data-layout="([^"]*)"', dom).group(1)))


# per run image: its gallery, its file's width and the width drawn, its right edge, how it is scaled
LAYOUT = """<script>window.addEventListener("load", function () {
  var galleries = Array.prototype.slice.call(document.querySelectorAll(".gallery"));
  var images = Array.prototype.map.call(document.querySelectorAll(".tile img"), function (i) {
    var box = i.getBoundingClientRect();
    return {gallery: galleries.indexOf(i.closest(".gallery")), src: i.getAttribute("src"), natural: i.naturalWidth,
            drawn: box.width, right: box.right, rendering: getComputedStyle(i).imageRendering};
  });
  document.body.dataset.layout = JSON.stringify({window: window.innerWidth,
                                                 page: document.documentElement.scrollWidth, images: images});
});</script>"""


def layout_problems(seen: dict, whole: bool = True) -> list[str]:
    """What a reader at this window would trip over: a page that scrolls sideways, a run image past the window's
    edge (cut off, or in a row that scrolls), one smoothed, and with ``whole``: one drawn at other than a whole
    multiple of its file's width, or a gallery whose images are enlarged by different factors."""
    found = [f"the page scrolls sideways ({seen['page']} px in {seen['window']})"] \
        if seen["page"] > seen["window"] else []
    factors = defaultdict(set)
    for i in seen["images"]:
        if i["right"] > seen["window"]:
            found.append(f"{i['src']} reaches {i['right']:.0f} px, past the window")
        if i["rendering"] != "pixelated":
            found.append(f"{i['src']} is smoothed ({i['rendering']})")
        factor = i["drawn"] / i["natural"]
        if whole and (factor < 1 or abs(factor - round(factor)) > 1e-6):
            found.append(f"{i['src']} drawn at {factor:.2f} times its width")
        factors[i["gallery"]].add(round(factor, 6))
    return found + [f"gallery {g} enlarges by {sorted(f)}" for g, f in factors.items() if whole and len(f) > 1]


def test_run_images_are_enlarged_by_one_whole_factor(chromium, tmp_path):
    """28-px images are drawn larger, at a whole multiple of their width, pixels sharp; a narrow panel (k = 1
    beside k = 3) by the same factor as the others, so panels of different k show their text alike."""
    res = generation_results(tmp_path / "sizes")
    fake_panel(res / "runs" / "sampling_database=digits_seed=0" / "panel.png", np.random.default_rng(1), k=1)
    write_report(res)
    page = res / "report" / "index.html"
    seen = layout(chromium, page, tmp_path, 1400)
    assert layout_problems(seen) == [] and len(seen["images"]) == 12
    assert min(i["drawn"] / i["natural"] for i in seen["images"]) >= 2

    text = page.read_text()
    page.write_text(re.sub(r' width="\d+" height="\d+"', "", text))  # drawn at their own size
    assert min(i["drawn"] / i["natural"] for i in layout(chromium, page, tmp_path, 1400)["images"]) == 1
    page.write_text(text.replace("</style>", ".tile img { width: 100%; }</style>"))  # stretched to their column
    assert any("times its width" in p for p in layout_problems(layout(chromium, page, tmp_path, 1400)))
    page.write_text(text.replace("</style>", ".tile img { image-rendering: auto; }</style>"))
    assert any("smoothed" in p for p in layout_problems(layout(chromium, page, tmp_path, 1400)))


def test_run_images_wrap_within_the_window(chromium, tmp_path):
    """Five runs' panels, as wide as a run draws them, wrap onto further rows at 1400 px, each at a whole
    multiple of its width, none cut off at the window's edge; at 900 px the widest shrink to fit."""
    res = k_train_results(tmp_path / "k_train")
    write_report(res)
    page = res / "report" / "index.html"
    seen = layout(chromium, page, tmp_path, 1400)
    assert layout_problems(seen) == [] and len(seen["images"]) == 20
    assert max(i["natural"] for i in seen["images"]) > 1400 / 2
    assert layout_problems(layout(chromium, page, tmp_path, 900), whole=False) == []

    page.write_text(page.read_text().replace("</style>", ".flow { flex-wrap: nowrap; }</style>"))
    assert layout_problems(layout(chromium, page, tmp_path, 1400)) != []


def test_retrieval_page(chromium, tmp_path):
    _, dom = render(chromium, retrieval_results(tmp_path / "retrievers"), tmp_path)
    assert 'src="pareto_recall_qps.png"' in dom and 'src="pareto_recall_qps_single.png"' in dom
    assert "failed" not in re.findall(r'<figure class="tbl (\w+)">', dom)
    assert dom.count('class="num best"') >= 3


def test_checks_catch_a_missing_image_a_console_error_and_an_empty_table(chromium, tmp_path):
    res = generation_results(tmp_path / "faulty")
    write_report(res)
    page = res / "report" / "index.html"
    (res / "report" / "panels" / "sampling_database=digits_seed=1.png").unlink()
    dom, log = browse(chromium, page, tmp_path)
    assert problems(dom, log) == ["1 broken image(s)"]
    assert "sampling_database=digits_seed=1.png" in re.search(r'<div id="broken"[^>]*>(.*?)</div>', dom).group(1)

    text = page.read_text()
    bad = page.with_name("bad.html")
    bad.write_text(text.replace("</body>", "<script>undefinedFunction()</script></body>"))
    assert any("undefinedFunction" in p for p in problems(*browse(chromium, bad, tmp_path)))
    body = re.search(r'<figure class="tbl results">.*?<tbody>(.*?)</tbody>', text, re.S).group(1)
    bad.write_text(text.replace(body, ""))
    assert "table 0 is empty" in problems(*browse(chromium, bad, tmp_path))
