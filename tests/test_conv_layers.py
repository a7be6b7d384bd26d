"""The convolution family in src/conv/ is layered: every file includes only
its own header and the headers of layers beneath it, so no file calls
upward or sideways into another algorithm."""
import re
import sys
from pathlib import Path

import pytest

CONV = Path(__file__).resolve().parent.parent / "src" / "conv"

# Lower numbers sit beneath higher ones.
LAYERS = {
    "geometry": 0,
    "team": 1,
    "partials": 2,
    "patches": 2,
    "depthwise": 3,
    "im2col_gemm": 3,
    "implicit": 3,
    "tiled_weights": 3,
    "winograd": 3,
    "select": 4,
    "conv": 5,
}


def _family_includes(path):
    text = path.read_text()
    return [name[:-2] for name in re.findall(r'#include "([a-z_0-9]+\.h)"', text) if (CONV / name).exists()]


def _files():
    if not CONV.is_dir():
        pytest.skip("the C sources are not at hand")
    return sorted(p for p in CONV.iterdir() if p.suffix in (".c", ".h"))


def test_every_file_has_a_layer():
    assert sorted({p.stem for p in _files()}) == sorted(LAYERS)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_includes_point_down(name):
    for path in _files():
        if path.stem != name:
            continue
        for inc in _family_includes(path):
            if inc == name and path.suffix == ".c":
                continue
            assert LAYERS[inc] < LAYERS[name], f"{path.name} includes {inc}.h, which is not beneath it"


def test_layering_check_catches_an_upward_include(tmp_path, monkeypatch):
    fake = tmp_path / "conv"
    fake.mkdir()
    (fake / "select.h").write_text("")
    (fake / "winograd.c").write_text('#include "select.h"\n')
    monkeypatch.setattr(sys.modules[__name__], "CONV", fake)
    with pytest.raises(AssertionError, match="not beneath"):
        test_includes_point_down("winograd")
