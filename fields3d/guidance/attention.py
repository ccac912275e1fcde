"""Cross-attention maps of a diffusers UNet: which pixels each prompt token attends to.

Text-guided editing (Vox-E) localises an edit by the UNet's cross-attention: in every
cross-attention layer (``attn2`` in diffusers' transformer blocks) the softmax
``softmax(Q K^T / sqrt(d))`` of the image's queries against the prompt's keys says, per latent
pixel, how much each text token contributes. :func:`record_cross_attention` swaps the UNet's
``attn2`` processors for ones that compute exactly what diffusers' ``AttnProcessor`` computes
and also keep those probabilities for chosen token indices; on leaving, the original processors
are restored. The maps of all layers (each ``(B, heads, h_l * w_l, T)``, at the layer's own
resolution) are averaged over heads, resized to one size (bilinear) and averaged over layers
and calls: :meth:`AttentionRecorder.maps`.

    with record_cross_attention(prior.unet, token_indices(prior.tokenizer, "a hat")) as rec:
        out = prior(renders, cameras, step, total)
    maps = rec.maps(64)[: len(cameras)]  # (B, T, 64, 64): the conditional half of the batch

Latent pictures are square here (the renders are), so a layer's ``h_l = w_l = sqrt(h_l w_l)``.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

from ..errors import InputError


def _ids(tokenizer, text: str) -> list[int]:
    return list(
        tokenizer(
            [text], truncation=True, max_length=tokenizer.model_max_length, return_tensors=None
        ).input_ids[0]
    )


def token_indices(tokenizer, prompt: str, words: str | None = None) -> list[int]:
    """The positions of ``prompt``'s own tokens in the tokenizer's padded sequence (after the
    start token, before the end token, truncated as the text encoder truncates); with ``words``
    (a part of the prompt, e.g. ``"party hat"``), the positions of those words' tokens alone.

    Raises:
        InputError: an empty prompt, or ``words`` that are not in the (truncated) prompt.

    Example:
        >>> class Chars:  # a tokenizer with one token per character
        ...     model_max_length = 16
        ...     def __call__(self, texts, **kw):
        ...         class Out: pass
        ...         out = Out()
        ...         out.input_ids = [[0] + [ord(c) for c in texts[0]][:14] + [1]]
        ...         return out
        >>> from fields3d.guidance.attention import token_indices
        >>> token_indices(Chars(), "a hat")  # start token 0, then 'a', ' ', 'h', 'a', 't'
        [1, 2, 3, 4, 5]
        >>> token_indices(Chars(), "a party hat", words="hat")
        [9, 10, 11]
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(f"prompt must be a non-empty string, got {prompt!r}")
    ids = _ids(tokenizer, prompt)
    if words is None:
        return list(range(1, max(2, len(ids) - 1)))
    if not isinstance(words, str) or not words.strip():
        raise InputError(f"words must be None or a part of the prompt, got {words!r}")
    want = _ids(tokenizer, words.strip())[1:-1]
    for start in range(1, len(ids) - len(want)):
        if ids[start : start + len(want)] == want:
            return list(range(start, start + len(want)))
    raise InputError(
        f"localise_words {words!r} are not in the prompt {prompt!r} (as the text encoder reads "
        "it, truncated): name words of the prompt"
    )


class AttentionRecorder:
    """The cross-attention probabilities recorded for ``tokens`` (indices into the text sequence)."""

    def __init__(self, tokens: list[int]) -> None:
        if not tokens or not all(isinstance(t, int) and t >= 0 for t in tokens):
            raise InputError(f"tokens must be a non-empty list of indices >= 0, got {tokens!r}")
        self.tokens = list(tokens)
        self.records: list[torch.Tensor] = []  # (B, T, h, w) per layer call

    def add(self, probs: torch.Tensor, batch: int) -> None:
        """``probs``: ``(batch * heads, h * w, L)`` attention probabilities of one layer."""
        bh, n, length = probs.shape
        if max(self.tokens) >= length:
            raise InputError(f"token index {max(self.tokens)} is past the text's {length} tokens")
        side = math.isqrt(n)
        if side * side != n:
            return  # not a square latent: skipped (module docstring)
        picked = probs[..., self.tokens].float().view(batch, bh // batch, n, len(self.tokens))
        self.records.append(picked.mean(1).permute(0, 2, 1).reshape(batch, -1, side, side))

    def maps(self, size: int) -> torch.Tensor:
        """``(B, T, size, size)`` float32: each token's attention averaged over heads, layers and
        calls, every layer resized to ``size`` first. InputError when nothing was recorded."""
        if not self.records:
            raise InputError(
                "no cross-attention was recorded: the UNet ran no cross-attention layer inside "
                "record_cross_attention"
            )
        resized = [
            F.interpolate(r, (size, size), mode="bilinear", align_corners=False)
            for r in self.records
        ]
        return torch.stack(resized).mean(0)


class RecordingProcessor:
    """diffusers' ``AttnProcessor`` arithmetic, keeping the cross-attention probabilities."""

    def __init__(self, recorder: AttentionRecorder) -> None:
        self.recorder = recorder

    def __call__(
        self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **_
    ):
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        batch, length = hidden_states.shape[0], context.shape[1]
        attention_mask = attn.prepare_attention_mask(attention_mask, length, batch)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        key, value = attn.to_k(context), attn.to_v(context)
        query, key, value = (attn.head_to_batch_dim(t) for t in (query, key, value))
        probs = attn.get_attention_scores(query, key, attention_mask)
        if encoder_hidden_states is not None:
            self.recorder.add(probs.detach(), batch)
        hidden_states = attn.batch_to_head_dim(torch.bmm(probs, value))
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


@contextlib.contextmanager
def record_cross_attention(unet, tokens: list[int]):
    """Record ``unet``'s cross-attention for ``tokens`` while the block runs (module docstring);
    yields the :class:`AttentionRecorder`. The UNet's own processors are back on leaving.

    Raises:
        InputError: ``unet`` has no attention processors (not a diffusers UNet2DConditionModel),
            or bad ``tokens``.
    """
    if not hasattr(unet, "attn_processors") or not hasattr(unet, "set_attn_processor"):
        raise InputError(
            f"unet must be a diffusers UNet2DConditionModel, got {type(unet).__name__}"
        )
    recorder = AttentionRecorder(tokens)
    old = dict(unet.attn_processors)
    mine = RecordingProcessor(recorder)
    unet.set_attn_processor(
        {name: mine if ".attn2." in name else proc for name, proc in old.items()}
    )
    try:
        yield recorder
    finally:
        unet.set_attn_processor(old)
