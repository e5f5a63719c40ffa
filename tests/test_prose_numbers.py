"""Numbers written in the README and the lecture notes agree with the code they describe (issue 19).

The presets' weights are quoted in prose; each quote is found by a pattern and compared with
``stlib.presets``, so changing a preset without its description fails here.
"""

import re
from pathlib import Path

import pytest

from stlib.layers import STYLE_LAYERS
from stlib.presets import IMAGENET, OFFLINE

ROOT = Path(__file__).resolve().parents[1]
SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def number(text):
    """'1e6', '10⁶', '1', '10' -> float."""
    text = text.strip()
    if text.startswith("10") and len(text) > 2 and not text[2:].isascii():
        return 10.0 ** int(text[2:].translate(SUPERSCRIPTS))
    return float(text)


def layer_weights(text):
    """'1/2/3/5/10' -> {relu1_1: 1, ...}."""
    values = [float(v) for v in text.split("/")]
    assert len(values) == len(STYLE_LAYERS), f"{text!r} should give one weight per style layer"
    return dict(zip(STYLE_LAYERS, values))


def find(pattern, path):
    found = re.findall(pattern, (ROOT / path).read_text(encoding="utf-8"))
    assert found, f"{path} no longer says {pattern!r}: update this test with the new sentence"
    return found


def test_the_lecture_quotes_both_presets():
    for content, style in find(r"the PyTorch tutorial's: content (\S+), style (\S+), style layers equal, no TV",
                               "docs/lecture.md"):
        assert (number(content), number(style)) == (IMAGENET.content_weight, IMAGENET.style_weight)
    assert all(w == 1.0 for w in IMAGENET.style_layers.values()) and IMAGENET.tv_weight == 0
    for content, style, layers, tv in find(r"tuned for random filters: content (\S+), style (\S+), layers weighted "
                                           r"([\d/.]+), TV (\S+?) ", "docs/lecture.md"):
        assert (number(content), number(style), number(tv)) == (OFFLINE.content_weight, OFFLINE.style_weight,
                                                                 OFFLINE.tv_weight)
        assert layer_weights(layers) == OFFLINE.style_layers


def test_the_readme_quotes_both_presets():
    for content, style in find(r"content weight (\S+), style\s+weight (\S+), Gram matrices divided by C·H·W",
                               "README.md"):
        assert (number(content.rstrip(",")), number(style)) == (IMAGENET.content_weight, IMAGENET.style_weight)
    for style, layers, tv in find(r"\(style weight (\S+), layers\s+weighted ([\d/.]+), TV weight (\S+)\)", "README.md"):
        assert (number(style), number(tv)) == (OFFLINE.style_weight, OFFLINE.tv_weight)
        assert layer_weights(layers) == OFFLINE.style_layers


@pytest.mark.parametrize("path", ["README.md", "docs/lecture.md"])
def test_no_stale_preset_numbers(path):
    # The numbers issue 19 found out of date: the offline preset once had style 1e5 and TV 5.
    text = (ROOT / path).read_text(encoding="utf-8")
    assert "style 1e5" not in text and "TV 5 " not in text and "TV 5|" not in text


def test_the_readme_quotes_the_demo_and_download_limits():
    from stlib import cli, downloads

    for size, steps in find(r"out/demo\.png \((\d+) px, (\d+) L-BFGS steps\)", "README.md"):
        assert (int(size), int(steps)) == (cli.DEMO_SIZE, cli.DEMO_STEPS)
    for deadline, cap in find(r"total deadline \((\d+) s\) and a size cap \((\d+) MB\)", "README.md"):
        assert (float(deadline), int(cap) * 2**20) == (downloads.IMAGE_DEADLINE_S, downloads.IMAGE_MAX_BYTES)
    for minutes, gigabytes in find(r"weights download\s+allows (\d+) min and (\d+) GB", "README.md"):
        assert (float(minutes) * 60, int(gigabytes) * 2**30) == (downloads.WEIGHTS_DEADLINE_S, downloads.WEIGHTS_MAX_BYTES)
