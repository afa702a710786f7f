"""The image viewer's server side: statistics, histogram and header of a frame, and stretched views of
any region of it, computed on the memory-mapped file within bounded memory.

A FITS file is opened memory-mapped (``astropy.io.fits``, raw data, no full-size float copy), so a
120 MB frame costs no more memory than a small one:

- :func:`image_info`: size, exact min / max / mean / standard deviation from a pass over blocks of
  :data:`BLOCK_PIXELS` pixels, the median and a histogram of :data:`BINS` bins from a sample of at most
  :data:`SAMPLE_SIDE` ² pixels, black and white points suggested from the sample's percentiles, and
  the FITS header cards;
- :func:`render_view`: a region ``x, y, w, h`` (image pixels, the first FITS row at the bottom as
  astronomers show it) sampled to at most ``out`` pixels a side, stretched (linear, asinh or log
  between the black and white points) and encoded as PNG by Pillow (in the red channel only for
  the red theme: ``tint=red``).

JPEG and PNG files are read by Pillow as their luminance (they are small).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidValue
from .filecache import FileCache
from .previews import FITS_SUFFIXES, IMAGE_SUFFIXES, PreviewError, _image_plane

BLOCK_PIXELS = 1 << 19  # pixels read at a time (whole rows) for the exact statistics
SAMPLE_SIDE = 1024  # the sample for the median, histogram and levels: at most this many pixels a side
BINS = 256
MAX_OUT = 2048  # pixels a side of a view at most
STRETCHES = ("linear", "asinh", "log")


@dataclass(frozen=True)
class View:
    """What part of an image to show and how: region (image pixels), output side, stretch, levels."""

    x: int = 0
    y: int = 0
    w: int = 0  # 0: to the right edge
    h: int = 0  # 0: to the top edge
    out: int = 1024
    stretch: str = "asinh"
    black: float | None = None  # None: the suggested level
    white: float | None = None
    tint: str = ""  # "red": in the red channel only, for the red (night vision) theme


def _open_fits(path: Path) -> tuple[Any, Any, float, float, Any]:
    """(hdul, raw 2-D data, bscale, bzero, header) of a FITS file; the caller closes hdul."""
    from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no type information

    try:
        hdul = fits.open(path, memmap=True, do_not_scale_image_data=True, lazy_load_hdus=True)
    except (OSError, ValueError, TypeError) as exc:
        raise PreviewError(f"not a readable FITS file: {exc}") from None
    try:
        hdu, raw = _image_plane(hdul)
        header = hdu.header
        return hdul, raw, float(header.get("BSCALE", 1.0)), float(header.get("BZERO", 0.0)), header
    except (OSError, ValueError, TypeError, IndexError) as exc:
        hdul.close()
        raise PreviewError(f"not a readable FITS image: {exc}") from None
    except PreviewError:
        hdul.close()
        raise


def _luminance(path: Path) -> Any:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.flipud(np.asarray(image.convert("L"), dtype=np.float32))  # first row at the bottom
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise PreviewError(f"not a readable image: {exc}") from None


class _Frame:
    """The 2-D data of a file (memory-mapped for FITS) with its scaling, as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path, self.hdul, self.header = path, None, None
        name = path.name.lower()
        if name.endswith(FITS_SUFFIXES):
            self.hdul, self.raw, self.scale, self.zero, self.header = _open_fits(path)
        elif name.endswith(IMAGE_SUFFIXES):
            self.raw, self.scale, self.zero = _luminance(path), 1.0, 0.0
        else:
            raise PreviewError("no viewer for this kind of file")
        if self.raw.ndim != 2 or 0 in self.raw.shape:
            self.close()
            raise PreviewError("not a 2-D image")

    def __enter__(self) -> _Frame:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self.hdul is not None:
            self.hdul.close()
            self.hdul = None

    def values(self, rows: Any, cols: Any = slice(None)) -> Any:
        """The scaled float32 values of a part of the data (only that part is read)."""
        import numpy as np

        part = np.array(self.raw[rows, cols], dtype=np.float32)
        if self.scale != 1.0 or self.zero != 0.0:
            part = part * np.float32(self.scale) + np.float32(self.zero)
        return part


def _moments(frame: _Frame) -> tuple[int, float, float, float, float]:
    """Count, sum, sum of squares, minimum and maximum of the finite pixels, read block by block."""
    import numpy as np

    height, width = frame.raw.shape
    count, total, squares = 0, 0.0, 0.0
    low, high = math.inf, -math.inf
    rows = max(1, BLOCK_PIXELS // width)
    for start in range(0, height, rows):
        block = frame.values(slice(start, start + rows)).ravel()
        if not np.isfinite(block).all():
            block = block[np.isfinite(block)]
        if block.size:
            count += block.size
            total += float(block.sum(dtype=np.float64))
            squares += float(np.einsum("i,i->", block, block, dtype=np.float64))
            low, high = min(low, float(block.min())), max(high, float(block.max()))
    return count, total, squares, low, high


def image_info(path: Path) -> dict[str, Any]:
    """Size, statistics, histogram, suggested levels and header of an image file (see the module)."""
    import numpy as np

    with _Frame(path) as frame:
        height, width = frame.raw.shape
        count, total, squares, low, high = _moments(frame)
        step = max(1, math.ceil(max(height, width) / SAMPLE_SIDE))
        sample = frame.values(slice(None, None, step), slice(None, None, step))
        sample = sample[np.isfinite(sample)]
        cards = [str(card) for card in frame.header.cards] if frame.header is not None else []
    if not count:
        raise PreviewError("no finite pixel in this image")
    mean = total / count
    std = math.sqrt(max(0.0, squares / count - mean * mean))
    counts, edges = np.histogram(sample, bins=BINS, range=(low, high if high > low else low + 1))
    black, white = (float(v) for v in np.percentile(sample, [0.25, 99.75]))
    return {
        "width": width,
        "height": height,
        "stats": {
            "min": low,
            "max": high,
            "mean": mean,
            "median": float(np.median(sample)),
            "std": std,
            "pixels": count,
            "sampled": int(sample.size),
        },
        "histogram": {"counts": counts.tolist(), "low": float(edges[0]), "high": float(edges[-1])},
        "levels": {"black": black, "white": white if white > black else black + 1},
        "header": cards,
    }


def stretched(values: Any, stretch: str, black: float, white: float) -> Any:
    """``values`` between the black and white points as 0 … 255 through the stretch."""
    import numpy as np

    scaled = np.clip((values - black) / ((white - black) or 1.0), 0.0, 1.0)
    if stretch == "asinh":
        scaled = np.arcsinh(scaled * 10.0) / math.asinh(10.0)
    elif stretch == "log":
        scaled = np.log10(1.0 + 1000.0 * scaled) / 3.0
    elif stretch != "linear":
        raise PreviewError(f"unknown stretch {stretch!r} (linear, asinh, log)")
    return (np.nan_to_num(scaled) * 255.0 + 0.5).astype(np.uint8)


def render_view(path: Path, view: View, levels: dict[str, float]) -> bytes:
    """A PNG of the region ``view`` asks for, sampled to at most ``view.out`` pixels a side."""
    import numpy as np
    from PIL import Image

    with _Frame(path) as frame:
        height, width = frame.raw.shape
        x0, y0 = min(max(view.x, 0), width - 1), min(max(view.y, 0), height - 1)
        x1 = width if view.w <= 0 else min(width, x0 + view.w)
        y1 = height if view.h <= 0 else min(height, y0 + view.h)
        out = min(max(view.out, 16), MAX_OUT)
        step = max(1, math.ceil(max(x1 - x0, y1 - y0) / out))
        values = frame.values(slice(y0, y1, step), slice(x0, x1, step))
    black = levels["black"] if view.black is None else view.black
    white = levels["white"] if view.white is None else view.white
    image = Image.fromarray(np.flipud(stretched(values, view.stretch, black, white)), mode="L")
    if view.tint == "red":
        dark = Image.new("L", image.size, 0)
        image = Image.merge("RGB", (image, dark, dark))
    data = io.BytesIO()
    image.save(data, "PNG", compress_level=1)
    return data.getvalue()


class InfoCache(FileCache[dict[str, Any]]):
    """The newest :func:`image_info` answers, by file (see :class:`.filecache.FileCache`)."""

    def __init__(self, size: int = 8) -> None:
        super().__init__(image_info, size)


def parse_view(query: dict[str, list[str]]) -> View:
    """A :class:`View` from a query string (``x y w h out stretch black white``); ValueError."""

    def number(name: str, default: float | None) -> float | None:
        text = (query.get(name) or [""])[0]
        if text == "":
            return default
        value = float(text)
        if not math.isfinite(value):
            raise InvalidValue(f"{name}: not a finite number")
        return value

    stretch = (query.get("stretch") or ["asinh"])[0]
    if stretch not in STRETCHES:
        raise InvalidValue(f"stretch: one of {', '.join(STRETCHES)}")
    tint = (query.get("tint") or [""])[0]
    if tint not in ("", "red"):
        raise InvalidValue("tint: red or nothing")
    return View(
        int(number("x", 0) or 0),
        int(number("y", 0) or 0),
        int(number("w", 0) or 0),
        int(number("h", 0) or 0),
        int(number("out", 1024) or 1024),
        stretch,
        number("black", None),
        number("white", None),
        tint,
    )
