"""Stretched previews of received images: FITS frames (and plain JPEG/PNG) as small JPEGs.

A FITS file is opened memory-mapped with ``astropy.io.fits`` and its raw data
(unscaled, so no full-size float copy is ever made) is sampled on a grid that
gives at most :data:`MAX_SIDE` pixels a side: only the sampled rows are read,
and memory stays bounded whatever the frame's size.  The sample is scaled
(BSCALE/BZERO), stretched with ``astropy.visualization`` (z-scale interval,
asinh stretch) and encoded by Pillow, flipped so that the first FITS row is at
the bottom, as astronomers' viewers show it.  Previews are kept in a small
cache, and each is made once even when many viewers ask at the same time.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from ..errors import IndiredisError
from .filecache import FileCache

MAX_SIDE = 1024
CACHE_SIZE = 16
FITS_SUFFIXES = (".fits", ".fit", ".fts")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class PreviewError(IndiredisError, ValueError):
    """A file that cannot be previewed."""


def _image_plane(hdul: Any) -> Any:
    """The first HDU's 2-D image (the first plane of a cube)."""
    for hdu in hdul:
        data = getattr(hdu, "data", None) if hdu.is_image else None
        if data is not None and data.ndim >= 2:
            while data.ndim > 2:
                data = data[0]
            return hdu, data
    raise PreviewError("no image in this FITS file")


def fits_preview(path: str | Path, max_side: int = MAX_SIDE) -> bytes:
    """A JPEG of the FITS file's image, sampled to ``max_side`` pixels a side and auto-stretched."""
    import numpy as np
    from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no type information
    from astropy.visualization import AsinhStretch, ZScaleInterval  # type: ignore[import-untyped]  # idem
    from PIL import Image

    try:
        with fits.open(path, memmap=True, do_not_scale_image_data=True, lazy_load_hdus=True) as hdul:
            hdu, raw = _image_plane(hdul)
            step = max(1, math.ceil(max(raw.shape) / max_side))
            sample = np.array(raw[::step, ::step], dtype=np.float32)  # only these rows are read
            scale, zero = float(hdu.header.get("BSCALE", 1.0)), float(hdu.header.get("BZERO", 0.0))
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise PreviewError(f"not a readable FITS image: {exc}") from None
    if scale != 1.0 or zero != 0.0:
        sample = sample * np.float32(scale) + np.float32(zero)
    sample = np.nan_to_num(sample, nan=float(np.nanmin(sample)) if np.isfinite(sample).any() else 0.0)
    low, high = ZScaleInterval().get_limits(sample)
    scaled = np.clip((sample - low) / ((high - low) or 1.0), 0.0, 1.0)
    pixels = (AsinhStretch(0.1)(scaled, clip=True) * 255).astype(np.uint8)
    image = Image.fromarray(np.flipud(pixels), mode="L")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def image_preview(path: str | Path, max_side: int = MAX_SIDE) -> bytes:
    """A JPEG of a JPEG or PNG file, at most ``max_side`` pixels a side."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.thumbnail((max_side, max_side))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=85)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise PreviewError(f"not a readable image: {exc}") from None
    return out.getvalue()


def previewable(name: str) -> bool:
    """Whether a file of that name gets a preview."""
    return name.lower().endswith(FITS_SUFFIXES + IMAGE_SUFFIXES)


def make_preview(path: str | Path) -> bytes:
    """The preview JPEG of a FITS or plain image file; PreviewError otherwise."""
    name = str(path).lower()
    if name.endswith(FITS_SUFFIXES):
        return fits_preview(path)
    if name.endswith(IMAGE_SUFFIXES):
        return image_preview(path)
    raise PreviewError("no preview for this kind of file")


class PreviewCache(FileCache[bytes]):
    """The newest previews made, by file (see :class:`.filecache.FileCache`)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        super().__init__(make_preview, size)
