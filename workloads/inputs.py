"""Inputs shared by the workloads: files the user names, and a directory of images.

Real inputs are decoded on the CPU for every batch, as a deployed pipeline
does; that CPU work is part of what the clocks change, so the workloads read
images through :class:`ImageCycle` instead of caching decoded tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuner.errors import ConfigError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm")


def existing_file(path: str | None, what: str) -> Path | None:
    """``path`` as a Path if given; a one-line error if it is not a file."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {p} does not exist")
    return p


def image_files(directory: str | Path) -> list[Path]:
    """The images under ``directory``, sorted; a clear error when there are none."""
    path = Path(directory)
    if not path.is_dir():
        raise ConfigError(f"image directory {path} does not exist")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {path}")
    return files


class ImageCycle:
    """The images of a directory handed out in order, round and round, decoded to RGB."""

    def __init__(self, directory: str | Path) -> None:
        self.files = image_files(directory)
        self._next = 0

    def next_rgb(self) -> Any:
        from PIL import Image

        path = self.files[self._next % len(self.files)]
        self._next += 1
        with Image.open(path) as img:
            return img.convert("RGB")
