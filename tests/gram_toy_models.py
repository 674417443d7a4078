"""A small differentiable stand-in for a prompted CLIP, for checking GRAM's meta-gradients fast.

It has the interface GRAM needs (``pair_logits(images, texts)`` and prompt tensors as trainable
parameters) with a text side that depends on the prompt non-linearly, like CLIP's.
"""
import zlib

import torch
from torch import nn


class ToyPromptedPairModel(nn.Module):
    def __init__(self, dim: int = 6, vocab: int = 31, n_ctx: int = 2, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.vocab = vocab
        self.ctx = nn.Parameter(0.5 * torch.randn(n_ctx, dim, generator=gen))
        self.shift = nn.Parameter(0.1 * torch.randn(dim, generator=gen))
        self.word = nn.Parameter(torch.randn(vocab, dim, generator=gen), requires_grad=False)
        self.mix = nn.Parameter(torch.randn(dim, dim, generator=gen) / dim ** 0.5, requires_grad=False)

    def token_ids(self, text: str) -> torch.Tensor:
        return torch.tensor([zlib.crc32(w.encode()) % self.vocab for w in text.split()])

    def encode_texts(self, texts):
        rows = []
        for text in texts:
            words = self.word[self.token_ids(text)]
            hidden = torch.tanh((words + self.ctx.mean(0)) @ self.mix + self.shift)
            rows.append(hidden.mean(0) + self.ctx[-1])
        return torch.stack(rows)

    def pair_logits(self, images, texts):
        text = nn.functional.normalize(self.encode_texts(texts), dim=-1)
        image = nn.functional.normalize(images, dim=-1)
        return 4.0 * image @ text.t()


def toy_pair_batch(n: int, dim: int = 6, seed: int = 0, words=("red", "blue", "circle", "star", "big", "small")):
    from trainers.gram.task_loss import PairBatch

    gen = torch.Generator().manual_seed(seed)
    texts = [" ".join(words[int(i)] for i in torch.randint(len(words), (3,), generator=gen)) for _ in range(n)]
    images = torch.randn(n, dim, generator=gen)
    return PairBatch(images, texts)
