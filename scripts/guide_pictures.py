"""Make the pictures of the officers' guide (docs/img/*.png) from the sample's
outputs, and write its table of messages from pipeline/data/messages_vi.csv,
so the guide stays current: `python scripts/guide_pictures.py [WORKDIR]`
after `make inventory` (WORKDIR defaults to data/processed).

Uses LibreOffice (forms, review workbook) and poppler (pdftoppm) when they are
installed, and QGIS's Python API for the QGIS picture; a picture whose tool is
missing is left as it is, said on the console."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from pipeline.messages import officer_table

REPO = Path(__file__).resolve().parents[1]
IMG = REPO / "docs" / "img"
GUIDE = REPO / "docs" / "huong-dan-su-dung.md"
WIDTH = 1100  # pixels: small enough for a Markdown page
Image.MAX_IMAGE_PIXELS = None


def save(image: Image.Image, name: str) -> None:
    image = image.convert("RGB")
    if image.width > WIDTH:
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
    IMG.mkdir(parents=True, exist_ok=True)
    small = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(IMG / name, optimize=True)
    print(f"docs/img/{name}")


def pdf_page(pdf: Path, dpi: int = 60) -> Image.Image:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-f", "1", "-l", "1", str(pdf), f"{tmp}/p"], check=True)
        return Image.open(next(Path(tmp).glob("p*.png"))).copy()


def office_page(xlsx: Path, dpi: int = 70) -> Image.Image:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["soffice", f"-env:UserInstallation=file://{tmp}/lo", "--headless", "--convert-to", "pdf",
                        "--outdir", tmp, str(xlsx)], check=True, capture_output=True, timeout=300)
        return pdf_page(Path(tmp) / f"{xlsx.stem}.pdf", dpi)


def map_pictures(work: Path) -> None:
    sheet = Image.open(work / "maps" / "xa_06253.png")
    save(sheet, "ban-do-xa.png")
    w, h = sheet.size
    save(sheet.crop((int(w * 0.40), int(h * 0.45), int(w * 0.58), int(h * 0.60))), "ban-do-xa-chi-tiet.png")
    save(Image.open(work / "maps" / "bien_dong_xa_06253.png"), "ban-do-bien-dong.png")


def qa_picture(work: Path) -> None:
    html = (work / "reports" / "qa.html").read_text(encoding="utf-8")
    first = re.search(r'base64,([^"]+)"', html)
    if first:
        save(Image.open(io.BytesIO(base64.b64decode(first[1]))), "qa.png")


def office_pictures(work: Path) -> None:
    if not shutil.which("soffice") or not shutil.which("pdftoppm"):
        print("LibreOffice or pdftoppm missing: the form and review pictures are left as they are")
        return
    save(office_page(work / "forms" / "xa" / "06253" / "Bieu_01_TKDD.xlsx"), "bieu-01.png")
    save(office_page(work / "reports" / "review" / "06319.xlsx"), "so-ra-soat.png")


def qgis_picture(work: Path) -> None:
    python = "/usr/bin/python3"
    client = REPO / "tests" / "clients" / "qgis_check.py"
    project = next(work.glob("*.qgz"), None)
    if project is None or subprocess.run([python, "-c", "import qgis.core"], capture_output=True).returncode:
        print("QGIS's Python API missing: the QGIS picture is left as it is")
        return
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": tmp}
        env.pop("PYTHONPATH", None)
        subprocess.run([python, str(client), str(project), str(project.with_suffix(".gpkg")), f"{tmp}/q.png"],
                       check=True, capture_output=True, env=env, timeout=600)
        save(pdf_page(Path(tmp) / "q_0.pdf", 40), "qgis-bo-cuc-in.png")


def write_message_table() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    start, end = "<!-- thong-bao:bat-dau -->", "<!-- thong-bao:ket-thuc -->"
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    GUIDE.write_text(f"{before}{start}\n{officer_table()}\n{end}{after}", encoding="utf-8")
    print("docs/huong-dan-su-dung.md: table of messages")


if __name__ == "__main__":
    workdir = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "data" / "processed"
    write_message_table()
    map_pictures(workdir)
    qa_picture(workdir)
    office_pictures(workdir)
    qgis_picture(workdir)
