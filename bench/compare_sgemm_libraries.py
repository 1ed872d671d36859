"""posenc's linear layers and fused LFF MLP call the BLAS inside LibTorch directly, on raw pointers
(the fused encoder does so per tile inside at::parallel_for, where tensor ops must not run). This
checks what that path gives against LibTorch's own torch.mm: the six matrix products of the LFF
MLP (forward and backward) timed through torch.mm and through the raw Fortran sgemm_ that
libtorch_cpu exports (MKL in the x86-64 wheels), the entry point src/kernels/blas_sgemm.cpp calls,
in one process with the same thread count: median of --repeats calls after --warmup.

Each product is timed twice:
  whole    all P rows (P = B*N, default 64*196) on --threads threads, as posenc::linear runs;
  tile     --tile-rows rows (default 256) on one thread, as the fused LFF encoder runs each tile
           inside at::parallel_for (MKL runs a product on the calling thread there), so the fixed
           cost of a call shows; --tile-rows 0 skips these.
Operands are stored as posenc stores them (weights (out, in), activations (rows, features)) and
transposes are passed as BLAS flags, not copies; torch.mm gets the same views and writes into the
same preallocated output (out=), so both sides do the same product and neither allocates. The
sgemm_ call goes through ctypes with its arguments prepared ahead, which adds about a microsecond
to that side. Each result is checked against torch.mm's.
Run with the project's environment (PyTorch 2.13, CPU; scripts/install-deps.sh makes it):
  .venv/bin/python bench/compare_sgemm_libraries.py --threads 2
"""
import argparse
import ctypes
import statistics
import sys
import time
from pathlib import Path

import torch


def load_sgemm():
    """sgemm_ from the libtorch_cpu this torch loaded (the process has it mapped already)."""
    library = Path(torch.__file__).resolve().parent / "lib" / "libtorch_cpu.so"
    try:
        sgemm = ctypes.CDLL(str(library)).sgemm_
    except (OSError, AttributeError) as error:
        sys.exit(f"cannot find sgemm_ in {library}: {error} (a build without an exported BLAS)")
    sgemm.restype = None
    sgemm.argtypes = [ctypes.c_char_p, ctypes.c_char_p] + [ctypes.POINTER(ctypes.c_int)] * 3 + [
        ctypes.POINTER(ctypes.c_float), ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
        ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_float),
        ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    return sgemm, library


def row_major_call(sgemm, transpose_a, transpose_b, m, n, k, a, b, c):
    """A function computing row-major c (m, n) = op(a) op(b) with sgemm_, as blas_sgemm.cpp does:
    the column-major c^T = op(b)^T op(a)^T, operands swapped, each keeping its flag."""
    flag_a, flag_b = transpose_a.encode(), transpose_b.encode()
    ints = [ctypes.c_int(value) for value in (n, m, k, m if transpose_a == "T" else k,
                                                 k if transpose_b == "T" else n)]
    rows, columns, depth, lda, ldb = (ctypes.byref(value) for value in ints)
    alpha, beta = ctypes.byref(ctypes.c_float(1.0)), ctypes.byref(ctypes.c_float(0.0))
    pa, pb, pc = a.data_ptr(), b.data_ptr(), c.data_ptr()

    def call():
        sgemm(flag_b, flag_a, rows, columns, depth, alpha, pb, ldb, pa, lda, beta, pc, rows)
    call.keep = ints  # the ctypes objects must outlive the pointers to them
    return call


def median_ms(step, warmup, repeats):
    for _ in range(warmup):
        step()
    samples = []
    for _ in range(repeats):
        begin = time.perf_counter()
        step()
        samples.append((time.perf_counter() - begin) * 1000)
    return statistics.median(samples)


def products(rows, fourier, hidden, out):
    """(what, M, N, K, op a, op b, shape of a as stored, shape of b as stored) of the LFF MLP:
    forward  pre = features W1^T, out = GELU(pre) W2^T; backward the input and weight gradients."""
    p, f, h, o = rows, fourier, hidden, out
    return [("features x W1^T", p, h, f, "N", "T", (p, f), (h, f)),
            ("hidden x W2^T", p, o, h, "N", "T", (p, h), (o, h)),
            ("grad_out x W2", p, h, o, "N", "N", (p, o), (o, h)),
            ("grad_out^T x hidden", o, h, p, "T", "N", (p, o), (p, h)),
            ("grad_pre x W1", p, f, h, "N", "N", (p, h), (h, f)),
            ("grad_pre^T x features", h, f, p, "T", "N", (p, h), (p, f))]


def time_products(sgemm, rows, args, label):
    results = []
    for what, m, n, k, op_a, op_b, shape_a, shape_b in products(rows, args.fourier, args.hidden,
                                                               args.dim):
        a, b, c = torch.randn(*shape_a), torch.randn(*shape_b), torch.empty(m, n)
        view_a = a.t() if op_a == "T" else a
        view_b = b.t() if op_b == "T" else b
        expected = torch.empty(m, n)
        torch_ms = median_ms(lambda: torch.mm(view_a, view_b, out=expected), args.warmup,
                             args.repeats)
        call = row_major_call(sgemm, op_a, op_b, m, n, k, a, b, c)
        raw_ms = median_ms(call, args.warmup, args.repeats)
        error = (c - expected).abs().max().item() / max(1e-30, expected.abs().max().item())
        if error > 1e-4:
            sys.exit(f"sgemm_ disagrees with torch.mm on {what} ({label}): relative error "
                     f"{error:.1e}")
        results.append({"product": what, "size": label, "m": m, "n": n, "k": k, "op_a": op_a,
                        "op_b": op_b, "torch_mm_ms": torch_ms, "sgemm_ms": raw_ms,
                        "gflops_sgemm": 2.0 * m * n * k / (raw_ms * 1e-3) / 1e9})
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="threads of the whole products")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--positions", type=int, default=12544, help="P (default B*N = 64*196)")
    parser.add_argument("--tile-rows", type=int, default=256,
                        help="rows of the one-thread tile products (default 256; 0: skip)")
    parser.add_argument("--fourier", type=int, default=128, help="F")
    parser.add_argument("--hidden", type=int, default=64, help="H")
    parser.add_argument("--dim", type=int, default=192, help="D (the MLP's output, D/G)")
    args = parser.parse_args()
    if min(args.threads, args.repeats, args.positions, args.fourier, args.hidden, args.dim) < 1 \
            or args.warmup < 0 or args.tile_rows < 0:
        parser.error("sizes, --threads and --repeats must be positive, --warmup and --tile-rows "
                     "non-negative")
    sgemm, library = load_sgemm()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    results = time_products(sgemm, args.positions, args, f"whole, {args.threads} thread(s)")
    if args.tile_rows:
        torch.set_num_threads(1)
        results += time_products(sgemm, args.tile_rows, args, "tile, 1 thread")
        torch.set_num_threads(args.threads)
    print(f"PyTorch {torch.__version__}; sgemm_ from {library}; median of {args.repeats} calls "
          f"after {args.warmup}")
    header = (f"{'product':24} {'size':20} {'op':>3} {'M x N x K':>20} {'torch.mm ms':>12} "
              f"{'sgemm_ ms':>10} {'torch.mm/sgemm_':>16} {'sgemm_ GFLOP/s':>15}")
    print(header)
    print("-" * len(header))
    for row in results:
        dims = f"{row['m']} x {row['n']} x {row['k']}"
        print(f"{row['product']:24} {row['size']:20} {row['op_a'] + row['op_b']:>3} {dims:>20} "
              f"{row['torch_mm_ms']:12.4f} {row['sgemm_ms']:10.4f} "
              f"{row['torch_mm_ms'] / row['sgemm_ms']:15.2f}x {row['gflops_sgemm']:15.1f}")
    print("op: the BLAS flags of a and b (T: passed transposed, not copied); torch.mm/sgemm_ above "
          "1: the raw call is faster")


if __name__ == "__main__":
    main()
