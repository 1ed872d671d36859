"""Latency of posenc's fused CPU kernels (PEG and LFF, forward and forward+backward) against
PyTorch written the way the public code writes them, run eagerly and through torch.compile
(inductor, which generates C++ for the CPU), same shapes, same thread count, in one run.

PyTorch side: the CPVT/Twins PosCNN (transpose to (B, C, H, W), depthwise kxk conv with bias,
residual, flatten back; prefix tokens split off and concatenated back) and the common PyTorch port
of Learnable Fourier Features (Wr linear without bias, 1/sqrt(F) * [cos, sin], GELU MLP), float32
on the CPU. Each figure is the median of --repeats timed calls after --warmup untimed ones.
The compiled side is torch.compile(module, dynamic=False) of the same module on the same tensors:
every case is compiled (forward under no_grad, forward+backward with autograd) and run once before
any timing, so compilation and its first run are outside the timed region (their seconds are
printed); a case that fails to compile is reported and the run goes on without it. Graph breaks
are counted, and a recompilation during the timed calls is an error for that case (it would time
the compiler). Compiled forward outputs are checked against the eager ones.
The sides are timed alternately in --rounds rounds (posenc, then PyTorch eager and compiled, then
again), and the table gives the median over rounds of each time and of each round's ratios, with
the ratios' range: on a shared machine the speed drifts by up to 2x within minutes, and a ratio of
two measurements taken side by side drifts much less than either. A ratio is PyTorch's time over
posenc's fused time (above 1: posenc is faster). The ceiling column divides PyTorch's time (eager,
then compiled) by the time the case's multiply-adds alone take at the rate posenc bench measures
for a square matrix product (LibTorch's sgemm): no kernel that does those multiply-adds at that rate
gets past it.
posenc side: `posenc bench --json` run as a subprocess with the same shapes and threads; its fused
and reference (composite LibTorch) timings come from there. If the binary is missing or the command
fails, the PyTorch figures are printed alone (exit status 1 only with --require-posenc).
Unless --no-malloc-tuning, glibc malloc is told to keep freed memory (no mmap for blocks up to
32 MiB, no trimming), in this process by mallopt and in posenc's by GLIBC_TUNABLES: otherwise the
eager temporaries of several MB are mapped and unmapped every call and page faults, which two
threads take in turn, dominate and make the figures bimodal (seen on a 2-core VM).
PEG is timed by default without a class token (CPVT-GAP, Twins) and with one (CPVT). Without one,
the public code's (B, C, H, W) view of the tokens is a channels-last contiguous tensor, and PyTorch
runs its channels-last (oneDNN) depthwise convolution on it in place. With one, the view of the
sliced tokens is not contiguous in any layout, so PyTorch first copies it to a channels-last
tensor, and torch.cat copies the output once more.
--peg-nchw adds, per PEG shape without a class token, PyTorch on an NCHW-contiguous (B, C, H, W)
input beside the same posenc figures: not how the public code runs, but the layout of a tensor
that went through .contiguous(), where PyTorch takes its slower NCHW depthwise path.
RoPE: the rotation of q in timm's RoPE ViTs (timm/models/eva.py), timm's own RotaryEmbeddingCat
table and apply_rot_embed_cat on the (B, heads, N, head_dim) view of the qkv product, the class
token kept out and concatenated back, as AttentionRope and EvaAttention do: interleaved pairs
(rope_*, the vit_*_rope_* models) and rotate-half pairs (rope_half_*, EVA-02, DINOv3). posenc's
rope cases turn the q view of the same (B, N, 3C) product by fixed angles. The rope cases need timm, which
imports only in the reference environment (scripts/timm-venv.sh, PyTorch 2.14.1): run there, the
whole comparison uses that PyTorch; elsewhere the rope cases are left out with a note.
Run with the project's environment (PyTorch 2.13, CPU; scripts/install-deps.sh makes it):
  .venv/bin/python bench/compare_kernels_with_pytorch.py --threads 2
or, with the rope cases, with the reference environment:
  $(scripts/timm-venv.sh) bench/compare_kernels_with_pytorch.py --threads 2
"""
import argparse
import collections
import ctypes
import ctypes.util
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

REPO_ROOT = Path(__file__).resolve().parent.parent
PEG_KEYS = ("B", "H", "W", "C", "k", "prefix")
LFF_KEYS = ("B", "N", "G", "M", "F", "H", "D")
PEG_CASES = ("peg_forward", "peg_forward_backward")
# rows of --peg-nchw: PyTorch on an NCHW-contiguous input, beside posenc's figures of the case named
PEG_NCHW_CASES = {"peg_forward_nchw_input": "peg_forward",
                  "peg_forward_backward_nchw_input": "peg_forward_backward"}
LFF_CASES = ("lff_forward", "lff_forward_backward")
ROPE_KEYS = ("B", "N", "prefix", "heads", "head_dim")
ROPE_CASES = {False: ("rope_forward", "rope_forward_backward"),
              True: ("rope_half_forward", "rope_half_forward_backward")}
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs", "max-autotune")
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 2 ** 31 - 1
MALLOC_TUNABLES = (f"glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:"
                   f"glibc.malloc.trim_threshold={TRIM_THRESHOLD}")


def tune_malloc():
    """Keep freed heap memory in this process (glibc only); True if mallopt took both settings."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(
        mallopt(m_trim_threshold, TRIM_THRESHOLD))


class PosCNN(nn.Module):
    """CPVT/Twins PEG: depthwise kxk conv on the (B, C, H, W) view of the patch tokens, residual."""

    def __init__(self, channels, kernel):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(channels, channels, kernel, 1, kernel // 2, bias=True, groups=channels))

    def forward(self, x, height, width, prefix=0):
        batch, _, channels = x.shape
        if prefix:
            prefix_tokens, feature_tokens = x[:, :prefix], x[:, prefix:]
        else:
            feature_tokens = x
        cnn_feat = feature_tokens.transpose(1, 2).view(batch, channels, height, width)
        out = self.proj(cnn_feat) + cnn_feat
        out = out.flatten(2).transpose(1, 2)
        if prefix:
            out = torch.cat((prefix_tokens, out), dim=1)
        return out


class ConvResidual(nn.Module):
    """PosCNN's convolution and residual alone, on a (B, C, H, W) tensor (--peg-nchw)."""

    def __init__(self, proj):
        super().__init__()
        self.proj = proj

    def forward(self, x):
        return self.proj(x) + x


class LearnableFourierFeatures(nn.Module):
    """Learnable Fourier Features (Li et al. 2021) as commonly ported to PyTorch."""

    def __init__(self, groups, pos_dim, fourier_dim, hidden_dim, out_dim, gamma=1.0):
        super().__init__()
        assert fourier_dim % 2 == 0 and out_dim % groups == 0
        self.groups, self.out_dim, self.fourier_dim = groups, out_dim, fourier_dim
        self.Wr = nn.Linear(pos_dim, fourier_dim // 2, bias=False)
        nn.init.normal_(self.Wr.weight.data, mean=0.0, std=1.0 / gamma)
        self.mlp = nn.Sequential(nn.Linear(fourier_dim, hidden_dim), nn.GELU(),
                                 nn.Linear(hidden_dim, out_dim // groups))

    def forward(self, x):
        batch, tokens, _, _ = x.shape
        projected = self.Wr(x)
        features = 1 / math.sqrt(self.fourier_dim) * torch.cat(
            [torch.cos(projected), torch.sin(projected)], dim=-1)
        return self.mlp(features).reshape(batch, tokens, self.out_dim)


class TimmRopeQuery(nn.Module):
    """The rotation of q in timm's RoPE ViTs (timm/models/eva.py, EvaAttention): q is the
    (B, heads, N, head_dim) view of the qkv product, its prefix tokens are kept and the rest
    turned by timm.layers.apply_rot_embed_cat (interleaved pairs, or rotate-half with `half`),
    then concatenated back."""

    def __init__(self, apply_rot_embed_cat, rope, heads, prefix, half):
        super().__init__()
        self.apply_rot_embed_cat, self.heads, self.prefix = apply_rot_embed_cat, heads, prefix
        self.half = half
        self.register_buffer("rope", rope)

    def forward(self, qkv):
        batch, tokens, _ = qkv.shape
        q = qkv.reshape(batch, tokens, 3, self.heads, -1).permute(2, 0, 3, 1, 4)[0]
        npt = self.prefix
        return torch.cat([q[:, :, :npt, :],
                          self.apply_rot_embed_cat(q[:, :, npt:, :], self.rope, half=self.half)],
                         dim=2)


def median_ms(step, warmup, repeats, before=None, grad=True):
    """Median wall time of step() in ms, autograd on or off; before() (untimed) runs ahead of
    every call."""
    with torch.set_grad_enabled(grad):
        for _ in range(warmup):
            if before:
                before()
            step()
        samples = []
        for _ in range(repeats):
            if before:
                before()
            begin = time.perf_counter()
            step()
            samples.append((time.perf_counter() - begin) * 1000)
    return statistics.median(samples)


# One timed PyTorch function: call(run) does one step with `run` (the eager module or its compiled
# counterpart) and returns the output when it is a forward; before() runs untimed ahead of each.
Step = collections.namedtuple("Step", "call before grad")


def first_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


def graph_breaks():
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return 0
    return sum(counters["graph_break"].values())


class CaseGroup:
    """The PyTorch cases of one shape: one module and its inputs, timed eagerly and compiled."""

    def __init__(self, shape, module, steps):
        self.shape, self.module, self.steps = shape, module, steps
        self.compiled_module = None
        self.compiled = {}  # case -> {"ok", "compile_s", "graph_breaks", "max_abs_diff", "error"}

    def compile(self, mode):
        """torch.compile the module and run every case once through it, untimed."""
        try:
            self.compiled_module = torch.compile(self.module, dynamic=False,
                                                 mode=None if mode == "default" else mode)
        except Exception as error:  # noqa: BLE001 - any failure is reported, not fatal
            self.compiled = {name: {"ok": False, "error": first_line(error)} for name in self.steps}
            return
        for name, step in self.steps.items():
            breaks = graph_breaks()
            begin = time.perf_counter()
            try:
                with torch.set_grad_enabled(step.grad):
                    if step.before:
                        step.before()
                    out = step.call(self.compiled_module)
                seconds = time.perf_counter() - begin
                info = {"ok": True, "compile_s": seconds, "graph_breaks": graph_breaks() - breaks}
                if out is not None:
                    with torch.no_grad():
                        info["max_abs_diff"] = (out - step.call(self.module)).abs().max().item()
            except Exception as error:  # noqa: BLE001
                info = {"ok": False, "error": first_line(error)}
            self.compiled[name] = info

    def time(self, warmup, repeats):
        """{case: {"eager": ms, "compiled": ms or None}}"""
        times = {}
        for name, step in self.steps.items():
            eager = median_ms(lambda: step.call(self.module), warmup, repeats, step.before,
                              step.grad)
            compiled = None
            info = self.compiled.get(name)
            if info and info["ok"]:
                try:
                    compiled = median_ms(lambda: step.call(self.compiled_module), warmup, repeats,
                                         step.before, step.grad)
                except Exception as error:  # noqa: BLE001 - e.g. a recompilation (see main)
                    info.update(ok=False, error="while timed: " + first_line(error))
            times[name] = {"eager": eager, "compiled": compiled}
        return times


def peg_group(shape):
    torch.manual_seed(0)
    b, h, w, c, k, prefix = (shape[key] for key in PEG_KEYS)
    module = PosCNN(c, k)
    x = torch.randn(b, prefix + h * w, c)
    grad_out = torch.randn(b, prefix + h * w, c)
    x_grad = x.clone().requires_grad_(True)

    def clear():
        x_grad.grad = None
        module.zero_grad(set_to_none=True)

    return CaseGroup(shape, module, {
        "peg_forward": Step(lambda run: run(x, h, w, prefix), None, False),
        "peg_forward_backward": Step(lambda run: run(x_grad, h, w, prefix).backward(grad_out),
                                     clear, True)})


def peg_nchw_group(shape):
    """PyTorch's PEG (depthwise conv, residual) on an NCHW-contiguous (B, C, H, W) tensor."""
    torch.manual_seed(0)
    b, h, w, c, k = (shape[key] for key in PEG_KEYS[:5])
    module = ConvResidual(PosCNN(c, k).proj)
    x = torch.randn(b, c, h, w)
    grad_out = torch.randn(b, c, h, w)
    x_grad = x.clone().requires_grad_(True)

    def clear():
        x_grad.grad = None
        module.zero_grad(set_to_none=True)

    return CaseGroup(shape, module, {
        "peg_forward_nchw_input": Step(lambda run: run(x), None, False),
        "peg_forward_backward_nchw_input": Step(lambda run: run(x_grad).backward(grad_out), clear,
                                                True)})


def lff_group(shape, extent):
    torch.manual_seed(0)
    b, n, g, m, f, hidden, d = (shape[key] for key in LFF_KEYS)
    module = LearnableFourierFeatures(g, m, f, hidden, d)
    positions = torch.rand(b, n, g, m) * extent
    grad_out = torch.randn(b, n, d)
    return CaseGroup(shape, module, {
        "lff_forward": Step(lambda run: run(positions), None, False),
        "lff_forward_backward": Step(lambda run: run(positions).backward(grad_out),
                                     lambda: module.zero_grad(set_to_none=True), True)})


def rope_group(shape, half):
    """timm's own rotation (RotaryEmbeddingCat's table of a grid, apply_rot_embed_cat), or None
    with the reason when timm does not import in this environment. Interleaved pairs as timm's
    vit_*_rope_* models (naver's temperature 100, xy indexing), rotate-half with `half`."""
    try:
        from timm.layers import RotaryEmbeddingCat, apply_rot_embed_cat
    except ImportError as error:
        return None, (f"timm does not import here ({first_line(error)}): the rope cases need the "
                      "reference environment, `$(scripts/timm-venv.sh) "
                      "bench/compare_kernels_with_pytorch.py`")
    torch.manual_seed(0)
    b, n, prefix, heads, head_dim = (shape[key] for key in ROPE_KEYS)
    positioned = n - prefix
    side = math.isqrt(positioned)
    grid = [side, side] if side * side == positioned else [1, positioned]
    # as timm's RoPE ViTs: the table of the patch grid, patch-index coordinates
    rope = RotaryEmbeddingCat(head_dim, in_pixels=False, feat_shape=grid, temperature=100.0,
                              grid_indexing="xy", rotate_half=half).get_embed()
    module = TimmRopeQuery(apply_rot_embed_cat, rope, heads, prefix, half)
    qkv = torch.randn(b, n, 3 * heads * head_dim)
    qkv_grad = qkv.clone().requires_grad_(True)
    grad_out = torch.randn(b, heads, n, head_dim)

    def clear():
        qkv_grad.grad = None

    forward, forward_backward = ROPE_CASES[half]
    return CaseGroup(shape, module, {
        forward: Step(lambda run: run(qkv), None, False),
        forward_backward: Step(lambda run: run(qkv_grad).backward(grad_out), clear, True)}), None


def parse_shape(text, keys):
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != len(keys):
        raise argparse.ArgumentTypeError(f"expected {len(keys)} integers {','.join(keys)}: {text!r}")
    return dict(zip(keys, values))


def run_posenc(binary, args, peg_shape):
    """(posenc bench's JSON object, None, command), or (None, why it failed, command)."""
    command = [str(binary), "bench", "--json", "--threads", str(args.threads),
               "--repeats", str(args.repeats),
               "--peg-shape", ",".join(str(peg_shape[key]) for key in PEG_KEYS),
               "--lff-shape", ",".join(str(args.lff_shape[key]) for key in LFF_KEYS),
               "--rope-shape", ",".join(str(args.rope_shape[key]) for key in ROPE_KEYS)]
    if not binary.is_file():
        return None, f"posenc binary not found: {binary}", command
    env = dict(os.environ)
    if not args.no_malloc_tuning:
        env["GLIBC_TUNABLES"] = ":".join(filter(None, (env.get("GLIBC_TUNABLES"), MALLOC_TUNABLES)))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.posenc_timeout,
                              env=env)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"`{' '.join(command)}` failed: {error}", command
    if done.returncode != 0:
        detail = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        return None, (f"`{' '.join(command)}` exited with {done.returncode}"
                      + (f": {detail[0].strip()}" if detail else "")), command
    text = done.stdout
    try:
        result = json.loads(text)
    except json.JSONDecodeError:
        try:  # tolerate log lines around the object
            result = json.loads(text[text.index("{"):text.rindex("}") + 1])
        except ValueError:
            return None, "posenc bench printed no JSON object on stdout", command
    if not isinstance(result, dict) or not isinstance(result.get("cases"), list):
        return None, "posenc bench JSON has no \"cases\" list", command
    return result, None, command


def shape_text(shape):
    return ",".join(f"{key}={value}" for key, value in shape.items())


def speedup_text(ratio):
    if ratio is None:
        return "-"
    return f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def merge(names, group, pytorch_ms, posenc):
    """Rows for the cases `names` of `group`: PyTorch's figures (eager and compiled) beside posenc
    bench's. `names` is a sequence of case names, or a dict of row name -> posenc bench's case
    name."""
    shape = group.shape
    posenc_names = names if isinstance(names, dict) else {name: name for name in names}
    theirs = {}
    if posenc:
        for case in posenc["cases"]:
            if isinstance(case, dict) and case.get("name") in posenc_names.values():
                theirs[case["name"]] = case
    copy_gbs = posenc.get("copy_bandwidth_gbs") if posenc else None
    matmul_gflops = posenc.get("matmul_gflops") if posenc else None
    rows = []
    for name, posenc_name in posenc_names.items():
        if posenc and posenc_name not in theirs:
            continue  # only cases present on both sides
        eager, compiled = pytorch_ms[name]["eager"], pytorch_ms[name]["compiled"]
        row = {"name": name, "shape": shape, "pytorch_ms": eager, "pytorch_compiled_ms": compiled}
        case = theirs.get(posenc_name)
        if case:
            fused, reference = case.get("fused_ms"), case.get("reference_ms")
            row.update(fused_ms=fused, reference_ms=reference,
                       speedup=eager / fused if fused else None,
                       speedup_compiled=compiled / fused if fused and compiled else None)
            their_shape = case.get("shape")
            if their_shape is not None and {k: their_shape.get(k) for k in shape} != shape:
                row["posenc_shape"] = their_shape
                row["shape_mismatch"] = True
            if name.startswith(("peg", "rope")):
                gbs = case.get("gbs")
                if gbs is None and case.get("bytes") and fused:
                    gbs = case["bytes"] / (fused * 1e-3) / 1e9
                row["gbs"] = gbs
                if gbs is not None and copy_gbs:
                    row["copy_fraction"] = gbs / copy_gbs
            gflops = case.get("gflops")
            if isinstance(gflops, (int, float)):
                row["gflops"] = gflops
                if matmul_gflops:
                    row["matmul_fraction"] = gflops / matmul_gflops
            bound = case.get("compute_bound_ms")
            if isinstance(bound, (int, float)) and bound > 0:
                # the speed-up of a kernel that did only its multiply-adds, at the square
                # product's rate: what any kernel can reach against this PyTorch time
                row["ceiling"] = eager / bound
                if compiled:
                    row["ceiling_compiled"] = compiled / bound
        rows.append(row)
    return rows


ROUND_KEYS = ("pytorch_ms", "pytorch_compiled_ms", "fused_ms", "reference_ms", "speedup",
              "speedup_compiled")


def combine_rounds(rounds, compile_info):
    """One row per case from per-round rows: medians of the times and of the per-round ratios."""
    def median_of(values):
        values = [value for value in values if isinstance(value, (int, float))]
        return statistics.median(values) if values else None

    combined = []
    for per_round in zip(*rounds):
        row = dict(per_round[0])
        for key in ROUND_KEYS + ("gbs", "copy_fraction", "gflops", "matmul_fraction", "ceiling",
                                 "ceiling_compiled"):
            row[key] = median_of(r.get(key) for r in per_round)
        for key in ("speedup", "speedup_compiled"):
            ratios = [r[key] for r in per_round if r.get(key) is not None]
            if ratios:
                row[f"{key}_min"], row[f"{key}_max"] = min(ratios), max(ratios)
        row["rounds"] = [{key: r.get(key) for key in ROUND_KEYS} for r in per_round]
        info = compile_info.get((row["name"], shape_text(row["shape"])))
        if info is not None:
            row["compile"] = info
        combined.append(row)
    return combined


def print_table(rows, args, posenc, note, malloc_tuned):
    compiled_text = (" (torch.compile not run: --no-compile)" if args.no_compile else
                     f" and torch.compile (inductor, mode {args.compile_mode}, dynamic=False)")
    print(f"PyTorch {torch.__version__} eager{compiled_text}, float32 CPU, "
          f"{torch.get_num_threads()} threads, median of {args.repeats} after {args.warmup} "
          f"warm-up, {args.rounds} round(s), malloc "
          + ("tuned (no mmap/trim up to 32 MiB)" if malloc_tuned else "default"))
    if posenc:
        copy, matmul = posenc.get("copy_bandwidth_gbs"), posenc.get("matmul_gflops")
        print(f"posenc bench: {posenc.get('threads', '?')} threads, SIMD {posenc.get('simd', '?')}"
              + (f", copy bandwidth {copy:.1f} GB/s" if copy else "")
              + (f", matrix products {matmul:.1f} GFLOP/s" if matmul else ""))
        if posenc.get("threads") not in (None, args.threads):
            print(f"warning: posenc ran with {posenc['threads']} threads, PyTorch with {args.threads}")
    elif note:
        print(f"note: {note}; PyTorch figures only")

    def ms(value):
        return f"{value:.3f}" if isinstance(value, (int, float)) else "-"

    def ratio_text(row, key):
        text = speedup_text(row.get(key))
        if row.get(f"{key}_min") is not None and len(row.get("rounds", [])) > 1:
            text += f" ({speedup_text(row[f'{key}_min'])}-{speedup_text(row[f'{key}_max'])})"
        return text

    header = (f"{'case':31} {'shape':38} {'eager ms':>9} {'compiled':>9} {'fused ms':>9} "
              f"{'ref ms':>9} {'vs eager (range)':>20} {'vs compiled (range)':>20} "
              f"{'ceiling e/c':>13}  fused throughput")
    print(header)
    print("-" * len(header))
    for row in rows:
        throughput = ""
        if row.get("gbs") is not None:
            throughput = f"{row['gbs']:.1f} GB/s"
            if row.get("copy_fraction") is not None:
                throughput += f" ({100 * row['copy_fraction']:.0f}% of copy)"
        elif row.get("gflops") is not None:
            throughput = f"{row['gflops']:.1f} GFLOP/s in the MLP's products"
            if row.get("matmul_fraction") is not None:
                throughput += f" ({100 * row['matmul_fraction']:.0f}% of a square product's rate)"
        ceiling = "-"
        if row.get("ceiling") is not None:
            ceiling = (f"{speedup_text(row['ceiling'])}/"
                       f"{speedup_text(row.get('ceiling_compiled'))}")
        print(f"{row['name']:31} {shape_text(row['shape']):38} {ms(row['pytorch_ms']):>9} "
              f"{ms(row.get('pytorch_compiled_ms')):>9} {ms(row.get('fused_ms')):>9} "
              f"{ms(row.get('reference_ms')):>9} {ratio_text(row, 'speedup'):>20} "
              f"{ratio_text(row, 'speedup_compiled'):>20} {ceiling:>13}  {throughput}".rstrip())
        if row.get("shape_mismatch"):
            print(f"  warning: posenc timed shape {shape_text(row['posenc_shape'])}")
    if not args.no_compile:
        print("torch.compile, per case (compilation and first run, untimed):")
        for row in rows:
            info = row.get("compile", {})
            if not info.get("ok"):
                print(f"  {row['name']} {shape_text(row['shape'])}: FAILED to compile or run "
                      f"compiled: {info.get('error', 'no result')}")
                continue
            text = f"  {row['name']} {shape_text(row['shape'])}: {info['compile_s']:.1f} s"
            if info.get("graph_breaks"):
                text += f", {info['graph_breaks']} graph break(s)"
            if info.get("max_abs_diff") is not None:
                text += f", output max |compiled - eager| {info['max_abs_diff']:.1e}"
            print(text)
    if posenc:
        print("vs eager = PyTorch eager ms / posenc fused ms, vs compiled = PyTorch compiled ms / "
              "posenc fused ms (median over rounds of each round's ratio; range in brackets; "
              "above 1: posenc is faster); ref = posenc's composite LibTorch path")
        print("ceiling e/c = PyTorch eager / compiled ms over the time the case's multiply-adds "
              "alone take at the square product's rate (PEG: the convolution's taps inside the "
              "grid; LFF: the MLP's products): the speed-up of a kernel that did nothing else at "
              "that rate")
        if not rows:
            print("note: posenc bench reported none of the PyTorch cases")


def configure_dynamo():
    """Room for every case's graphs, and an error instead of a silent eager fallback or a
    recompilation inside the timed calls (see main)."""
    config = torch._dynamo.config
    for key, value in (("recompile_limit", 64), ("cache_size_limit", 64),
                       ("fail_on_recompile_limit_hit", True)):
        if hasattr(config, key):
            setattr(config, key, value)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posenc", type=Path, default=REPO_ROOT / "build" / "posenc",
                        help="posenc CLI (default: build/posenc under the repository root)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30, help="timed iterations (median)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed iterations first")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times posenc and PyTorch alternately this many times (default 3)")
    parser.add_argument("--peg-shape", type=lambda text: parse_shape(text, PEG_KEYS),
                        action="append", metavar="B,H,W,C,k,prefix",
                        help="repeatable; default 64,14,14,192,3,0 and 64,14,14,192,3,1 "
                             "(without and with a class token)")
    parser.add_argument("--lff-shape", type=lambda text: parse_shape(text, LFF_KEYS),
                        default=parse_shape("64,196,1,2,128,64,192", LFF_KEYS),
                        metavar="B,N,G,M,F,H,D", help="default 64,196,1,2,128,64,192")
    parser.add_argument("--rope-shape", type=lambda text: parse_shape(text, ROPE_KEYS),
                        default=parse_shape("64,197,1,6,64", ROPE_KEYS),
                        metavar="B,N,prefix,heads,head_dim", help="default 64,197,1,6,64")
    parser.add_argument("--lff-extent", type=float, default=14.0,
                        help="LFF positions are uniform in [0, extent) (default 14)")
    parser.add_argument("--peg-nchw", action="store_true",
                        help="also time PyTorch's PEG on an NCHW-contiguous input, for shapes "
                             "without a class token (see above)")
    parser.add_argument("--no-compile", action="store_true",
                        help="time PyTorch eager only (no torch.compile)")
    parser.add_argument("--compile-mode", choices=COMPILE_MODES, default="default",
                        help="torch.compile mode (default: default)")
    parser.add_argument("--pytorch-only", action="store_true", help="do not run posenc bench")
    parser.add_argument("--require-posenc", action="store_true",
                        help="exit with status 1 if posenc bench is missing or fails")
    parser.add_argument("--posenc-timeout", type=float, default=600, help="seconds")
    parser.add_argument("--no-malloc-tuning", action="store_true",
                        help="leave glibc malloc's mmap/trim thresholds at their defaults")
    parser.add_argument("--json", action="store_true", help="print the merged result as JSON")
    args = parser.parse_args()
    if args.pytorch_only and args.require_posenc:
        parser.error("--pytorch-only and --require-posenc exclude each other")
    if args.threads < 1 or args.repeats < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--threads, --repeats and --rounds must be positive, --warmup non-negative")
    peg_shapes = args.peg_shape or [parse_shape(text, PEG_KEYS)
                                    for text in ("64,14,14,192,3,0", "64,14,14,192,3,1")]
    lff = args.lff_shape
    if any(peg["k"] % 2 == 0 for peg in peg_shapes):
        parser.error("PEG kernel size k must be odd (padding k//2 keeps H x W)")
    if lff["F"] % 2 or lff["D"] % lff["G"]:
        parser.error("LFF needs an even F and D divisible by G")
    rope_shape = args.rope_shape
    if rope_shape["prefix"] > rope_shape["N"] or rope_shape["head_dim"] % 2:
        parser.error("the rope shape needs prefix <= N and an even head_dim")

    malloc_tuned = not args.no_malloc_tuning and tune_malloc()
    # before anything is compiled: inductor's kernels take the thread count at compile time
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already fixed once parallel work has started

    # (row names for merge(), case group, index of the PEG shape whose posenc run it pairs with)
    groups = []
    for index, peg in enumerate(peg_shapes):
        groups.append((PEG_CASES, peg_group(peg), index))
        if args.peg_nchw and peg["prefix"] == 0:
            groups.append((PEG_NCHW_CASES, peg_nchw_group(peg), index))
    groups.append((LFF_CASES, lff_group(lff, args.lff_extent), 0))
    for half in (False, True):
        rope, rope_note = rope_group(rope_shape, half)
        if rope is None:
            print(f"note: {rope_note}", file=sys.stderr)
            break
        groups.append((ROPE_CASES[half], rope, 0))
    compile_info = {}
    if not args.no_compile:
        configure_dynamo()
        for _, group, _ in groups:
            print(f"compiling {', '.join(group.steps)} at {shape_text(group.shape)} ...",
                  file=sys.stderr, flush=True)
            group.compile(args.compile_mode)
            for name, info in group.compiled.items():
                compile_info[(name, shape_text(group.shape))] = info
                if not info["ok"]:
                    print(f"torch.compile failed for {name}: {info['error']}", file=sys.stderr)
        # every case ran once compiled: from here on a recompilation means a guard failed
        # inside the timed loop, which would time the compiler; it raises and fails that case
        torch._dynamo.config.error_on_recompile = True

    # posenc bench times one PEG shape (and the LFF cases) per call. Each round runs it first,
    # alone, so the two never compete for cores, then times PyTorch on the same shapes.
    rounds, note, commands, posenc = [], None, [], None
    for _ in range(args.rounds):
        posenc_runs = []
        for peg in peg_shapes:
            if args.pytorch_only:
                posenc_runs.append(None)
                continue
            result, failure, command = run_posenc(args.posenc, args, peg)
            posenc_runs.append(result)
            if command not in commands:
                commands.append(command)
            note = note or failure
        round_posenc = posenc_runs[0] if all(posenc_runs) else None
        posenc = posenc or round_posenc
        rows = []
        for names, group, index in groups:
            rows += merge(names, group, group.time(args.warmup, args.repeats),
                          posenc_runs[index] if round_posenc else None)
        rounds.append(rows)
    if note:  # a failed posenc run in any round: report PyTorch alone rather than mix
        posenc = None
        rounds = [[{key: row[key] for key in ("name", "shape", "pytorch_ms",
                                               "pytorch_compiled_ms")} for row in rows]
                  for rows in rounds]
    rows = combine_rounds(rounds, compile_info)

    if args.json:
        merged = {"pytorch": {"version": torch.__version__, "threads": torch.get_num_threads(),
                              "interop_threads": torch.get_num_interop_threads(),
                              "repeats": args.repeats, "warmup": args.warmup,
                              "rounds": args.rounds,
                              "compiled": None if args.no_compile else {
                                  "backend": "inductor", "mode": args.compile_mode,
                                  "dynamic": False},
                              "malloc_tuned": malloc_tuned,
                              "lff_extent": args.lff_extent},
                  "posenc": None if posenc is None else {
                      key: value for key, value in posenc.items() if key != "cases"},
                  "cases": rows}
        if commands:
            merged["posenc_commands"] = commands
        if note:
            merged["note"] = note
            print(f"note: {note}; PyTorch figures only", file=sys.stderr)
        print(json.dumps(merged, indent=2))
    else:
        print_table(rows, args, posenc, note, malloc_tuned)
    if args.require_posenc and posenc is None:
        sys.exit(1)


if __name__ == "__main__":
    main()
