"""Process groups for the entry points (torch.distributed under torchrun): ``parallel.distributed``."""
