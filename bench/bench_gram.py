"""GRAM's numbers (issue 6) on a tiny CLIP: meta-gradients vs finite differences, and step costs.

    python bench/bench_gram.py [--rounds 10] [--repeats 3] [--batch-size 32]

1. Relative error of the meta-gradient w.r.t. the prompt init and phi against central finite
   differences (float64), second order (through the inner gradient) and first order (of the
   first-order surrogate, whose inner gradient is a constant).
2. Cost of one outer step (one task: support + query of B/2 pairs each) relative to one plain
   prompt-tuning step on a batch of B pairs, both on the tiny CLIP's text tower with cached image
   features, as meta-training runs for CoOp prompts. The step kinds alternate over rounds
   (``interleaved``); CPU and wall time, min / median / max of the per-round ratios.
"""
import argparse
import os
import sys
import tempfile

import torch

sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "third_party")]

from tabulate import tabulate  # noqa: E402

from interleaved import Timings, format_spread, interleaved_rounds, round_ratios  # noqa: E402

import trainers  # noqa: E402,F401
from tools.cli import default_cfg  # noqa: E402
from tools.help_format import DefaultsHelpFormatter  # noqa: E402
from trainers.backbone.clip_loader import load_clip  # noqa: E402
from testing.tiny_clip import ensure_tiny_clip  # noqa: E402
from trainers.gram.meta_learning import MetaLearner, MetaLearningSettings, MetaTask, meta_objective  # noqa: E402
from trainers.gram.meta_trainer import build_method_model  # noqa: E402
from trainers.gram.regulator import GradientRegulator  # noqa: E402
from trainers.gram.task_loss import PairBatch, make_pair_loss  # noqa: E402

PLAIN = "plain prompt-tuning step"
CAPTIONS = ["a red circle", "two blue stars on the left", "a sketch of a green square", "a noisy yellow ring",
            "three small striped triangles", "a dotted purple cross", "a big orange heart", "one checkered star"]


def use_input_dtype_layer_norms(model: torch.nn.Module) -> None:
    """CLIP's LayerNorm computes in float32 whatever the input; for a float64 check, let every
    LayerNorm compute in its input's dtype (the same arithmetic, at double precision)."""
    import clip.model

    for module in model.modules():
        if isinstance(module, clip.model.LayerNorm):
            module.__class__ = torch.nn.LayerNorm


def tiny_coop_model(dtype: torch.dtype):
    path = ensure_tiny_clip(os.path.join(tempfile.gettempdir(), "gram_bench", "tiny_vit.pt"), arch="vit", seed=0)
    cfg = default_cfg()
    cfg.TRAINER.COOP.N_CTX = 4
    torch.manual_seed(0)
    model = build_method_model(cfg, "CoOp", load_clip(path).to(dtype), "cpu")
    use_input_dtype_layer_norms(model)
    return model.to(dtype)


def batch(n: int, dim: int, seed: int, dtype: torch.dtype) -> PairBatch:
    gen = torch.Generator().manual_seed(seed)
    texts = [CAPTIONS[i % len(CAPTIONS)] + f" number {i}" for i in range(n)]
    return PairBatch(torch.randn(n, dim, generator=gen).to(dtype), texts)


def finite_difference_errors(first_order: bool, samples: int = 6, eps: float = 1e-6) -> dict:
    model = tiny_coop_model(torch.float64)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    regulator = GradientRegulator({n: tuple(p.shape) for n, p in params.items()}, rank=4).double()
    for p in regulator.parameters():
        torch.nn.init.normal_(p, std=0.3)
    settings = MetaLearningSettings(inner_lr=0.5, first_order=first_order, consistency_weight=0.5)
    embed = model.text_encoder.text_projection.shape[1]
    task = MetaTask(batch(4, embed, 1, torch.float64), batch(4, embed, 2, torch.float64), similarity=0.2)
    loss_fn = make_pair_loss(model)
    tensors = list(params.values()) + list(regulator.parameters())
    if first_order:
        support_grads = torch.autograd.grad(loss_fn(params, task.support), list(params.values()))
        fixed = {n: g.detach() for n, g in zip(params, support_grads)}

        def objective():
            regulated, coefficients = regulator(fixed)
            adapted = {n: params[n] - settings.inner_lr * regulated[n] for n in params}
            target = (1 + task.similarity) / 2
            penalty = torch.stack([(c - target) ** 2 for c in coefficients.values()]).mean()
            return loss_fn(adapted, task.query) + settings.consistency_weight * penalty
    else:
        def objective():
            return meta_objective(params, task, loss_fn, regulator, settings)[0]

    loss, _ = meta_objective(params, task, loss_fn, regulator, settings)
    analytic = torch.autograd.grad(loss, tensors)
    errors = {"prompt init": [], "phi": []}
    gen = torch.Generator().manual_seed(0)
    for index, (tensor, grad) in enumerate(zip(tensors, analytic)):
        group = "prompt init" if index < len(params) else "phi"
        flat = tensor.data.view(-1)
        for position in torch.randint(tensor.numel(), (samples,), generator=gen).tolist():
            original = flat[position].item()
            flat[position] = original + eps
            up = float(objective().detach())
            flat[position] = original - eps
            down = float(objective().detach())
            flat[position] = original
            numeric = (up - down) / (2 * eps)
            value = grad.reshape(-1)[position].item()
            errors[group].append(abs(numeric - value) / max(abs(numeric), abs(value), 1e-6))
    return {group: max(values) for group, values in errors.items()}


def step_costs(batch_size: int, rounds: int, repeats: int) -> Timings:
    """Plain step and both outer steps, interleaved over rounds."""
    model = tiny_coop_model(torch.float32)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    regulator = GradientRegulator({n: tuple(p.shape) for n, p in params.items()}, rank=16)
    loss_fn = make_pair_loss(model)
    embed = model.text_encoder.text_projection.shape[1]
    optimizer = torch.optim.Adam(list(params.values()) + list(regulator.parameters()), lr=1e-3)
    plain_batch = batch(batch_size, embed, 0, torch.float32)
    half = batch_size // 2
    task = MetaTask(batch(half, embed, 1, torch.float32), batch(half, embed, 2, torch.float32), similarity=0.1)

    def plain_step():
        optimizer.zero_grad()
        loss_fn(params, plain_batch).backward()
        optimizer.step()

    def outer_step(first_order: bool):
        learner = MetaLearner(params, regulator, loss_fn, MetaLearningSettings(first_order=first_order))
        return lambda: learner.step([task], optimizer)

    cases = {PLAIN: plain_step, "GRAM outer step, second order": outer_step(False),
             "GRAM outer step, first order": outer_step(True)}
    return interleaved_rounds(cases, rounds, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10, help="rounds of the interleaved step timing")
    parser.add_argument("--repeats", type=int, default=3, help="steps of each kind per round")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for name, first_order in (("second order", False), ("first order", True)):
        errors = finite_difference_errors(first_order)
        rows.append([name, f"{errors['prompt init']:.2e}", f"{errors['phi']:.2e}"])
    print("Meta-gradient vs central finite differences (float64, tiny CLIP; max relative error, target <= 1e-4)")
    print(tabulate(rows, headers=["order", "prompt init", "phi"], tablefmt="github"))

    timings = step_costs(args.batch_size, args.rounds, args.repeats)
    print(f"\nStep cost, batch {args.batch_size} (tiny CLIP, CPU, {torch.get_num_threads()} threads; "
          f"{args.rounds} interleaved rounds of {args.repeats} steps each; min / median / max over rounds; "
          "targets: second order <= 3x, first order <= 2x)")
    rows = []
    for name, clocks in timings.items():
        ratios = round_ratios(timings, name, PLAIN)
        rows.append([name, format_spread(clocks["cpu_s"], 1000, 1), format_spread(clocks["wall_s"], 1000, 1),
                     format_spread(ratios["cpu_s"]), format_spread(ratios["wall_s"])])
    print(tabulate(rows, headers=["step", "CPU (ms)", "wall (ms)", "vs plain, CPU (x)", "vs plain, wall (x)"],
                   tablefmt="github"))


if __name__ == "__main__":
    main()
