"""Adapter search (issue #18): elastic LoRA ranks on a small pretrained byte-level Llama, adapted to a shifted
text task.

The model (a 2-layer Llama, vocabulary of 256 bytes) is pretrained here on the *code* of the shipped
``pystdlib`` corpus (its training files, comment lines removed); the adaptation task is the corpus's
*prose*: its comment lines (training files to adapt, validation files to score). Every method gets
the same pretrained model, the same adaptation data and the same number of optimizer steps:

* ours: a Shears-style adapter super-network (base frozen, rank per layer for the q/k/v, gate/up
  and down groups, choices {8, 16, 24, 32}) trained once with the sandwich rule and in-place
  distillation, then searched by the default searcher (predicted_hvi) on validation loss and
  ``adapter_params``;
* (a) fixed-rank peft LoRA at ranks 8, 16 and 32, each trained separately with the same steps;
* (b) the Shears heuristic: the middle rank choice (24) of every group of the same super-network;
* (c) NSGA-II with the same evaluation budget on the same super-network.

Hypervolume of (loss, adapter_params) up to a fixed reference point (the un-adapted model's loss,
1.1 x the largest adapter), and the loss at equal adapter parameters (uniform ranks 8, 16, 32).

    python benchmarks/adapters.py --smoke       # seconds (tests/adapters/test_benchmark_smoke.py)
    python benchmarks/adapters.py               # the README numbers, < 10 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from torch import Tensor  # noqa: E402

from elasticnas.adapters import LoraSupernet  # noqa: E402
from elasticnas.data import text_corpus  # noqa: E402
from elasticnas.measure import Measurer  # noqa: E402
from elasticnas.pareto import hypervolume, non_dominated_mask  # noqa: E402
from elasticnas.space import Config  # noqa: E402
from elasticnas.study import create_study  # noqa: E402
from elasticnas.supernets.hf import HFSupernet  # noqa: E402
from elasticnas.training import SandwichTrainer, StepResult, TrainConfig  # noqa: E402
from elasticnas.training.base import Inputs  # noqa: E402

transformers.utils.logging.set_verbosity_error()
HERE = Path(__file__).resolve().parent
RANKS = (8, 16, 24, 32)
FIXED = (8, 16, 32)


@dataclass(frozen=True)
class Settings:
    hidden: int
    layers: int
    seq: int
    pretrain_steps: int
    adapt_epochs: int
    batch: int
    evals: int
    val_windows: int
    ranks: tuple[int, ...] = RANKS
    fixed: tuple[int, ...] = FIXED


FULL = Settings(hidden=128, layers=2, seq=64, pretrain_steps=400, adapt_epochs=4, batch=16, evals=40, val_windows=96)
SMOKE = Settings(hidden=32, layers=2, seq=16, pretrain_steps=5, adapt_epochs=1, batch=8, evals=6, val_windows=8,
                 ranks=(2, 4, 6, 8), fixed=(2, 4, 8))  # fmt: skip


def split_lines(data: bytes) -> tuple[bytes, bytes]:
    """(code, prose) of Python source: lines whose stripped text starts with '#' are prose."""
    code, prose = [], []
    for line in data.splitlines(keepends=True):
        (prose if line.lstrip().startswith(b"#") else code).append(line)
    return b"".join(code), b"".join(prose)


def windows(data: bytes, seq: int, limit: int | None = None) -> tuple[Tensor, Tensor]:
    """Non-overlapping (input_ids, target_ids) windows of ``seq`` bytes."""
    t = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    n = (len(t) - 1) // seq
    if limit is not None:
        n = min(n, limit)
    x = t[: n * seq].view(n, seq)
    y = t[1 : n * seq + 1].view(n, seq)
    return x, y


def make_model(s: Settings) -> Any:
    config = transformers.LlamaConfig(
        vocab_size=256, hidden_size=s.hidden, intermediate_size=2 * s.hidden, num_hidden_layers=s.layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=s.seq, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config)


def pretrain(model: Any, data: tuple[Tensor, Tensor], s: Settings) -> float:
    """Plain next-byte training of the whole model; returns the last 20 steps' mean loss."""
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    gen = torch.Generator().manual_seed(0)
    losses = []
    model.train()
    for step in range(s.pretrain_steps):
        idx = torch.randint(0, len(data[0]), (s.batch,), generator=gen)
        for g in opt.param_groups:
            g["lr"] = 3e-3 * 0.5 * (1 + math.cos(math.pi * step / s.pretrain_steps))
        logits = model(input_ids=data[0][idx]).logits
        loss = F.cross_entropy(logits.flatten(0, 1), data[1][idx].flatten())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return float(np.mean(losses[-20:]))


class PlainTrainer(SandwichTrainer):
    """Fixed-rank LoRA: one sub-network (the largest, the only one), cross-entropy only, same schedule."""

    name = "plain"

    def _train_step(self, inputs: Inputs, target: Tensor, rng: np.random.Generator) -> StepResult:
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.forward(self.supernet.max_config(), *inputs)
        loss = self.loss(logits, target)
        loss.backward()
        self.optimizer_step()
        correct, n = self.count_correct(logits.detach(), target)
        return StepResult(float(loss.detach()), correct, n)


def adapter_net(state: dict[str, Tensor], s: Settings, ranks: tuple[int, ...]) -> LoraSupernet:
    """A Shears adapter super-network over the pretrained model (base fixed to the full model, frozen)."""
    model = make_model(s)
    model.load_state_dict(state)
    base = HFSupernet(model)
    torch.manual_seed(1)
    return LoraSupernet(base, ranks=ranks, base_config=base.max_config(), lora_alpha=2 * max(ranks))


def val_loss(net: LoraSupernet, config: Config, val: tuple[Tensor, Tensor]) -> float:
    net.eval()
    net.activate(config)
    with torch.no_grad():
        return float(F.cross_entropy(net(val[0]).flatten(0, 1), val[1].flatten()))


def uniform(net: LoraSupernet, rank: int) -> Config:
    return net.search_space.validate({g: [rank] * (c.size or 1) for g, c in net.rank_space.choices.items()})


def search(net: LoraSupernet, searcher: str, s: Settings, val: tuple[Tensor, Tensor], seed: int) -> list[list[float]]:
    """``s.evals`` evaluations of ``searcher`` on (val loss, adapter_params); every evaluated point, in order."""
    measurer = Measurer(net)
    points: list[list[float]] = []

    def evaluate(config: Config) -> dict[str, float]:
        loss = val_loss(net, config, val)
        points.append([loss, float(net.costs(config)["adapter_params"])])
        return {"loss": loss}

    study = create_study(net.search_space, {"loss": "minimize", "adapter_params": "minimize"})
    study.optimize(evaluate, n_evals=s.evals, searcher=searcher, seed=seed,
                   cheap_metrics=measurer.cheap_metrics(["adapter_params"]), show_progress=False)  # fmt: skip
    return points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--seeds", type=int, default=3, help="search seeds per searcher")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    s = SMOKE if args.smoke else FULL
    seeds = 1 if args.smoke else args.seeds
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    start = time.perf_counter()
    corpus = text_corpus("pystdlib")
    train_code, train_prose = split_lines(corpus.data["train"])
    _, val_prose = split_lines(corpus.data["val"])
    limit = 64 if args.smoke else None
    pre = windows(train_code, s.seq, limit)
    adapt = windows(train_prose, s.seq, 32 if args.smoke else 512)
    val = windows(val_prose, s.seq, s.val_windows)

    model = make_model(s)
    pretrain_loss = pretrain(model, pre, s)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    t_pre = time.perf_counter() - start
    config = TrainConfig.finetuning(epochs=s.adapt_epochs, batch_size=s.batch, lr=3e-3, num_random=1)

    net = adapter_net(state, s, s.ranks)
    zero_shot = val_loss(net, uniform(net, s.ranks[0]), val)  # lora_B starts at zero: the un-adapted model
    t0 = time.perf_counter()
    SandwichTrainer(net, config).fit(adapt, progress=False)
    t_super = time.perf_counter() - t0
    max_params = float(net.costs(net.max_config())["adapter_params"])
    reference = np.array([zero_shot, 1.1 * max_params])

    fixed = {}
    t0 = time.perf_counter()
    for r in s.fixed:
        lora = adapter_net(state, s, (r,))
        PlainTrainer(lora, config).fit(adapt, progress=False)
        fixed[r] = [val_loss(lora, lora.max_config(), val), float(lora.costs(lora.max_config())["adapter_params"])]
    t_fixed = time.perf_counter() - t0

    middle = s.ranks[len(s.ranks) // 2]
    heuristic = [val_loss(net, uniform(net, middle), val), float(net.costs(uniform(net, middle))["adapter_params"])]
    shared_ranks = {r: [val_loss(net, uniform(net, r), val), float(net.costs(uniform(net, r))["adapter_params"])]
                    for r in s.fixed if r in s.ranks}  # fmt: skip

    runs: dict[str, list[dict[str, Any]]] = {"predicted_hvi": [], "nsga2": []}
    for searcher in runs:
        for seed in range(seeds):
            t0 = time.perf_counter()
            points = search(net, searcher, s, val, seed)
            F_ = np.array(points)
            front = F_[non_dominated_mask(F_)]
            runs[searcher].append({
                "seed": seed, "seconds": time.perf_counter() - t0, "hv": hypervolume(F_, reference),
                "front": sorted(front.tolist(), key=lambda p: p[1]),
            })  # fmt: skip

    def hv(points: list[list[float]]) -> float:
        return hypervolume(np.array(points), reference)

    def best_within(front: list[list[float]], params: float) -> float | None:
        inside = [p[0] for p in front if p[1] <= params]
        return min(inside) if inside else None

    summary: dict[str, Any] = {
        "hypervolume": {
            **{f"{k}_median": float(np.median([r["hv"] for r in v])) for k, v in runs.items()},
            "fixed_rank_lora": hv(list(fixed.values())),
            "shears_heuristic": hv([heuristic]),
        },
        "loss_at_equal_adapter_params": {
            str(r): {
                "adapter_params": fixed[r][1],
                "fixed_rank_lora": fixed[r][0],
                "supernet_uniform_rank": shared_ranks.get(r, [None])[0],
                "ours_best_within": best_within(runs["predicted_hvi"][0]["front"], fixed[r][1]),
                "nsga2_best_within": best_within(runs["nsga2"][0]["front"], fixed[r][1]),
            }
            for r in s.fixed
        },
        "shears_heuristic": {"rank": middle, "loss": heuristic[0], "adapter_params": heuristic[1]},
    }
    result = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": f"{platform.machine()} {platform.system()}, torch threads {torch.get_num_threads()}",
        "settings": s.__dict__,
        "pretrain": {"windows": len(pre[0]), "final_train_loss": pretrain_loss, "seconds": t_pre},
        "adapt": {"train_windows": len(adapt[0]), "val_windows": len(val[0]), "zero_shot_val_loss": zero_shot},
        "reference_point": reference.tolist(),
        "seconds": {
            "supernet_training": t_super,
            "fixed_rank_training": t_fixed,
            "total": time.perf_counter() - start,
        },  # fmt: skip
        "fixed_rank_lora": {str(r): {"loss": v[0], "adapter_params": v[1]} for r, v in fixed.items()},
        "summary": summary,
        "runs": runs,
    }
    out = args.out or HERE / "results" / ("adapters_smoke.json" if args.smoke else "adapters.json")
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("pretrain", "adapt", "seconds", "fixed_rank_lora", "summary")}, indent=1))


if __name__ == "__main__":
    main()
