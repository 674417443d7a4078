"""Keep the CPU process from holding on to freed activation buffers (glibc malloc).

glibc serves large allocations with ``mmap`` only above a threshold that it raises each time such
a buffer is freed; afterwards the big, short-lived tensors of chunked text passes come from the
heap, which fragments, and the peak RSS grows with the number of chunks even though the live
memory does not (CoCoOp, 1000 classes, tiny CLIP: about 1.9 GiB peak RSS at batch 32 with
glibc's default; see ``bench/bench_trainers.py``). Keeping the threshold at glibc's initial
128 KiB makes every larger buffer an ``mmap`` that goes back to the OS when freed. GPU memory
is unaffected.
"""
import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
DEFAULT_THRESHOLD = 128 * 1024  # glibc's own initial value, kept fixed


def return_large_buffers_to_os(threshold_bytes: int = DEFAULT_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold_bytes``; False where glibc is not the allocator."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes))
