#!/usr/bin/env python3
"""Draws the app icons in assets/icons/ (the installable app's 192 and 512 px icons and the
maskable one) from the same design as assets/icon.svg: an amber rounded square with a dark "M"
stroke. Plain Python (zlib + struct), no dependencies: run it again after changing the design
and commit the PNGs.

    python3 packaging/icons.py
"""

import math
import os
import struct
import zlib

AMBER = (0xE5, 0xA0, 0x0D)
INK = (0x1B, 0x1B, 0x1F)
# The "M" of icon.svg in its 32-unit box: M8 23 V9 l8 7 8 -7 v14, stroke 3.
POINTS = [(8, 23), (8, 9), (16, 16), (24, 9), (24, 23)]
STROKE = 3.0


def segment_distance(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)
    t = max(0.0, min(1.0, t))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def rounded_rect_distance(px, py, size, radius):
    """Signed distance to a square of side `size` with corner `radius` (negative inside)."""
    half = size / 2
    qx = abs(px - half) - (half - radius)
    qy = abs(py - half) - (half - radius)
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - radius


def coverage(distance):
    """Anti-aliasing: how much of a pixel a shape covers, from its signed distance in pixels."""
    return max(0.0, min(1.0, 0.5 - distance))


def draw(size, maskable):
    """RGBA rows. A maskable icon fills the whole square (the platform cuts its own shape) and
    keeps the mark inside the central safe zone (a circle of 80% of the width)."""
    unit = size / 32
    radius = 0 if maskable else 7 * unit
    mark_scale = 0.7 if maskable else 1.0
    points = [
        (size / 2 + (x - 16) * unit * mark_scale, size / 2 + (y - 16) * unit * mark_scale)
        for x, y in POINTS
    ]
    half_stroke = STROKE * unit * mark_scale / 2
    rows = []
    for j in range(size):
        row = bytearray()
        py = j + 0.5
        for i in range(size):
            px = i + 0.5
            bg = coverage(rounded_rect_distance(px, py, size, radius)) if radius else 1.0
            d = min(
                segment_distance(px, py, *points[k], *points[k + 1])
                for k in range(len(points) - 1)
            )
            ink = coverage(d - half_stroke) * bg
            color = [round(AMBER[c] * (1 - ink) + INK[c] * ink) for c in range(3)]
            row += bytes(color) + bytes([round(255 * bg)])
        rows.append(bytes(row))
    return rows


def png(size, rows):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "assets", "icons")
    os.makedirs(out, exist_ok=True)
    for name, size, maskable in [
        ("icon-192.png", 192, False),
        ("icon-512.png", 512, False),
        ("maskable-512.png", 512, True),
    ]:
        with open(os.path.join(out, name), "wb") as f:
            f.write(png(size, draw(size, maskable)))


if __name__ == "__main__":
    main()
