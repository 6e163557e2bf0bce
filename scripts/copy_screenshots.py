"""Copy the browser tests' screenshots into docs/screenshots, reduced to 128 colours."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    src, dst = ROOT / "build" / "screenshots", ROOT / "docs" / "screenshots"
    dst.mkdir(parents=True, exist_ok=True)
    for shot in sorted(src.glob("*.png")):
        image = Image.open(shot).convert("RGB").quantize(colors=128)
        image.save(dst / shot.name, optimize=True)


if __name__ == "__main__":
    main()
