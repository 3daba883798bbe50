"""Build the built-in ``tiny_gpt``: a byte-level Llama-shaped language model of Python source, made elastic.

The recorded command that made ``src/elasticnas/data/tiny_gpt/``, on 2 CPU cores:

    python benchmarks/builtin_tiny_gpt.py

1. **Pretrain** a Llama-shaped model (RMSNorm, RoPE, grouped-query attention, gated MLP;
   ``transformers.LlamaForCausalLM``) on the built-in byte corpus (``pystdlib:train``) with
   plain next-token training, as a pretrained model would come.
2. **Elasticize** it (``elasticnas.elasticize``): heads, FFN neurons, hidden channels and
   blocks scored by activation on calibration batches and sorted by importance.
3. **Fine-tune once** (InstaTune): the sandwich rule with in-place distillation, so that every
   sub-network works, not only the largest.
4. Write the super-network folder and measure its largest, smallest and random sub-networks
   on ``pystdlib:val``.

Writes ``benchmarks/results/builtin_tiny_gpt.json`` and this benchmark's section of
``benchmarks/README.md``. ``--smoke`` runs every step for a few batches into a temporary folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from elasticnas._io import atomic_write_dir
from elasticnas.data import as_loader
from elasticnas.data._spec import resolve_data
from elasticnas.measure import measure_accuracy
from elasticnas.supernets.hf import HFSupernet, elasticize
from elasticnas.supernets.hf._supernet import INFO_FILE
from elasticnas.training import SandwichTrainer, TrainConfig

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "src" / "elasticnas" / "data" / "tiny_gpt"
RESULTS = HERE / "results" / "builtin_tiny_gpt.json"
README = HERE / "README.md"
START, END = "<!-- builtin_tiny_gpt benchmark: start -->", "<!-- builtin_tiny_gpt benchmark: end -->"
MODEL = {  # about 0.85 M parameters: 3.4 MB as float32
    "vocab_size": 256, "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 4,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128,
    "bos_token_id": None, "eos_token_id": None, "pad_token_id": None, "tie_word_embeddings": False,
}  # fmt: skip


def pretrain(model: torch.nn.Module, train: Any, *, steps: int, batch_size: int, lr: float, seed: int) -> list[float]:
    """Plain next-token training of the full model (AdamW, cosine schedule); the loss every 50 steps."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    losses: list[float] = []
    model.train()
    step = 0
    epoch = 0
    while step < steps:
        for ids, target in as_loader(train, batch_size=batch_size, shuffle=True, seed=seed + epoch):
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            logits = model(ids).logits
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if step % 50 == 0:
                losses.append(round(float(loss), 4))
                print(f"pretrain step {step}: loss {float(loss):.3f}", flush=True)
            step += 1
            if step == steps:
                break
        epoch += 1
    return losses


def evaluate(net: HFSupernet, configs: dict[str, dict[str, Any]], val: Any, batches: int) -> dict[str, Any]:
    """Token loss, perplexity and accuracy of each named configuration's extracted sub-network."""
    rows = {}
    for name, cfg in configs.items():
        res = measure_accuracy(net.extract(cfg), val, batch_size=32, max_batches=batches)
        rows[name] = {"loss": res.loss, "perplexity": math.exp(res.loss), "token_accuracy": res.top1,
                      "params": net.costs(cfg)["params"], "config": cfg}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrain-steps", type=int, default=500)
    ap.add_argument("--finetune-epochs", type=int, default=1)
    ap.add_argument("--finetune-windows", type=int, default=1600, help="training windows per fine-tuning epoch")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--smoke", action="store_true", help="a few batches of each step, into a temporary folder")
    args = ap.parse_args()
    if args.smoke:
        args.pretrain_steps, args.finetune_epochs, args.finetune_windows = 4, 1, 64
        args.out = Path(tempfile.mkdtemp()) / "tiny_gpt"
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    from transformers import LlamaConfig, LlamaForCausalLM

    train, val = resolve_data("pystdlib:train"), resolve_data("pystdlib:val")
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(LlamaConfig(**MODEL))
    t0 = time.perf_counter()
    curve = pretrain(model, train, steps=args.pretrain_steps, batch_size=args.batch_size, lr=3e-3, seed=args.seed)
    t_pretrain = time.perf_counter() - t0
    model.eval()
    calib = [tuple(b) for b in as_loader(train, batch_size=16, shuffle=True, seed=args.seed + 99)][:8]
    net = elasticize(model, calib, task="causal-lm", method="activation")
    t_elasticize = time.perf_counter() - t0 - t_pretrain
    gen = torch.Generator().manual_seed(args.seed)
    subset = torch.utils.data.Subset(train, torch.randperm(len(train), generator=gen)[: args.finetune_windows].tolist())
    batches = 8 if args.smoke else 64
    configs = {"largest": net.max_config(), "smallest": net.min_config()}
    configs.update({f"random{i}": net.search_space.sample(seed=args.seed + i) for i in range(4)})
    before = evaluate(net, configs, val, batches)
    trainer = SandwichTrainer(
        net, TrainConfig.finetuning(epochs=args.finetune_epochs, batch_size=args.batch_size, lr=1e-3, seed=args.seed)
    )
    trainer.fit(subset, progress=not args.smoke)
    net.eval()
    t_finetune = time.perf_counter() - t0 - t_pretrain - t_elasticize
    after = evaluate(net, configs, val, batches)
    atomic_write_dir(args.out, lambda tmp: net.save_pretrained(tmp), marker=INFO_FILE, what="tiny_gpt folder")
    size = sum(f.stat().st_size for f in args.out.iterdir())
    result = {
        "command": "python benchmarks/builtin_tiny_gpt.py" + (" --smoke" if args.smoke else ""),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()},
        "model": MODEL,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "seconds": {"pretrain": t_pretrain, "elasticize": t_elasticize, "finetune": t_finetune},
        "pretrain_loss_curve": curve,
        "layer_order": list(net.layer_order),
        "folder_bytes": size,
        "before_finetune": before,
        "after_finetune": after,
        "space": {"genes": net.search_space.n_genes, "log10_size": net.search_space.log10_size},
    }
    print(json.dumps({k: result[k] for k in ("seconds", "folder_bytes")}, indent=1))
    for name in configs:
        print(f"{name:9s} params {after[name]['params']:8d}  loss before {before[name]['loss']:.3f}  "
              f"after {after[name]['loss']:.3f}  (ppl {after[name]['perplexity']:.2f})")
    if args.smoke:
        return
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    write_readme(result)


def write_readme(result: dict[str, Any]) -> None:
    rows = [
        "| sub-network | parameters | val loss after pretraining + elasticize | after InstaTune | perplexity |",
        "|---|---|---|---|---|",
    ]
    for name, after in result["after_finetune"].items():
        before = result["before_finetune"][name]
        rows.append(f"| {name} | {after['params']:,} | {before['loss']:.3f} | {after['loss']:.3f} | "
                    f"{after['perplexity']:.2f} |")
    s = result["seconds"]
    text = "\n".join([
        START,
        f"`{result['command']}` ({result['date']}, {result['machine']['threads']} threads): pretraining "
        f"{s['pretrain']:.0f} s, elasticize {s['elasticize']:.1f} s, InstaTune {s['finetune']:.0f} s; folder "
        f"{result['folder_bytes'] / 1e6:.1f} MB; block ranking {result['layer_order']}. Next-byte loss (nats) on "
        "`pystdlib:val`:",
        "",
        *rows,
        END,
    ])
    readme = README.read_text()
    if START in readme:
        readme = readme[: readme.index(START)] + text + readme[readme.index(END) + len(END):]
    else:
        readme += "\n## Built-in tiny_gpt\n\n" + text + "\n"
    README.write_text(readme)


if __name__ == "__main__":
    main()
