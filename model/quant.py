"""Frozen weights stored in 8 or 4 bits and dequantized where they are used, for QLoRA fine-tuning.

Two formats, each a pytree that stands in a parameter tree where the float weight was:

- `Int8Weight`: per-output-channel absmax (LLM.int8's vector-wise scaling without the outlier split,
  Dettmers et al., 2022): `w ~ codes * scale`, codes int8 in [-127, 127], one float32 scale per output
  channel (the absmax over the axes the weight contracts, divided by 127). 1 byte per weight.
- `NF4Weight`: 4-bit NormalFloat with block-wise absmax (QLoRA, Dettmers et al., 2023): the weight,
  flattened in its own layout, is cut into blocks of 64; each block is divided by its absmax and every
  value replaced by the nearest of the 16 NF4 levels (quantiles of a standard normal, so normally
  distributed weights use the levels evenly); two codes are packed per byte. With double quantization
  the float32 block absmaxes are themselves quantized, as in QLoRA: their mean is subtracted and the
  rest stored as int8 with one float32 scale per 256 blocks (QLoRA stores FP8 there; int8 absmax is the
  simpler choice at the same 8 bits). 0.5 + 1/64 + 4/16384 bytes per weight, against 2 in bfloat16.

The model (model/layers.py) multiplies by a stored weight through `matmul`, which dequantizes it
inside the jitted step right at the product, and again in the backward pass rather than keeping it
alive in between, so a few weights exist in full precision at a time, not the whole model. Which
weights are quantized, and along which axes their output channels lie, follows `WEIGHT_AXES`: every
projection and the tied embedding; norms stay as they are (a few thousand numbers).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Literal

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
QuantMode = Literal["none", "int8", "nf4"]

# The 16 NF4 levels of QLoRA (Dettmers et al., 2023; bitsandbytes' `create_normal_map(offset=0.9677083)`):
# 8 positive and 7 negative quantiles of N(0, 1), exact zero, scaled to [-1, 1]. Rebuilt from the normal
# quantile function in the tests.
NF4_LEVELS = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
], np.float32)
# Each Gemma weight's (input axes, output axes) in its stored layout (model/layers.py): the axes a matmul
# contracts and the ones it produces. Int8 scales are per output channel; LoRA views a weight as the matrix
# [prod(inputs), prod(outputs)].
WEIGHT_AXES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "query": ((1,), (0, 2)), "key": ((1,), (0, 2)), "value": ((1,), (0, 2)),  # [N or K, D, H]
    "output": ((0, 1), (2,)),  # [N, H, D]
    "gate": ((0,), (1,)), "up": ((0,), (1,)), "down": ((0,), (1,)),  # [D, F], [D, F], [F, D]
    "embedding": ((1,), (0,)),  # [V, D]: the tied output projection contracts D
}
NF4_BLOCK = 64  # weights per absmax (QLoRA's block size)
SCALE_BLOCK = 256  # block absmaxes per second-level scale (QLoRA's double quantization)


@flax.struct.dataclass
class Int8Weight:
    codes: Array  # int8, the weight's shape
    scale: Array  # float32, the weight's shape with its input axes reduced to 1

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.codes.shape)

    def dequantize(self, dtype: Any, after: Array | float = 1.0) -> Array:
        """The weight in `dtype`. `after` (1, possibly computed from other values) scales a 256-entry table the
        codes index, so the whole dequantization is one computation that depends on it (`_after`)."""
        return (_lookup(jnp.arange(-128, 128, dtype=jnp.float32) * after, self.codes.astype(jnp.uint8) ^ 128)
                * self.scale).astype(dtype)

    def rows(self, index: Array, dtype: Any) -> Array:
        """`dequantize(dtype)[index]` without dequantizing the other rows (the embedding lookup)."""
        scale = self.scale[index] if self.scale.shape[0] == self.codes.shape[0] else self.scale
        return (self.codes[index].astype(jnp.float32) * scale).astype(dtype)


@flax.struct.dataclass
class NF4Weight:
    packed: Array  # uint8 [blocks, NF4_BLOCK / 2]: two 4-bit codes per byte, the first in the high nibble
    absmax: Array  # float32 [blocks], or with double quantization int8 [blocks]
    absmax_scale: Array | None  # double quantization: float32 [ceil(blocks / SCALE_BLOCK)], else None
    absmax_offset: Array | None  # double quantization: the float32 mean subtracted from the absmaxes, else None
    shape: tuple[int, ...] = flax.struct.field(pytree_node=False)

    def block_absmax(self) -> Array:
        """The float32 absmax of every block [blocks]."""
        if self.absmax_scale is None:
            return self.absmax
        scale = jnp.repeat(self.absmax_scale, SCALE_BLOCK)[:self.absmax.shape[0]]
        return self.absmax.astype(jnp.float32) * scale + self.absmax_offset

    def _values(self, packed: Array, absmax: Array, dtype: Any, after: Array | float = 1.0) -> Array:
        # Each byte indexes its pair of levels directly (no unpacked codes in between), in a table `after`
        # scales, so the whole dequantization depends on it (`_after`).
        pairs = _lookup(jnp.asarray(_NF4_PAIRS) * after, packed)  # [..., NF4_BLOCK / 2, 2]
        return (pairs.reshape(*packed.shape[:-1], NF4_BLOCK) * absmax[..., None]).astype(dtype)

    def dequantize(self, dtype: Any, after: Array | float = 1.0) -> Array:
        """The weight in `dtype`; `after` (1, possibly computed from other values) multiplies the scales."""
        flat = self._values(self.packed, self.block_absmax(), dtype, after).reshape(-1)
        return flat[:math.prod(self.shape)].reshape(self.shape)

    def rows(self, index: Array, dtype: Any) -> Array:
        """`dequantize(dtype)[index]`; only the gathered rows are dequantized when rows hold whole blocks."""
        row = math.prod(self.shape[1:])
        if row % NF4_BLOCK:
            return self.dequantize(dtype)[index]
        per_row = row // NF4_BLOCK
        packed = self.packed.reshape(self.shape[0], per_row, NF4_BLOCK // 2)[index]
        absmax = self.block_absmax().reshape(self.shape[0], per_row)[index]
        return self._values(packed, absmax, dtype).reshape(*jnp.shape(index), *self.shape[1:])


# The two levels of each packed byte, high nibble first: [256, 2].
_NF4_PAIRS = np.stack([NF4_LEVELS[np.arange(256) >> 4], NF4_LEVELS[np.arange(256) & 15]], axis=-1)


def _lookup(table: Array, codes: Array) -> Array:
    """`table[codes]` for uint8 codes (an exact gather; codes index every row of a 256-row table)."""
    return table.at[codes.astype(jnp.int32)].get(mode="promise_in_bounds")


QuantizedWeight = Int8Weight | NF4Weight


def is_quantized(x: Any) -> bool:
    return isinstance(x, (Int8Weight, NF4Weight))


def dense(weight: Array | QuantizedWeight, dtype: Any) -> Array:
    """The weight in `dtype`, dequantized if stored quantized."""
    return weight.dequantize(dtype) if is_quantized(weight) else weight.astype(dtype)


def matmul(equation: str, x: Array, weight: Array | QuantizedWeight, **kwargs: Any) -> Array:
    """`einsum(equation, x, weight)` in x's dtype; a quantized weight is dequantized right at the product
    (`_quantized_matmul`)."""
    if not is_quantized(weight):
        return jnp.einsum(equation, x, weight.astype(x.dtype), **kwargs)
    return _quantized_matmul(equation, tuple(sorted(kwargs.items())), x, weight)


def _after(value: Array) -> Array:
    """1, computed from `value`: a dequantization scaled by it cannot start before `value` exists.

    Without this XLA may dequantize every layer's weights up front and hold them all: its CPU backend does
    (the whole 2B model in float32, 7.9 GB of temporaries for one forward pass), and drops optimization
    barriers before scheduling. A NaN in value's first element spreads to the whole product, which a NaN
    there makes unusable anyway.
    """
    return 1.0 + jnp.minimum(jnp.abs(value.reshape(-1)[0].astype(jnp.float32)), 0.0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _quantized_matmul(equation: str, options: tuple, x: Array, weight: QuantizedWeight) -> Array:
    """The product with the weight dequantized after x exists; the backward pass dequantizes it again after
    the incoming gradient exists, so no dequantized weight is kept between the passes or held early. The
    weight is frozen: its gradient is zero."""
    return jnp.einsum(equation, x, weight.dequantize(x.dtype, _after(x)), **dict(options))


def _quantized_matmul_forward(equation: str, options: tuple, x: Array, weight: QuantizedWeight) -> tuple:
    return _quantized_matmul(equation, options, x, weight), (x, weight)


def _quantized_matmul_backward(equation: str, options: tuple, saved: tuple, grad: Array) -> tuple:
    x, weight = saved
    dense_weight = weight.dequantize(x.dtype, _after(grad))
    _, pullback = jax.vjp(lambda x: jnp.einsum(equation, x, dense_weight, **dict(options)), x)
    frozen = jax.tree.map(lambda a: np.zeros(a.shape, jax.dtypes.float0) if jnp.issubdtype(a.dtype, jnp.integer)
                          else jnp.zeros_like(a), weight)
    return pullback(grad)[0], frozen


_quantized_matmul.defvjp(_quantized_matmul_forward, _quantized_matmul_backward)


def quantize_int8(weight: Array, in_axes: tuple[int, ...]) -> Int8Weight:
    w = jnp.asarray(weight, jnp.float32)
    scale = jnp.max(jnp.abs(w), axis=in_axes, keepdims=True) / 127.0
    scale = jnp.where(scale > 0, scale, 1.0)  # an all-zero channel stays zero
    return Int8Weight(codes=jnp.round(w / scale).astype(jnp.int8), scale=scale)


def quantize_nf4(weight: Array, double_quant: bool = True) -> NF4Weight:
    shape = tuple(weight.shape)
    flat = jnp.asarray(weight, jnp.float32).reshape(-1)
    flat = jnp.pad(flat, (0, -flat.shape[0] % NF4_BLOCK)).reshape(-1, NF4_BLOCK)  # [blocks, NF4_BLOCK]
    absmax = jnp.max(jnp.abs(flat), axis=1)
    normed = flat / jnp.where(absmax > 0, absmax, 1.0)[:, None]
    midpoints = jnp.asarray((NF4_LEVELS[1:] + NF4_LEVELS[:-1]) / 2)
    codes = jnp.searchsorted(midpoints, normed).astype(jnp.uint8)  # the nearest level's index
    packed = (codes[:, 0::2] << 4) | codes[:, 1::2]
    if not double_quant:
        return NF4Weight(packed=packed, absmax=absmax, absmax_scale=None, absmax_offset=None, shape=shape)
    offset = jnp.mean(absmax)
    centred = absmax - offset
    grouped = jnp.pad(centred, (0, -centred.shape[0] % SCALE_BLOCK)).reshape(-1, SCALE_BLOCK)
    scale = jnp.max(jnp.abs(grouped), axis=1) / 127.0
    scale = jnp.where(scale > 0, scale, 1.0)
    codes8 = jnp.round(grouped / scale[:, None]).astype(jnp.int8).reshape(-1)[:absmax.shape[0]]
    return NF4Weight(packed=packed, absmax=codes8, absmax_scale=scale, absmax_offset=offset, shape=shape)


def quantize_weight(name: str, weight: Array, mode: QuantMode, double_quant: bool = True) -> Array | QuantizedWeight:
    """One weight of the model, by its name in the parameter tree (`query`, ..., `embedding`)."""
    if mode == "int8":
        return quantize_int8(weight, WEIGHT_AXES[name][0])
    if mode == "nf4":
        return quantize_nf4(weight, double_quant)
    raise ValueError(f"quantize must be 'int8' or 'nf4', got {mode!r}")


def quantize_params(params: Any, mode: QuantMode, double_quant: bool = True) -> Any:
    """A copy of a parameter tree with every projection and the embedding quantized (norms and any other
    leaf kept). Each weight is quantized by its own small jitted program, so host memory peaks at one
    weight's float32 copy beside the tree."""
    if mode == "none":
        return params
    programs: dict[str, Any] = {}

    def convert(name: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: convert(key, item) for key, item in value.items()}
        if name not in WEIGHT_AXES or is_quantized(value):
            return value
        program = programs.setdefault(name, jax.jit(lambda w, name=name: quantize_weight(name, w, mode, double_quant)))
        return jax.block_until_ready(program(value))

    return {key: convert(key, value) for key, value in params.items()}


def dequantize_params(params: Any, dtype: Any) -> Any:
    """The tree with every quantized weight back in `dtype` (for exporting a merged model)."""
    return jax.tree.map(lambda leaf: dense(leaf, dtype) if is_quantized(leaf) else leaf, params, is_leaf=is_quantized)


def stored_bytes(params: Any) -> int:
    """Bytes the tree's arrays occupy (quantized weights at their packed size)."""
    return sum(leaf.size * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(params))
