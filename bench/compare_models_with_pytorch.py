#!/usr/bin/python3
"""Training throughput and batch-1 latency of posenc's ViTs against the same models in PyTorch
eager, measured in one session with the same thread count.

The PyTorch models follow the public code: timm/DeiT blocks (pre-norm, qkv attention, GELU MLP),
a Twins/CPVT PosConv (PEG) after block 0 and a global-average-pooled head (CPVT-GAP).
Run with Debian's interpreter, which has python3-torch: /usr/bin/python3 (scripts/bench-models.sh).
"""
import argparse
import json
import statistics
import subprocess
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {"micro": (96, 6, 3), "nano": (64, 4, 2)}


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attention = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PosConv(nn.Module):
    """Twins/CPVT PEG: transpose to (B, C, H, W), depthwise 3x3 conv, residual, flatten back."""

    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim))

    def forward(self, x, size):
        b, n, c = x.shape
        feature = x.transpose(1, 2).view(b, c, *size)
        return (self.proj(feature) + feature).flatten(2).transpose(1, 2)


class CpvtGap(nn.Module):
    def __init__(self, dim, depth, heads, classes=10, patch=4):
        super().__init__()
        self.patch_embed = nn.Conv2d(1, dim, patch, patch)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.pos_block = PosConv(dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, images):
        x = self.patch_embed(images)
        size = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index == 0:
                x = self.pos_block(x, size)
        return self.head(self.norm(x).mean(1))


def time_pytorch(preset, batch, steps, latency_runs):
    torch.manual_seed(0)
    model = CpvtGap(*PRESETS[preset])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    images = torch.randn(batch, 1, 28, 28)
    labels = torch.randint(0, 10, (batch,))

    def train_step():
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()

    model.train()
    for _ in range(3):
        train_step()
    start = time.perf_counter()
    for _ in range(steps):
        train_step()
    throughput = steps * batch / (time.perf_counter() - start)
    model.eval()
    single = images[:1]
    latencies = []
    with torch.no_grad():
        for _ in range(10):
            model(single)
        for _ in range(latency_runs):
            begin = time.perf_counter()
            model(single)
            latencies.append((time.perf_counter() - begin) * 1000)
    return {"implementation": "pytorch", "model": preset,
            "parameters": sum(p.numel() for p in model.parameters()),
            "threads": torch.get_num_threads(), "train_images_per_second": throughput,
            "latency_ms_median": statistics.median(latencies)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posenc-bench", default="build/bench/posenc_model_throughput")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--latency-runs", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"PyTorch {torch.__version__}, {args.threads} threads, batch {args.batch}, 28x28, "
          f"CPVT-GAP (PEG after block 0, GAP head)")
    print(f"{'model':6} {'impl':8} {'params':>8} {'train img/s':>12} {'latency ms':>11}")
    for preset in PRESETS:
        ours = json.loads(subprocess.run(
            [args.posenc_bench, "--model", preset, "--batch", str(args.batch),
             "--steps", str(args.steps), "--latency-runs", str(args.latency_runs),
             "--threads", str(args.threads)],
            check=True, capture_output=True, text=True).stdout)
        theirs = time_pytorch(preset, args.batch, args.steps, args.latency_runs)
        for row in (ours, theirs):
            print(f"{preset:6} {row['implementation']:8} {row['parameters']:>8} "
                  f"{row['train_images_per_second']:>12.0f} {row['latency_ms_median']:>11.2f}")
        print(f"{preset:6} {'ratio':8} {'':>8} "
              f"{ours['train_images_per_second'] / theirs['train_images_per_second']:>11.2f}x "
              f"{theirs['latency_ms_median'] / ours['latency_ms_median']:>10.2f}x  "
              "(posenc / PyTorch speed)")


if __name__ == "__main__":
    main()
