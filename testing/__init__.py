"""Test support, not library code: random tiny CLIPs in OpenAI's checkpoint format (``tiny_clip``) and
planted clusters of image-text features (``planted``), for the tests, the benchmarks and the toy world
(whose CLIP is a tiny CLIP, pretrained). The library's trainers, GRAM and clustering never import it.
"""
