"""What a rotary encoding costs a ViT's training step in posenc: training images/s of the same ViT
with a learned table (learned2d, DeiT), with rope_axial and with rope_mixed (class token, head
'token', as timm's vit_*_rope_* models), measured in one run with build/bench/posenc_model_throughput
(forward, backward and AdamW on random images; batch-1 inference latency too). The encodings are
timed in turn within each of --rounds rounds, and each ratio is a rotary encoding's images/s over
the learned table's in the same round; the table gives the median over rounds and the range.
Goal of issue 23: a RoPE ViT trains no more than 10% slower than with a learned table (ratio at
least 0.90). Keep the machine idle. Needs only the Python standard library:
  python3 bench/compare_rope_training_cost.py --threads 2
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# per preset: (batch, timed steps) that keep a round under a minute on 2 cores
PRESETS = {"nano": (128, 20), "micro": (128, 20), "tiny": (32, 4)}
REFERENCE = "learned2d"


def run_once(binary, model, encoding, threads, latency_runs):
    batch, steps = PRESETS[model]
    command = [str(binary), "--model", model, "--pe", encoding, "--head", "token", "--batch",
               str(batch), "--steps", str(steps), "--threads", str(threads), "--latency-runs",
               str(latency_runs)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        sys.exit(f"`{' '.join(command)}` exited with {done.returncode}: "
                 f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", type=Path,
                        default=REPO_ROOT / "build" / "bench" / "posenc_model_throughput")
    parser.add_argument("--models", default="micro,tiny",
                        help=f"comma-separated presets of {', '.join(PRESETS)} (default micro,tiny)")
    parser.add_argument("--encodings", default="rope_axial,rope_mixed",
                        help="rotary specs timed against learned2d (default rope_axial,rope_mixed)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latency-runs", type=int, default=50)
    args = parser.parse_args()
    models = args.models.split(",")
    unknown = [model for model in models if model not in PRESETS]
    if unknown or args.rounds < 1:
        parser.error(f"unknown preset(s) {unknown}; use {', '.join(PRESETS)}; --rounds >= 1")
    if not args.binary.is_file():
        sys.exit(f"{args.binary} not found: build it with scripts/build.sh")
    encodings = [REFERENCE] + args.encodings.split(",")

    print(f"posenc_model_throughput, {args.threads} threads, {args.rounds} round(s), head token")
    print(f"{'model':6} {'encoding':12} {'batch':>5} {'train img/s':>12} {'vs learned2d (range)':>22}"
          f" {'batch-1 ms':>11}")
    for model in models:
        results = {encoding: [] for encoding in encodings}
        for _ in range(args.rounds):
            for encoding in encodings:
                results[encoding].append(run_once(args.binary, model, encoding, args.threads,
                                                  args.latency_runs))
        for encoding in encodings:
            speeds = [r["train_images_per_second"] for r in results[encoding]]
            ratios = [r["train_images_per_second"] / ref["train_images_per_second"]
                      for r, ref in zip(results[encoding], results[REFERENCE])]
            ratio = "-" if encoding == REFERENCE else (
                f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")
            latency = statistics.median(r["latency_ms_median"] for r in results[encoding])
            print(f"{model:6} {encoding:12} {PRESETS[model][0]:>5} "
                  f"{statistics.median(speeds):>12.1f} {ratio:>22} {latency:>11.3f}")


if __name__ == "__main__":
    main()
