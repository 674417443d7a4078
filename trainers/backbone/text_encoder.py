"""CLIP's text tower over prompt embeddings (CoOp's TextEncoder), and frozen text encoding.

``TextEncoder`` takes token embeddings that already contain learned context vectors, adds the
positional embedding, runs the transformer (with optional MaPLe-style deep text prompts, see
``deep_prompts``), applies ``ln_final``, takes the EOT token (the highest token id of each
sequence) and projects it. The sequences are cut after the last EOT token of the batch: CLIP's
text attention is causal, so the padding after EOT never reaches it, and a prompt of ten tokens
costs a tenth of the 77-token context (same output as ``encode_text``).
``encode_prompts_in_chunks`` runs many prompts a chunk at a time (with activation checkpointing
when gradients are needed, so 1000 classes never hold 1000 prompts' activations at once);
``encode_texts`` encodes plain strings with frozen CLIP.
"""
from typing import Callable, List, Tuple

import clip
import torch
from clip.model import CLIP
from torch import nn
from torch.utils.checkpoint import checkpoint

from trainers.backbone.deep_prompts import LayerPrompts, run_resblocks, text_layer_prompts

PromptBuilder = Callable[[torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]


class TextEncoder(nn.Module):
    """CLIP's text transformer applied to prompt embeddings (CoOp), with optional deep prompts."""

    def __init__(self, clip_model: CLIP):
        super().__init__()
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection

    @property
    def dtype(self) -> torch.dtype:
        return self.text_projection.dtype

    def forward(self, prompt_embeddings: torch.Tensor, tokenized_prompts: torch.Tensor,
                deep_text_prompts: LayerPrompts = None) -> torch.Tensor:
        """(n, context_length, width) embeddings + their token ids -> (n, embed_dim) features."""
        eot_positions = tokenized_prompts.argmax(dim=-1)
        length = int(eot_positions.max()) + 1  # causal attention: the padding after EOT changes nothing
        x = prompt_embeddings[:, :length].type(self.dtype) + self.positional_embedding[:length].type(self.dtype)
        x = x.permute(1, 0, 2)
        x = run_resblocks(self.transformer.resblocks, x, text_layer_prompts(deep_text_prompts), prompt_start=1)
        x = self.ln_final(x.permute(1, 0, 2)).type(self.dtype)
        return x[torch.arange(x.shape[0], device=x.device), eot_positions] @ self.text_projection


def encode_prompts_in_chunks(text_encoder: TextEncoder, num_prompts: int, build_prompts: PromptBuilder,
                             chunk: int, deep_text_prompts: LayerPrompts = None) -> torch.Tensor:
    """Encode ``num_prompts`` prompts, ``chunk`` at a time (``chunk <= 0``: all at once).

    ``build_prompts(indices)`` returns ``(embeddings, tokenized)`` for those prompt indices. With
    autograd on and more than one chunk, each chunk is checkpointed: its activations are
    recomputed in the backward pass instead of kept, so peak memory is one chunk's activations.
    """
    def encode(indices: torch.Tensor) -> torch.Tensor:
        embeddings, tokenized = build_prompts(indices)
        return text_encoder(embeddings, tokenized, deep_text_prompts)

    if chunk <= 0 or num_prompts <= chunk:
        return encode(torch.arange(num_prompts))
    use_checkpoint = torch.is_grad_enabled()
    features = []
    for start in range(0, num_prompts, chunk):
        indices = torch.arange(start, min(start + chunk, num_prompts))
        features.append(checkpoint(encode, indices, use_reentrant=False) if use_checkpoint else encode(indices))
    return torch.cat(features)


@torch.no_grad()
def encode_texts(clip_model: CLIP, texts: List[str], chunk: int = 256, truncate: bool = True) -> torch.Tensor:
    """L2-normalised ``clip_model.encode_text`` features of ``texts``, ``chunk`` texts per pass
    (each pass cut after its longest text, see ``TextEncoder``)."""
    device = clip_model.token_embedding.weight.device
    encoder = TextEncoder(clip_model)
    features = []
    step = chunk if chunk > 0 else max(len(texts), 1)
    for start in range(0, len(texts), step):
        tokens = clip.tokenize(texts[start:start + step], context_length=clip_model.context_length, truncate=truncate)
        tokens = tokens.to(device)
        encoded = encoder(clip_model.token_embedding(tokens), tokens)
        features.append(encoded / encoded.norm(dim=-1, keepdim=True))
    if not features:
        return torch.empty(0, clip_model.text_projection.shape[1], dtype=clip_model.dtype, device=device)
    return torch.cat(features)
