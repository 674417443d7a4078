"""CLIP machinery shared by every trainer: loading, transforms, the text encoder, prompt construction,
the deep-prompt forward, precision handling, double-differentiable attention and the image-feature cache.

Each piece exists once here; trainer files import from these modules instead of carrying their
own copy. Only ``prompt_trainer`` needs the Dassl engine; the rest depends on torch and ``clip``.
"""
