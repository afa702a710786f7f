"""Read the header cards of a FITS file (enough for the tests: no astropy needed)."""

from __future__ import annotations

from pathlib import Path


def fits_header(path: Path) -> dict[str, str]:
    data = path.read_bytes()[: 2880 * 10].decode("ascii", "replace")
    cards = [data[i : i + 80] for i in range(0, len(data), 80)]
    header = {}
    for card in cards:
        if card.startswith("END "):
            break
        if card[8:10] == "= ":
            header[card[:8].strip()] = card[10:].split(" /")[0].strip().strip("'").strip()
    return header


def header_degrees(value: str) -> float:
    """A sexagesimal header value ("+20 55 23.15") in degrees (or hours)."""
    parts = value.replace(":", " ").split()
    sign = -1.0 if parts[0].startswith("-") else 1.0
    numbers = [abs(float(p)) for p in parts]
    return sign * sum(n / 60**i for i, n in enumerate(numbers))
