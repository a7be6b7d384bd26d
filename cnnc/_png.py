"""A small PNG encoder and decoder (zlib + struct), so that cnnc writes and
reads PNG images without Pillow or matplotlib.

The decoder handles what image tools write in practice: bit depths 1 to 16,
grayscale, RGB, palette, gray+alpha and RGBA, non-interlaced. Interlaced
files need Pillow.
"""
import os
import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png(image):
    """PNG bytes of a uint8 image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"PNG images are written from uint8 arrays, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        color = 0
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        color = 2 if image.shape[2] == 3 else 6
    else:
        raise ValueError(f"PNG image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {image.shape}")
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"cannot write an empty image of shape {image.shape}")
    rows = np.ascontiguousarray(image).reshape(h, -1)
    # Filter type 0 (none) on every row: simple, and zlib still does well on
    # the smooth images and grids written here.
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return (SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6))
            + _chunk(b"IEND", b""))


def write_png(path, image):
    """Write a uint8 image to ``path`` as PNG (atomically)."""
    data = encode_png(image)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(raw, h, stride, bpp, name):
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    pos = 0
    for y in range(h):
        kind = raw[pos]
        line = np.frombuffer(raw, np.uint8, stride, pos + 1).astype(np.int32)
        pos += stride + 1
        if kind == 0:
            cur = line
        elif kind == 1:
            # Each byte adds the reconstructed one bpp before: a running sum per channel.
            cur = (np.cumsum(line.reshape(-1, bpp), axis=0) & 0xFF).reshape(-1)
        elif kind == 2:
            cur = (line + prev) & 0xFF
        elif kind == 3:
            cur = line.copy()
            for x in range(stride):
                left = cur[x - bpp] if x >= bpp else 0
                cur[x] = (cur[x] + ((left + prev[x]) >> 1)) & 0xFF
        elif kind == 4:
            cur = line.copy()
            for x in range(stride):
                left = cur[x - bpp] if x >= bpp else 0
                upleft = prev[x - bpp] if x >= bpp else 0
                cur[x] = (cur[x] + _paeth(left, prev[x], upleft)) & 0xFF
        else:
            raise ValueError(f"{name}: corrupt PNG (row filter type {kind})")
        out[y] = cur
        prev = cur
    return out


def decode_png(data, name="<bytes>"):
    """Decode PNG bytes: a uint8 array (H, W, C) with C = 1 (gray), 2 (gray +
    alpha), 3 (RGB) or 4 (RGBA); palettes are expanded to RGB(A)."""
    if not data.startswith(SIGNATURE):
        raise ValueError(f"{name}: not a PNG file")
    pos, header, palette, alpha, idat = 8, None, None, None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise ValueError(f"{name}: truncated PNG")
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"{name}: corrupt PNG (bad CRC in a {kind!r} chunk)")
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"tRNS":
            alpha = np.frombuffer(body, np.uint8)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None or not idat:
        raise ValueError(f"{name}: truncated PNG (no IHDR or IDAT)")
    w, h, depth, color, _, _, interlace = header
    if color not in _CHANNELS or depth not in (1, 2, 4, 8, 16):
        raise ValueError(f"{name}: unsupported PNG (colour type {color}, bit depth {depth})")
    if interlace:
        raise ImportError(f"{name}: interlaced PNG needs Pillow: pip install pillow")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise ValueError(f"{name}: corrupt PNG data ({exc})") from None
    channels = _CHANNELS[color]
    bits = depth * channels
    stride = (w * bits + 7) // 8
    if len(raw) < h * (stride + 1):
        raise ValueError(f"{name}: truncated PNG image data")
    rows = _unfilter(raw, h, stride, max(1, bits // 8), name)
    if depth == 16:
        image = rows.view(">u2").reshape(h, w, channels)
        image = (image.astype(np.uint32) * 255 + 32767) // 65535
        image = image.astype(np.uint8)
    elif depth == 8:
        image = rows.reshape(h, w, channels)
    else:
        bitsarr = np.unpackbits(rows, axis=1)[:, : w * depth].reshape(h, w, depth)
        values = (bitsarr * (1 << np.arange(depth - 1, -1, -1, dtype=np.uint8))).sum(axis=2).astype(np.uint8)
        image = (values if color == 3 else values * (255 // ((1 << depth) - 1))).astype(np.uint8)[:, :, None]
    if color == 3:
        if palette is None:
            raise ValueError(f"{name}: palette PNG without a palette")
        index = image[:, :, 0]
        if index.max(initial=0) >= len(palette):
            raise ValueError(f"{name}: corrupt PNG (palette index out of range)")
        rgb = palette[index]
        if alpha is not None:
            full = np.full(len(palette), 255, np.uint8)
            full[:len(alpha)] = alpha[:len(palette)]
            return np.concatenate([rgb, full[index][:, :, None]], axis=2)
        return rgb
    return np.ascontiguousarray(image)


def read_png(path):
    path = os.fspath(path)
    with open(path, "rb") as f:
        return decode_png(f.read(), path)
