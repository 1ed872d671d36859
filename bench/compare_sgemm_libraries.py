#!/usr/bin/python3
"""Why posenc::linear calls oneDNN: the matrix products of the LFF MLP (forward and backward) timed
with LibTorch's CPU matmul (OpenBLAS in Debian's build) and with oneDNN's dnnl_sgemm (Debian's
libdnnl, called through ctypes), same process, same thread count, median of --repeats calls.
Run with Debian's interpreter, which has python3-torch: /usr/bin/python3.
"""
import argparse
import ctypes
import ctypes.util
import statistics
import sys
import time

import torch


def load_sgemm():
    name = ctypes.util.find_library("dnnl") or "libdnnl.so.2"
    try:
        sgemm = ctypes.CDLL(name).dnnl_sgemm
    except (OSError, AttributeError) as error:
        sys.exit(f"cannot load dnnl_sgemm from {name}: {error} (install libdnnl2)")
    sgemm.restype = ctypes.c_int
    sgemm.argtypes = [ctypes.c_char, ctypes.c_char] + [ctypes.c_int64] * 3 + [
        ctypes.c_float, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
        ctypes.c_float, ctypes.c_void_p, ctypes.c_int64]
    return sgemm


def median_ms(step, warmup, repeats):
    for _ in range(warmup):
        step()
    samples = []
    for _ in range(repeats):
        begin = time.perf_counter()
        step()
        samples.append((time.perf_counter() - begin) * 1000)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--positions", type=int, default=12544, help="P (default B*N = 64*196)")
    parser.add_argument("--fourier", type=int, default=128, help="F")
    parser.add_argument("--hidden", type=int, default=64, help="H")
    parser.add_argument("--dim", type=int, default=192, help="D")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sgemm = load_sgemm()
    p, f, h, d = args.positions, args.fourier, args.hidden, args.dim
    # (what, M, K, N): row-major (M, K) x (K, N)
    products = [("features x W1^T", p, f, h), ("hidden x W2^T", p, h, d),
                ("grad_out x W2", p, d, h), ("grad_out^T x hidden", d, p, h),
                ("grad_hidden x W1", p, h, f), ("grad_hidden^T x features", h, p, f)]
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats} calls")
    print(f"{'product':26} {'M x K x N':>20} {'torch.mm ms':>12} {'dnnl_sgemm ms':>14} {'ratio':>6}")
    for what, m, k, n in products:
        a, b, c = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
        torch_ms = median_ms(lambda: torch.mm(a, b), args.warmup, args.repeats)
        dnnl_ms = median_ms(lambda: sgemm(b"N", b"N", m, n, k, 1.0, a.data_ptr(), k,
                                          b.data_ptr(), n, 0.0, c.data_ptr(), n),
                            args.warmup, args.repeats)
        error = (c - a @ b).abs().max().item() / max(1e-30, (a @ b).abs().max().item())
        if error > 1e-4:
            sys.exit(f"dnnl_sgemm disagrees with torch.mm on {what}: relative error {error:.1e}")
        print(f"{what:26} {f'{m} x {k} x {n}':>20} {torch_ms:12.2f} {dnnl_ms:14.2f} "
              f"{torch_ms / dnnl_ms:5.2f}x")


if __name__ == "__main__":
    main()
