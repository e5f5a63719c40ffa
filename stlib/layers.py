"""VGG-19 layer names in Gatys et al.'s notation, and the layers the paper uses.

VGG-19's feature extractor is five blocks of 3x3 convolutions (2, 2, 4, 4, 4 of them) each followed by a
ReLU, with a 2x2 pooling after every block. Gatys et al. name a layer by block and position:
``conv3_2`` is the second convolution of block 3, ``relu3_2`` the ReLU right after it, ``pool3`` the
pooling that ends block 3. These names are the only way layers are addressed in stlib.
"""

from __future__ import annotations

#: Number of convolutions in each of the five blocks, and their output channels.
VGG19_BLOCKS: tuple[int, ...] = (2, 2, 4, 4, 4)
VGG19_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 512)


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, n_convs in enumerate(VGG19_BLOCKS, start=1):
        for i in range(1, n_convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


#: All 37 layers of ``torchvision.models.vgg19().features``, in order; ``VGG19_LAYERS[i]`` is ``features[i]``.
VGG19_LAYERS: tuple[str, ...] = _layer_names()

#: Gatys et al. (2016): content is matched at relu4_2 ...
CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
#: ... and style at the first ReLU of each block.
STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def layer_index(name: str) -> int:
    """Position of a Gatys layer name in torchvision's ``vgg19().features`` (e.g. relu4_2 -> 22)."""
    try:
        return VGG19_LAYERS.index(name)
    except ValueError:
        raise KeyError(
            f"{name!r} is not a VGG-19 layer. Layer names look like 'conv3_1', 'relu4_2' or 'pool5' "
            f"(blocks 1-5; blocks 1-2 have 2 convolutions, blocks 3-5 have 4)."
        ) from None


def layer_block(name: str) -> int:
    """The block (1-5) a layer belongs to: ``conv3_2`` -> 3, ``pool3`` -> 3."""
    layer_index(name)  # validates the name
    return int(name[4] if name.startswith("pool") else name.split("_")[0][-1])


def layer_channels(name: str) -> int:
    """Number of channels a layer outputs (64, 128, 256 or 512)."""
    return VGG19_CHANNELS[layer_block(name) - 1]


def layer_stride(name: str) -> int:
    """Down-sampling factor of a layer relative to the input (1 for block 1, 2 for block 2, ..., 32 at pool5)."""
    block = layer_block(name)
    return 2 ** block if name.startswith("pool") else 2 ** (block - 1)


def receptive_field(name: str) -> int:
    """Side of the square of input pixels that one unit of the layer sees (3 at conv1_1, 84 at relu4_2)."""
    size, jump = 1, 1
    for layer in VGG19_LAYERS[: layer_index(name) + 1]:
        if layer.startswith("conv"):
            size += 2 * jump
        elif layer.startswith("pool"):
            size += jump
            jump *= 2
    return size


def deepest(names: list[str] | tuple[str, ...] | set[str]) -> str:
    """The layer among ``names`` that comes last in the network."""
    return max(names, key=layer_index)
