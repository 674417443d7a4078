"""Prompt construction shared by CoOp, CoCoOp, MaPLe, ProMetaR, TPT and GRAM.

A prompt is ``[SOS] [ctx_1 .. ctx_M] [text tokens] . [EOS]``: the M learned context vectors take
the place of the placeholder words of ``"X X ... X <text>."`` (CoOp) or of the ``CTX_INIT``
words they are initialised from. ``<text>`` is a class name, or any string: GRAM meta-trains
the same context on image captions, so prompts can be built for arbitrary texts from any
context tensor (``PromptLearner.prompts_for_texts``, ``build_prompt_embeddings``).

Choices (CoOp's unless noted): context from ``CTX_INIT`` words (underscores read as spaces) or
``normal(std=0.02)``; the context length of an initialisation is its number of BPE tokens (CoOp
counts words, which agrees for one-token words); class-specific context (CSC) is one context per
class; with ``CTX_INIT`` and CSC every class starts from the same words (CoOp ignores CSC then);
class token at the end, middle or front. The frozen prefix/suffix token embeddings are
non-persistent buffers: checkpoints hold only the learned parameters, so a checkpoint trained on
one class list loads for another (CoOp deletes those buffers on load for the same reason).
Texts longer than the context window are truncated (EOS kept), as captions can be.
"""
from functools import lru_cache
from typing import List, NamedTuple, Optional, Tuple

import clip
import torch
from clip.model import CLIP
from clip.simple_tokenizer import SimpleTokenizer
from torch import nn

CLASS_TOKEN_POSITIONS = ("end", "middle", "front")


@lru_cache(maxsize=1)
def bpe_tokenizer() -> SimpleTokenizer:
    """CLIP's BPE tokenizer (loaded once)."""
    return SimpleTokenizer()


@lru_cache(maxsize=1 << 16)
def count_tokens(text: str) -> int:
    """Number of BPE tokens of ``text`` (without SOS/EOS)."""
    return len(bpe_tokenizer().encode(text))


@lru_cache(maxsize=1 << 16)
def _tokenize_one(prompt: str, context_length: int) -> torch.Tensor:
    return clip.tokenize(prompt, context_length=context_length, truncate=True)[0]


def tokenize_prompts(prompts: List[str], context_length: int) -> torch.Tensor:
    """``clip.tokenize`` with a cache per prompt: meta-training tokenizes the same captions over and
    over (BPE in Python costs about as much as the tiny text tower's forward)."""
    return torch.stack([_tokenize_one(prompt, context_length) for prompt in prompts])


class PromptTokens(NamedTuple):
    """Frozen pieces of the prompts for a list of texts."""

    prefix: torch.Tensor  # (n, 1, width): SOS embedding
    suffix: torch.Tensor  # (n, <= context_length - 1 - n_ctx, width): text, '.', EOS, padding
    tokenized: torch.Tensor  # (n, context_length) token ids
    text_lengths: List[int]  # BPE tokens of each text inside the suffix


class PromptTokenizer:
    """Tokenizes ``"<prompt_prefix> <text>."`` for any texts and embeds the frozen tokens."""

    def __init__(self, token_embedding: nn.Embedding, n_ctx: int, prompt_prefix: str, context_length: int = 77):
        self.token_embedding = token_embedding
        self.n_ctx = n_ctx
        self.prompt_prefix = prompt_prefix
        self.context_length = context_length

    @torch.no_grad()
    def __call__(self, texts: List[str]) -> PromptTokens:
        texts = [text.replace("_", " ") for text in texts]
        prompts = [f"{self.prompt_prefix} {text}." for text in texts]
        tokenized = tokenize_prompts(prompts, self.context_length)
        device = self.token_embedding.weight.device
        embedding = self.token_embedding(tokenized.to(device))
        room = self.context_length - 2 - self.n_ctx
        lengths = [min(count_tokens(text), room) for text in texts]
        return PromptTokens(embedding[:, :1], embedding[:, 1 + self.n_ctx:], tokenized, lengths)


def initial_context(clip_model: CLIP, n_ctx: int, ctx_init: str = "", n_cls: Optional[int] = None
                    ) -> Tuple[torch.Tensor, str]:
    """Initial context vectors and the prompt prefix words they stand for.

    Returns ``(ctx, prefix)``: ``ctx`` is ``(n_ctx, width)``, or ``(n_cls, n_ctx, width)`` when
    ``n_cls`` is given (class-specific context). With ``ctx_init`` the vectors are the token
    embeddings of those words and ``n_ctx`` becomes their token count; otherwise they are drawn
    from ``normal(0, 0.02)`` with the global torch generator (seeded by the trainer).
    """
    dtype = clip_model.dtype
    if ctx_init:
        words = ctx_init.replace("_", " ").strip()
        n_ctx = count_tokens(words)
        with torch.no_grad():
            tokens = clip.tokenize(words, context_length=clip_model.context_length)
            ctx = clip_model.token_embedding(tokens.to(clip_model.token_embedding.weight.device))[0, 1:1 + n_ctx]
        ctx = ctx.type(dtype).cpu().clone()
        if n_cls is not None:
            ctx = ctx.unsqueeze(0).repeat(n_cls, 1, 1)
        return ctx, words
    if n_ctx < 1:
        raise ValueError(f"N_CTX must be >= 1 without CTX_INIT, got {n_ctx}")
    width = clip_model.ln_final.weight.shape[0]
    shape = (n_ctx, width) if n_cls is None else (n_cls, n_ctx, width)
    ctx = torch.empty(shape, dtype=dtype)
    nn.init.normal_(ctx, std=0.02)
    return ctx, " ".join(["X"] * n_ctx)


def assemble_prompts(ctx: torch.Tensor, prefix: torch.Tensor, suffix: torch.Tensor,
                     text_lengths: Optional[List[int]] = None, position: str = "end") -> torch.Tensor:
    """Token embeddings ``(n, context_length, width)`` of the prompts.

    ``ctx`` is ``(n_ctx, width)`` (shared) or ``(n, n_ctx, width)`` (one per prompt).
    ``position``: where the text goes relative to the context (CoOp's CLASS_TOKEN_POSITION);
    middle and front need ``text_lengths``.
    """
    n = prefix.shape[0]
    ctx = ctx.type(prefix.dtype)
    if ctx.dim() == 2:
        ctx = ctx.unsqueeze(0).expand(n, -1, -1)
    if position == "end":
        return torch.cat([prefix, ctx, suffix], dim=1)
    if position not in CLASS_TOKEN_POSITIONS:
        raise ValueError(f"CLASS_TOKEN_POSITION must be one of {', '.join(CLASS_TOKEN_POSITIONS)}, got {position!r}")
    half = ctx.shape[1] // 2
    prompts = []
    for row, length in enumerate(text_lengths):
        text, rest = suffix[row:row + 1, :length], suffix[row:row + 1, length:]
        if position == "middle":
            pieces = [prefix[row:row + 1], ctx[row:row + 1, :half], text, ctx[row:row + 1, half:], rest]
        else:
            pieces = [prefix[row:row + 1], text, ctx[row:row + 1], rest]
        prompts.append(torch.cat(pieces, dim=1))
    return torch.cat(prompts, dim=0)


class PromptLearner(nn.Module):
    """CoOp's prompt learner: a learnable context ``ctx`` shared by (or specific to) the classes."""

    def __init__(self, clip_model: CLIP, classnames: List[str], n_ctx: int = 16, ctx_init: str = "",
                 class_specific: bool = False, class_token_position: str = "end"):
        super().__init__()
        if class_token_position not in CLASS_TOKEN_POSITIONS:
            raise ValueError(f"CLASS_TOKEN_POSITION must be one of {', '.join(CLASS_TOKEN_POSITIONS)}, "
                             f"got {class_token_position!r}")
        n_specific = len(classnames) if class_specific else None
        ctx, self.prompt_prefix = initial_context(clip_model, n_ctx, ctx_init, n_specific)
        self.ctx = nn.Parameter(ctx)
        self.n_ctx = ctx.shape[-2]
        self.class_specific = class_specific
        self.class_token_position = class_token_position
        self.classnames = [name.replace("_", " ") for name in classnames]
        self.tokenizer = PromptTokenizer(clip_model.token_embedding, self.n_ctx, self.prompt_prefix,
                                         clip_model.context_length)
        tokens = self.tokenizer(self.classnames)
        self.register_buffer("token_prefix", tokens.prefix, persistent=False)
        self.register_buffer("token_suffix", tokens.suffix, persistent=False)
        self.register_buffer("tokenized_prompts", tokens.tokenized, persistent=False)
        self.name_lens = tokens.text_lengths

    @property
    def n_cls(self) -> int:
        return len(self.classnames)

    def class_tokens(self, rows: torch.Tensor) -> PromptTokens:
        """Frozen prompt pieces of the classes ``rows`` (repeats allowed), the suffix cut after
        their last EOT token (``TextEncoder`` reads nothing after it)."""
        rows = rows.to(self.token_prefix.device)
        tokenized = self.tokenized_prompts[rows]
        suffix_length = int(tokenized.argmax(dim=-1).max()) - self.n_ctx
        lengths = [self.name_lens[row] for row in rows.tolist()]
        return PromptTokens(self.token_prefix[rows], self.token_suffix[rows, :suffix_length], tokenized, lengths)

    def forward(self, rows: Optional[torch.Tensor] = None, ctx: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Prompt embeddings for all classes (or the class indices ``rows``), from ``ctx``
        (default: the learned ``self.ctx``; pass another tensor for a functional update). The
        prompts end at the last EOT token of the classes asked for (pair them with
        ``tokenized_prompts[rows]``)."""
        ctx = self.ctx if ctx is None else ctx
        if rows is None:
            rows = torch.arange(self.n_cls)
        tokens = self.class_tokens(rows)
        if ctx.dim() == 3 and ctx.shape[0] == self.n_cls:
            ctx = ctx[rows.to(ctx.device)]
        return assemble_prompts(ctx, tokens.prefix, tokens.suffix, tokens.text_lengths, self.class_token_position)

    def prompts_for_texts(self, texts: List[str], ctx: Optional[torch.Tensor] = None
                          ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(embeddings, tokenized)`` of prompts whose "class names" are ``texts`` (e.g. captions)."""
        ctx = self.ctx if ctx is None else ctx
        return prompts_from_tokens(ctx, self.tokenizer(texts), self.class_token_position)


def prompts_from_tokens(ctx: torch.Tensor, tokens: PromptTokens, position: str = "end"
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(embeddings, tokenized)`` on ``ctx``'s device from a shared ``(n_ctx, width)`` context."""
    if ctx.dim() != 2:
        raise ValueError("prompts for arbitrary texts need a shared (n_ctx, width) context, not a class-specific one")
    device = ctx.device
    embeddings = assemble_prompts(ctx, tokens.prefix.to(device), tokens.suffix.to(device), tokens.text_lengths,
                                  position)
    return embeddings, tokens.tokenized.to(device)


def build_prompt_embeddings(clip_model: CLIP, ctx: torch.Tensor, texts: List[str], class_token_position: str = "end"
                            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(embeddings, tokenized)`` of ``"<ctx> <text>."`` prompts for ``texts`` from a shared ``ctx``."""
    n_ctx = ctx.shape[-2]
    tokenizer = PromptTokenizer(clip_model.token_embedding, n_ctx, " ".join(["X"] * n_ctx), clip_model.context_length)
    return prompts_from_tokens(ctx, tokenizer(texts), class_token_position)
