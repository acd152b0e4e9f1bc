"""Draw the web app icons (static/icons/*.png) with Pillow: a tote with a
check mark and 履约 under it. Run again after changing the look:

    python scripts/icons.py
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "static" / "icons"
BLUE = (11, 61, 145)
WHITE = (255, 255, 255)
AMBER = (255, 191, 0)
FONTS = ["/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"]


def _font(size: int):
    for path in FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return None


def draw(size: int, maskable: bool = False) -> Image.Image:
    scale = 4  # draw large, shrink smooth
    s = size * scale
    img = Image.new("RGB", (s, s), BLUE)
    d = ImageDraw.Draw(img)
    # A maskable icon keeps its drawing inside the middle 80% safe zone.
    pad = s * (0.2 if maskable else 0.12)
    box_w = s - 2 * pad
    top = pad + box_w * 0.05
    # The tote: a trapezoid with a rim.
    tote = [(pad + box_w * 0.08, top + box_w * 0.18), (pad + box_w * 0.92, top + box_w * 0.18),
            (pad + box_w * 0.82, top + box_w * 0.62), (pad + box_w * 0.18, top + box_w * 0.62)]
    d.polygon(tote, fill=WHITE)
    d.rectangle([pad + box_w * 0.04, top + box_w * 0.12, pad + box_w * 0.96, top + box_w * 0.2], fill=WHITE)
    # The check mark, in amber, on the tote.
    w = max(2, int(box_w * 0.07))
    d.line([(pad + box_w * 0.34, top + box_w * 0.38), (pad + box_w * 0.46, top + box_w * 0.5),
            (pad + box_w * 0.68, top + box_w * 0.27)], fill=AMBER, width=w, joint="curve")
    font = _font(int(box_w * 0.26))
    if font is not None:
        text = "履约"
        tw = d.textlength(text, font=font)
        d.text(((s - tw) / 2, top + box_w * 0.66), text, font=font, fill=WHITE)
    return img.resize((size, size), Image.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        draw(size).save(OUT / f"icon-{size}.png", optimize=True)
    draw(512, maskable=True).save(OUT / "icon-maskable-512.png", optimize=True)
    print(f"icons written to {OUT}")


if __name__ == "__main__":
    main()
