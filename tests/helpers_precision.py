"""Run a trainer in the precision its config asks for on the CPU (tests of the GPU path).

``resolve_precision`` falls back to fp32 on a CPU; ``honour_precision_on_cpu`` lets a test keep
``PREC fp16`` (fp16 CLIP weights: torch's CPU kernels run half-precision matmuls, convolutions
and attention) and ``amp`` (autocast on the CPU, which computes in bfloat16), so the dtypes and
optimizer states of a GPU run are built and stepped here.
"""
import pytest


@pytest.fixture
def honour_precision_on_cpu(monkeypatch):
    import trainers.backbone.prompt_trainer as prompt_trainer

    monkeypatch.setattr(prompt_trainer, "resolve_precision", lambda prec, device, key="PREC": prec)
