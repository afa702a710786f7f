"""The image viewer's server side on real FITS files: exact statistics, bounded memory, stretches."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from indiredis.indiwsgi.previews import PreviewError
from indiredis.indiwsgi.viewer import View, image_info, parse_view, render_view


def frame(path, height: int, width: int, seed: int = 1):
    """A 16-bit FITS frame as INDI's CCD drivers write it (BZERO 32768), and its values."""
    rng = np.random.default_rng(seed)
    values = rng.normal(1000, 50, size=(height, width)).astype(np.uint16)
    values[10, 20] = 60000  # a hot pixel
    hdu = fits.PrimaryHDU(values)
    hdu.header["EXPTIME"] = (2.0, "seconds")
    hdu.writeto(path)
    return values.astype(np.float64)


def test_statistics_histogram_levels_and_header(tmp_path):
    path = tmp_path / "frame.fits"
    values = frame(path, 600, 800)
    info = image_info(path)
    assert (info["width"], info["height"]) == (800, 600)
    stats = info["stats"]
    assert stats["min"] == values.min() and stats["max"] == 60000
    assert stats["mean"] == pytest.approx(values.mean())
    assert stats["std"] == pytest.approx(values.std(), rel=1e-6)
    assert stats["median"] == pytest.approx(np.median(values), abs=2)
    assert sum(info["histogram"]["counts"]) == stats["sampled"]
    assert values.min() <= info["levels"]["black"] < info["levels"]["white"] < 60000
    assert any(card.startswith("EXPTIME") for card in info["header"])
    assert info["header"][0].startswith("SIMPLE")


def test_a_large_frame_is_read_within_bounded_memory(tmp_path):
    path = tmp_path / "large.fits"
    frame(path, 4000, 4000)  # 32 MB of pixels
    size = path.stat().st_size
    tracemalloc.start()
    try:
        info = image_info(path)
        render_view(path, View(out=1024), info["levels"])
        render_view(path, View(x=1000, y=1000, w=512, h=512, out=512), info["levels"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # bounded by the block and sample sizes, not by the frame's (a 120 MB frame needs no more)
    assert peak < 20e6 < size, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB frame"


def test_a_stretch_changes_the_view_and_a_region_is_shown_at_its_own_scale(tmp_path):
    path = tmp_path / "frame.fits"
    frame(path, 600, 800)
    levels = image_info(path)["levels"]

    def pixels(view: View):
        return np.asarray(Image.open(io.BytesIO(render_view(path, view, levels))))

    linear, log = pixels(View(stretch="linear")), pixels(View(stretch="log"))
    assert linear.shape == log.shape == (600, 800)
    assert log.mean() > linear.mean() + 10  # log lifts the faint parts
    zoomed = pixels(View(x=0, y=0, w=100, h=50, out=400))
    assert zoomed.shape == (50, 100)  # never enlarged on the server: the page scales it
    dark = pixels(View(stretch="linear", black=59999, white=60000))
    assert dark.max() == 255 and np.count_nonzero(dark) == 1  # only the hot pixel above the black point


def test_bad_requests_are_refused(tmp_path):
    with pytest.raises(ValueError):
        parse_view({"stretch": ["sqrt"]})
    with pytest.raises(ValueError):
        parse_view({"black": ["nan"]})
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"not a fits file")
    with pytest.raises(PreviewError):
        image_info(bad)


def test_the_red_theme_gets_the_view_in_the_red_channel_only(tmp_path):
    path = tmp_path / "frame.fits"
    frame(path, 60, 80)
    levels = image_info(path)["levels"]
    red = np.asarray(Image.open(io.BytesIO(render_view(path, parse_view({"tint": ["red"]}), levels))))
    assert red.shape == (60, 80, 3)
    assert red[..., 0].max() > 0 and not red[..., 1:].any()


def test_the_caches_keep_no_lock_for_files_viewed_before(tmp_path):
    """Every file ever viewed used to leave its lock behind in the statistics cache; now neither cache
    holds one once its file's answer is made (or has failed), and the answers are bounded."""
    from indiredis.indiwsgi.previews import PreviewCache
    from indiredis.indiwsgi.viewer import InfoCache

    infos, previews = InfoCache(size=4), PreviewCache(size=4)
    for n in range(12):
        frame(tmp_path / f"f{n}.fits", 16, 32, seed=n)
        assert infos.get(tmp_path / f"f{n}.fits")["width"] == 32
        assert previews.get(tmp_path / f"f{n}.fits").startswith(b"\xff\xd8")
    (tmp_path / "bad.fits").write_bytes(b"not a FITS file")
    with pytest.raises((PreviewError, OSError)):
        previews.get(tmp_path / "bad.fits")
    with pytest.raises((PreviewError, OSError)):
        infos.get(tmp_path / "bad.fits")
    for cache in (infos, previews):
        assert len(cache._making) == 0
        assert len(cache._items) == 4


def test_one_thread_makes_a_file_s_answer_while_the_others_wait_for_it(tmp_path):
    import threading

    from indiredis.indiwsgi.filecache import FileCache

    started, release, made = threading.Event(), threading.Event(), []

    def make(path) -> str:
        made.append(path)
        started.set()
        assert release.wait(30)
        return "answer"

    cache: FileCache[str] = FileCache(make, size=2)
    path = tmp_path / "a.fits"
    path.write_bytes(b"x")
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(cache.get(path))) for _ in range(4)]
    threads[0].start()
    assert started.wait(30)
    for thread in threads[1:]:
        thread.start()
    assert cache.making() == 1
    release.set()
    for thread in threads:
        thread.join(30)
    assert answers == ["answer"] * 4 and made == [path]
    assert cache.making() == 0
