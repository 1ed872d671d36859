"""Training throughput and batch-1 latency of posenc's ViTs against timm's VisionTransformer with
the same configuration, run eagerly and through torch.compile (inductor, C++ for the CPU), same
thread count, same batch, in one run.

Models (posenc's presets, VisionTransformerOptions::preset): nano (dim 64, depth 4, 2 heads) and
micro (dim 96, depth 6, 3 heads) on 28 x 28 single-channel images (Fashion-MNIST) with 4 x 4
patches, 10 classes; tiny (DeiT-Ti: dim 192, depth 12, 3 heads, 224 x 224 RGB, 16 x 16 patches,
1000 classes) on request. All: MLP ratio 4, qkv bias, pre-norm blocks with LayerNorm eps 1e-6,
stochastic depth rising linearly to 0.1 in the last block, exact GELU.
Encodings (--encodings):
  peg      CPVT-GAP: no class token, no position table, a PEG after block 0 and the final norm
           before the global average (posenc --pe peg --head gap). timm side: VisionTransformer
           (class_token=False, pos_embed='none', global_pool='avg', fc_norm=False) with timm's
           own PosConv (timm.models.twins) after block 0.
  learned  DeiT: class token and a learned table over the class token and the patches, added after
           the patch embedding, class-token head (posenc --pe learned1d --head token). timm side:
           VisionTransformer with its default pos_embed='learn' and global_pool='token'.
timm's attention calls F.scaled_dot_product_attention (the header says whether it does here).
Both sides train on one random batch (--batch, default 128) with cross-entropy and AdamW (lr 1e-3,
weight decay 0.05 on every parameter, as posenc_model_throughput does): images/s over --steps
steps after 3 warm-up steps; then batch-1 latency in eval mode without autograd: the median of
--latency-runs forwards after 10 warm-up ones. The compiled side is a second instance of the same
timm model (same seed) passed to torch.compile(model, dynamic=False); the loss and the AdamW step
stay eager. Its training graphs (forward and backward) and its batch-1 inference graph are
compiled and run once before any timing, and their seconds printed; a model that fails to compile
is reported and the run goes on without its compiled figures; a recompilation inside the timed
region is an error for that model.
posenc side: build/bench/posenc_model_throughput (bench/model_throughput.cpp) as a subprocess with
the same settings; it prints one JSON object.
--rounds alternates posenc, timm eager and timm compiled that many times; the table gives the
median over rounds of each figure and of each round's ratios, with their range. A ratio above 1
means posenc is faster: its img/s over PyTorch's, PyTorch's latency over its.
timm imports torchvision, whose PyPI wheels do not load beside the project's PyTorch 2.13 CPU
wheel, so this runs in the separate environment .venv-timm (PyTorch 2.14.1, torchvision 0.29.1,
timm 1.0.31); the PyTorch version it used is printed. posenc runs on the LibTorch it was built with
(.venv's). scripts/bench-models.sh makes .venv-timm if missing, builds posenc and runs this:
  scripts/bench-models.sh --threads 2
  .venv-timm/bin/python bench/compare_models_with_pytorch.py --threads 2
"""
import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

# PyTorch and timm are imported by import_timm() once the arguments are parsed, so that --help
# works with any Python.
torch = F = timm = None
CpvtGapVisionTransformer = VisionTransformer = None

REPO_ROOT = Path(__file__).resolve().parent.parent
# posenc's presets (src/models/vision_transformer.cpp): the fields the timm model needs
PRESETS = {
    "nano": dict(img_size=28, in_chans=1, num_classes=10, patch_size=4, embed_dim=64, depth=4,
                 num_heads=2),
    "micro": dict(img_size=28, in_chans=1, num_classes=10, patch_size=4, embed_dim=96, depth=6,
                  num_heads=3),
    "tiny": dict(img_size=224, in_chans=3, num_classes=1000, patch_size=16, embed_dim=192,
                 depth=12, num_heads=3),
}
COMMON = dict(mlp_ratio=4.0, qkv_bias=True, drop_path_rate=0.1)  # LayerNorm eps 1e-6: timm's own
# encoding -> (posenc_model_throughput's --pe and --head, description)
ENCODINGS = {"peg": ("peg", "gap", "CPVT-GAP: PEG after block 0, GAP head"),
             "learned": ("learned1d", "token", "DeiT: learned table, class token")}
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs", "max-autotune")


def import_timm():
    """Imports PyTorch and timm, and defines the CPVT-GAP model on timm's classes."""
    global torch, F, timm, CpvtGapVisionTransformer, VisionTransformer
    try:
        import torch
        import torch.nn.functional as F
        import timm
        from timm.models.twins import PosConv
        from timm.models.vision_transformer import VisionTransformer
    except ImportError as error:
        sys.exit(f"cannot import PyTorch and timm ({error}): run this with .venv-timm/bin/python "
                 "(scripts/bench-models.sh makes that environment)")

    class CpvtGapVisionTransformer(VisionTransformer):
        """timm's VisionTransformer without class token or position table, timm's PosConv
        (the Twins/CPVT PEG) after block 0, and the final norm before a global average pool
        (CPVT-GAP)."""

        def __init__(self, **kwargs):
            super().__init__(class_token=False, pos_embed="none", global_pool="avg", fc_norm=False,
                             **kwargs)
            self.pos_block = PosConv(self.embed_dim, self.embed_dim)
            # CPVT's and posenc's initialisation: N(0, 2 / fan_out), fan_out = k * k per group
            conv = self.pos_block.proj[0]
            fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
            torch.nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan_out))
            torch.nn.init.zeros_(conv.bias)

        def forward_features(self, x, attn_mask=None, is_causal=False):
            if attn_mask is not None or is_causal:
                raise NotImplementedError("this benchmark model takes no attention mask")
            x = self.patch_embed(x)
            x = self.norm_pre(self.patch_drop(self._pos_embed(x)))
            for index, block in enumerate(self.blocks):
                x = block(x)
                if index == 0:
                    x = self.pos_block(x, self.patch_embed.grid_size)
            return self.norm(x)


def make_model(preset, encoding):
    torch.manual_seed(0)
    options = dict(PRESETS[preset], **COMMON)
    if encoding == "peg":
        return CpvtGapVisionTransformer(**options)
    return VisionTransformer(**options)


def first_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


class Side:
    """One timm model (eager or compiled) with its optimiser and data."""

    def __init__(self, preset, encoding, batch, compile_mode=None):
        self.model = make_model(preset, encoding)
        self.parameters = sum(p.numel() for p in self.model.parameters())
        self.fused_attention = bool(getattr(self.model.blocks[0].attn, "fused_attn", False))
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3, weight_decay=0.05)
        self.run = self.model
        if compile_mode is not None:
            self.run = torch.compile(self.model, dynamic=False,
                                     mode=None if compile_mode == "default" else compile_mode)
        options = PRESETS[preset]
        generator = torch.Generator().manual_seed(1)
        self.images = torch.randn(batch, options["in_chans"], options["img_size"],
                                  options["img_size"], generator=generator)
        self.labels = torch.randint(0, options["num_classes"], (batch,), generator=generator)

    def train_step(self):
        self.optimizer.zero_grad()
        F.cross_entropy(self.run(self.images), self.labels).backward()
        self.optimizer.step()

    def infer(self):
        return self.run(self.images[:1])

    def first_calls(self):
        """One training step and one batch-1 inference (for the compiled side: compilation);
        their seconds."""
        self.model.train()
        begin = time.perf_counter()
        self.train_step()
        train_s = time.perf_counter() - begin
        self.model.eval()
        with torch.no_grad():
            begin = time.perf_counter()
            self.infer()
            infer_s = time.perf_counter() - begin
        return train_s, infer_s

    def measure(self, steps, latency_runs):
        self.model.train()
        for _ in range(3):
            self.train_step()
        start = time.perf_counter()
        for _ in range(steps):
            self.train_step()
        throughput = steps * self.images.shape[0] / (time.perf_counter() - start)
        self.model.eval()
        latencies = []
        with torch.no_grad():
            for _ in range(10):
                self.infer()
            for _ in range(latency_runs):
                begin = time.perf_counter()
                self.infer()
                latencies.append((time.perf_counter() - begin) * 1000)
        return {"train_images_per_second": throughput,
                "latency_ms_median": statistics.median(latencies)}


def run_posenc(args, preset, encoding):
    """(posenc_model_throughput's JSON object, None), or (None, why it failed)."""
    pe, head, _ = ENCODINGS[encoding]
    command = [str(args.posenc_bench), "--model", preset, "--pe", pe, "--head", head,
               "--batch", str(args.batch), "--steps", str(args.steps),
               "--latency-runs", str(args.latency_runs), "--threads", str(args.threads)]
    if not args.posenc_bench.is_file():
        return None, f"posenc benchmark not found: {args.posenc_bench}"
    try:
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=args.posenc_timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"`{' '.join(command)}` failed: {error}"
    if done.returncode != 0:
        detail = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        return None, (f"`{' '.join(command)}` exited with {done.returncode}"
                      + (f": {detail[-1].strip()}" if detail else ""))
    for line in reversed(done.stdout.splitlines()):
        try:
            result = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(result, dict) and "train_images_per_second" in result:
            return result, None
    return None, f"`{' '.join(command)}` printed no JSON result"


def configure_dynamo():
    """Room for every model's graphs; an error instead of a silent fallback to eager."""
    config = torch._dynamo.config
    for key, value in (("recompile_limit", 64), ("cache_size_limit", 64),
                       ("fail_on_recompile_limit_hit", True)):
        if hasattr(config, key):
            setattr(config, key, value)


def median_or_none(values):
    values = [value for value in values if isinstance(value, (int, float))]
    return statistics.median(values) if values else None


def ratios(posenc, pytorch):
    """posenc's speed over PyTorch's: (training, latency), None where a side is missing."""
    if not posenc or not pytorch:
        return None, None
    return (posenc["train_images_per_second"] / pytorch["train_images_per_second"],
            pytorch["latency_ms_median"] / posenc["latency_ms_median"])


def summarise(config, rounds):
    """Medians over rounds of each side's figures and of each round's ratios, with ranges."""
    summary = dict(config)
    for side in ("posenc", "eager", "compiled"):
        per_round = [r[side] for r in rounds if r.get(side)]
        summary[side] = None if not per_round else {
            key: median_or_none(r[key] for r in per_round)
            for key in ("train_images_per_second", "latency_ms_median")}
    for side in ("eager", "compiled"):
        pairs = [ratios(r.get("posenc"), r.get(side)) for r in rounds]
        for index, key in enumerate(("train", "latency")):
            values = [pair[index] for pair in pairs if pair[index] is not None]
            summary[f"{key}_speedup_vs_{side}"] = median_or_none(values)
            if values:
                summary[f"{key}_speedup_vs_{side}_range"] = [min(values), max(values)]
    summary["rounds"] = rounds
    return summary


def speedup_text(value, spread=None):
    if value is None:
        return "-"
    text = f"{value:.2f}x"
    if spread and spread[0] != spread[1]:
        text += f" ({spread[0]:.2f}-{spread[1]:.2f})"
    return text


def print_table(summaries, args, note):
    compiled_text = (" (torch.compile not run: --no-compile)" if args.no_compile else
                     f" and torch.compile (inductor, mode {args.compile_mode}, dynamic=False)")
    fused = {s["fused_attention"] for s in summaries}
    print(f"timm {timm.__version__} VisionTransformer on PyTorch {torch.__version__}, eager"
          f"{compiled_text}; {args.threads} threads, batch {args.batch}, {args.steps} steps, "
          f"{args.latency_runs} batch-1 runs, {args.rounds} round(s); attention "
          + ("F.scaled_dot_product_attention" if fused == {True} else
             "not (or not always) F.scaled_dot_product_attention"))
    print(f"posenc: {args.posenc_bench} (LibTorch of its build)")
    if note:
        print(f"note: {note}; PyTorch figures only")
    header = (f"{'model':6} {'encoding':9} {'implementation':20} {'params':>9} "
              f"{'train img/s':>20} {'latency ms':>20}")
    print(header)
    print("-" * len(header))
    for s in summaries:
        lead = f"{s['model']:6} {s['encoding']:9}"
        for side, label in (("posenc", "posenc"), ("eager", "timm eager"),
                            ("compiled", "timm compiled")):
            figures = s.get(side)
            if figures is None:
                reason = ""
                if side == "compiled" and not args.no_compile and not s["compile"].get("ok"):
                    reason = "compile failed (below)"
                if side == "posenc" and note:
                    reason = "not run"
                if reason:
                    print(f"{lead} {label:20} {'':>9} {reason:>20}")
                continue
            params = s["posenc_parameters"] if side == "posenc" else s["parameters"]
            print(f"{lead} {label:20} {params if params is not None else '-':>9} "
                  f"{figures['train_images_per_second']:>20.1f} "
                  f"{figures['latency_ms_median']:>20.3f}")
        for side in ("eager", "compiled"):
            if s.get(f"train_speedup_vs_{side}") is None:
                continue
            train, latency = (speedup_text(s[f"{key}_speedup_vs_{side}"],
                                           s.get(f"{key}_speedup_vs_{side}_range"))
                              for key in ("train", "latency"))
            print(f"{lead} {'posenc vs ' + side:20} {'':>9} {train:>20} {latency:>20}")
        if s.get("posenc_parameters") not in (None, s["parameters"]):
            print(f"  warning: posenc's model has {s['posenc_parameters']} parameters, timm's "
                  f"{s['parameters']}: the configurations differ")
    print("posenc vs X: posenc's img/s over X's, and X's latency over posenc's (median over rounds "
          "of each round's ratio, range in brackets; above 1: posenc is faster)")
    if not args.no_compile:
        print("torch.compile (compilation and first call, untimed):")
        for s in summaries:
            info = s["compile"]
            if info.get("ok"):
                print(f"  {s['model']} {s['encoding']}: training step {info['train_s']:.1f} s, "
                      f"batch-1 inference {info['inference_s']:.1f} s")
            else:
                print(f"  {s['model']} {s['encoding']}: FAILED: {info.get('error')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posenc-bench", type=Path,
                        default=REPO_ROOT / "build" / "bench" / "posenc_model_throughput",
                        help="posenc's model benchmark (default: build/bench/"
                             "posenc_model_throughput under the repository root)")
    parser.add_argument("--models", default="nano,micro",
                        help="comma-separated presets from nano, micro, tiny (default nano,micro; "
                             "tiny is DeiT-Ti at 224 px: minutes per side)")
    parser.add_argument("--encodings", default="peg,learned",
                        help="comma-separated from peg, learned (default both; see above)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128, help="training batch (default 128)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps (default 20)")
    parser.add_argument("--latency-runs", type=int, default=200,
                        help="timed batch-1 forwards (median; default 200)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times posenc, eager and compiled alternately this many times "
                             "(default 1)")
    parser.add_argument("--no-compile", action="store_true",
                        help="time timm eager only (no torch.compile)")
    parser.add_argument("--compile-mode", choices=COMPILE_MODES, default="default",
                        help="torch.compile mode (default: default)")
    parser.add_argument("--pytorch-only", action="store_true",
                        help="do not run posenc's benchmark")
    parser.add_argument("--require-posenc", action="store_true",
                        help="exit with status 1 if posenc's benchmark is missing or fails")
    parser.add_argument("--posenc-timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    models = [name for name in args.models.split(",") if name]
    encodings = [name for name in args.encodings.split(",") if name]
    if not models or any(name not in PRESETS for name in models):
        parser.error(f"--models takes names from {', '.join(PRESETS)}")
    if not encodings or any(name not in ENCODINGS for name in encodings):
        parser.error(f"--encodings takes names from {', '.join(ENCODINGS)}")
    if args.pytorch_only and args.require_posenc:
        parser.error("--pytorch-only and --require-posenc exclude each other")
    if min(args.threads, args.batch, args.steps, args.latency_runs, args.rounds) < 1:
        parser.error("--threads, --batch, --steps, --latency-runs and --rounds must be positive")

    import_timm()
    # before anything is compiled: inductor's kernels take the thread count at compile time
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    if not args.no_compile:
        configure_dynamo()

    configs = []
    for preset in models:
        for encoding in encodings:
            eager = Side(preset, encoding, args.batch)
            eager.first_calls()
            config = {"model": preset, "encoding": encoding,
                      "description": ENCODINGS[encoding][2], "parameters": eager.parameters,
                      "fused_attention": eager.fused_attention, "posenc_parameters": None,
                      "sides": {"eager": eager}, "compile": {}}
            if not args.no_compile:
                print(f"compiling {preset} {encoding} ...", file=sys.stderr, flush=True)
                try:
                    compiled = Side(preset, encoding, args.batch, args.compile_mode)
                    train_s, inference_s = compiled.first_calls()
                    config["sides"]["compiled"] = compiled
                    config["compile"] = {"ok": True, "train_s": train_s,
                                         "inference_s": inference_s}
                except Exception as error:  # noqa: BLE001 - reported, the run goes on
                    config["compile"] = {"ok": False, "error": first_line(error)}
                    print(f"torch.compile failed for {preset} {encoding}: "
                          f"{config['compile']['error']}", file=sys.stderr)
            configs.append(config)
    if not args.no_compile:
        # every graph exists now: a recompilation in the timed region would time the compiler
        torch._dynamo.config.error_on_recompile = True

    note = None
    for config in configs:
        config["rounds"] = []
    for round_index in range(args.rounds):
        for config in configs:
            label = f"{config['model']} {config['encoding']}, round {round_index + 1}"
            print(f"timing {label} ...", file=sys.stderr, flush=True)
            figures = {}
            if not args.pytorch_only:
                result, failure = run_posenc(args, config["model"], config["encoding"])
                note = note or failure
                if result:
                    figures["posenc"] = {key: result[key] for key in
                                         ("train_images_per_second", "latency_ms_median")}
                    config["posenc_parameters"] = result.get("parameters")
                    if result.get("threads") not in (None, args.threads):
                        print(f"warning: posenc ran {label} with {result['threads']} threads",
                              file=sys.stderr)
            for side, runner in list(config["sides"].items()):
                try:
                    figures[side] = runner.measure(args.steps, args.latency_runs)
                except Exception as error:  # noqa: BLE001 - e.g. a recompilation
                    if side != "compiled":
                        raise
                    config["compile"] = {"ok": False, "error": "while timed: " + first_line(error)}
                    del config["sides"]["compiled"]
                    break
            config["rounds"].append(figures)
    if note:  # a failed posenc run: report PyTorch alone rather than mix
        for config in configs:
            for figures in config["rounds"]:
                figures.pop("posenc", None)
    summaries = []
    for config in configs:
        base = {key: value for key, value in config.items() if key not in ("sides", "rounds")}
        summaries.append(summarise(base, config["rounds"]))

    if args.json:
        result = {"pytorch": {"version": torch.__version__, "timm": timm.__version__,
                              "threads": torch.get_num_threads(),
                              "compiled": None if args.no_compile else {
                                  "backend": "inductor", "mode": args.compile_mode,
                                  "dynamic": False}},
                  "settings": {"batch": args.batch, "steps": args.steps,
                               "latency_runs": args.latency_runs, "rounds": args.rounds,
                               "posenc_bench": str(args.posenc_bench)},
                  "models": summaries}
        if note:
            result["note"] = note
            print(f"note: {note}; PyTorch figures only", file=sys.stderr)
        print(json.dumps(result, indent=2))
    else:
        print_table(summaries, args, note)
    if args.require_posenc and (note or args.pytorch_only):
        sys.exit(1)


if __name__ == "__main__":
    main()
