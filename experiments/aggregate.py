#!/usr/bin/env python3
"""Writes docs/results.md from the recorded runs: per experiment a table of test accuracy
(mean and standard deviation over seeds) after each epoch and at each test resolution (token-set
experiments: each coordinate range, and the similarity-distance correlation before and after
training), plots of accuracy against epoch and against test resolution or range (gnuplot), the
E4/E5 pictures and figures, and for each claim of the two papers a verdict computed from the
numbers.

    python3 experiments/aggregate.py                       # standard recipe -> docs/results.md
    python3 experiments/aggregate.py --recipe smoke --results R --figures F --out F/results.md

Verdict rule (stated in the output): a claim "A beats B" is reproduced when the mean of A exceeds
the mean of B by more than twice the standard error of the difference (Welch), not reproduced
when B exceeds A by that much, and inconclusive otherwise (or with fewer than 2 seeds each).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import run as experiments_run

ROOT = experiments_run.ROOT
EXPERIMENTS = experiments_run.EXPERIMENTS

# (paper and question, claim, metric, A, B, kind): kind "better" (A beats B) or "not-better"
# (A does not beat B: the paper found no gain).
CLAIMS = [
    ("CPVT RQ2", "an explicit encoding beats none (learned table)", "final", "learned1d", "none",
     "better"),
    ("CPVT RQ2", "PEG beats no encoding", "final", "peg", "none", "better"),
    ("CPVT RQ2", "PEG matches or beats the learned table (72.4 vs 72.2)", "final", "peg",
     "learned1d", "better"),
    ("CPVT RQ2", "PEG matches or beats sin-cos (72.4 vs 72.3)", "final", "peg", "sincos2d",
     "better"),
    ("CPVT RQ2", "PEG after blocks 0..k beats PEG after block 0 (73.4 vs 72.4)", "final",
     "peg-blocks-0-1", "peg", "better"),
    ("CPVT RQ2", "PEG with a GAP head beats PEG with a class token (74.9 vs 72.4)", "final",
     "peg-gap", "peg", "better"),
    ("CPVT RQ3", "PEG keeps more accuracy than the interpolated learned table at unseen, larger "
     "resolutions", "larger", "peg", "learned1d", "better"),
    ("CPVT RQ3", "... and at the unseen, smaller resolution", "smaller", "peg", "learned1d",
     "better"),
    ("CPVT RQ3", "PEG + GAP generalises to larger resolutions better than the learned table",
     "larger", "peg-gap", "learned1d", "better"),
    ("CPVT ablation", "PEG after the first block beats PEG before it (72.4 vs 70.6)", "final",
     "peg", "peg-before-block-0", "better"),
    ("CPVT ablation", "PEG after the first block beats PEG after the last block", "final", "peg",
     "peg-after-last-block", "better"),
    ("CPVT ablation", "zero padding beats circular padding (72.4 vs 70.5): the border gives "
     "absolute position", "final", "peg", "peg-circular", "better"),
    ("CPVT ablation", "a 3x3 kernel beats 1x1", "final", "peg", "peg-k1", "better"),
    ("CPVT ablation", "5x5 gives no gain over 3x3", "final", "peg-k5", "peg", "not-better"),
    ("CPVT ablation", "7x7 gives no gain over 3x3", "final", "peg-k7", "peg", "not-better"),
    ("LFF RQ2", "LFF beats Embed-1D (learned table)", "final", "lff", "learned1d", "better"),
    ("LFF RQ2", "LFF beats Embed-2D (learned row and column tables)", "final", "lff",
     "learned2d", "better"),
    ("LFF RQ2", "LFF beats 2-D sinusoids", "final", "lff", "sincos2d", "better"),
    ("LFF RQ2", "LFF converges faster than Embed-1D (accuracy after epoch 1)", "epoch1", "lff",
     "learned1d", "better"),
    ("LFF RQ2", "LFF narrows the gap at unseen, larger sizes (vs Embed-1D)", "larger", "lff",
     "learned1d", "better"),
    ("LFF RQ2", "... with normalised coordinates", "larger", "lff-normalized", "learned1d",
     "better"),
    ("E2 (posenc)", "normalised coordinates keep more accuracy than patch-index ones at unseen, "
     "larger sizes", "larger", "lff-normalized", "lff", "better"),
    ("E2 (posenc)", "... and at the unseen, smaller size", "smaller", "lff-normalized", "lff",
     "better"),
    ("LFF RQ3", "Fourier + MLP beats Fourier features alone (one linear layer)", "final", "lff",
     "lff-fourier-only", "better"),
    ("LFF RQ3", "Fourier + MLP beats the MLP on raw coordinates", "final", "lff", "lff-mlp-only",
     "better"),
    ("LFF RQ3", "Fourier + MLP converges faster than either part (epoch 1, vs Fourier only)",
     "epoch1", "lff", "lff-fourier-only", "better"),
    ("LFF RQ3", "... (epoch 1, vs MLP only)", "epoch1", "lff", "lff-mlp-only", "better"),
    ("LFF RQ3", "learning the Fourier features beats freezing them at their random start",
     "final", "lff", "lff-frozen-fourier", "better"),
    ("LFF RQ1", "LFF's similarity falls with L2 distance more than Embed-1D's (E5 correlation, "
     "more negative is better)", "correlation", "lff", "learned1d", "better"),
    ("LFF RQ1", "nearest neighbour: every encoding beats none (LFF)", "final", "nn-lff",
     "nn-none", "better"),
    ("LFF RQ1", "nearest neighbour: LFF beats sinusoids per coordinate", "final", "nn-lff",
     "nn-sincos", "better"),
    ("LFF RQ1", "nearest neighbour: LFF beats learned tables over quantised coordinates",
     "final", "nn-lff", "nn-learned", "better"),
    ("LFF RQ1", "nearest neighbour: LFF beats the MLP on raw coordinates (RQ3 on points)",
     "final", "nn-lff", "nn-mlp", "better"),
    ("LFF RQ1", "nearest neighbour: LFF converges faster than sinusoids (epoch 1)", "epoch1",
     "nn-lff", "nn-sincos", "better"),
    ("LFF RQ1", "after training, LFF's embedding similarity follows L2 distance more than the "
     "sinusoids' (−correlation)", "set-correlation", "nn-lff", "nn-sincos", "better"),
    ("LFF RQ1", "... more than the quantised tables'", "set-correlation", "nn-lff",
     "nn-learned", "better"),
    ("LFF RQ1", "... more than the MLP's", "set-correlation", "nn-lff", "nn-mlp", "better"),
    ("LFF RQ1 (gamma)", "with a 4x wider initial kernel (gamma 0.2), LFF beats the MLP on raw "
     "coordinates", "final", "nn-lff-gamma0.2", "nn-mlp", "better"),
    ("LFF RQ1 (gamma)", "... with lff's default gamma 1", "final", "nn-lff-gamma1", "nn-mlp",
     "better"),
    ("LFF inductive", "LFF keeps more accuracy than quantised tables at a larger range (0:2)",
     "range-larger", "nn-lff", "nn-learned", "better"),
    ("LFF inductive", "... at a shifted range (1:2)", "range-shifted", "nn-lff", "nn-learned",
     "better"),
    ("LFF inductive", "LFF keeps more accuracy than the raw-coordinate MLP at a shifted range",
     "range-shifted", "nn-lff", "nn-mlp", "better"),
    ("LFF inductive", "LFF keeps more accuracy than sinusoids at a larger range", "range-larger",
     "nn-lff", "nn-sincos", "better"),
    ("LFF RQ4", "layout: boxes as two corners sharing the Fourier features (G=2) beat one 4-D "
     "position (G=1)", "final", "layout-lff-g2", "layout-lff-g1", "better"),
    ("LFF RQ4", "layout: grouped LFF beats sinusoids per coordinate", "final", "layout-lff-g2",
     "layout-sincos", "better"),
    ("LFF RQ4", "layout: grouped LFF beats quantised tables", "final", "layout-lff-g2",
     "layout-learned", "better"),
    ("LFF RQ4", "layout: grouped LFF beats the MLP on raw coordinates", "final", "layout-lff-g2",
     "layout-mlp", "better"),
    ("LFF RQ4 (2k)", "layout, 2,000 screens: grouped LFF (G=2) beats one 4-D position (G=1)",
     "final", "layout-2k-lff-g2", "layout-2k-lff-g1", "better"),
    ("LFF RQ4 (2k)", "layout, 2,000 screens: grouped LFF beats sinusoids", "final",
     "layout-2k-lff-g2", "layout-2k-sincos", "better"),
    ("LFF RQ4 (2k)", "layout, 2,000 screens: grouped LFF beats quantised tables", "final",
     "layout-2k-lff-g2", "layout-2k-learned", "better"),
    ("LFF RQ4 (2k)", "layout, 2,000 screens: grouped LFF beats the MLP on raw coordinates",
     "final", "layout-2k-lff-g2", "layout-2k-mlp", "better"),
    ("E8 (Heo et al.)", "RoPE-Mixed keeps more accuracy than RoPE-Axial at larger resolutions "
     "(ViT-B 224 -> 384: 84.4 vs 83.9)", "larger", "rope-mixed", "rope-axial", "better"),
    ("E8 (Heo et al.)", "RoPE-Mixed keeps more accuracy than the learned table at larger "
     "resolutions (84.4 vs 82.8)", "larger", "rope-mixed", "learned1d", "better"),
    ("E8 (Heo et al.)", "RoPE-Axial keeps more accuracy than the learned table at larger "
     "resolutions (83.9 vs 82.8)", "larger", "rope-axial", "learned1d", "better"),
    ("E8 (Heo et al.)", "... also at smaller resolutions (not one of their figures: tested here)",
     "smaller", "rope-mixed", "learned1d", "better"),
    ("E8 (Heo et al.)", "at the training resolution RoPE-Mixed and the learned table are similar "
     "(83.8 vs 83.4)", "final", "rope-mixed", "learned1d", "equal"),
    ("E8 (Heo et al.)", "... and RoPE-Axial and the learned table (83.6 vs 83.4)", "final",
     "rope-axial", "learned1d", "equal"),
    ("E8 (beside)", "RoPE-Mixed keeps more accuracy than PEG at larger resolutions", "larger",
     "rope-mixed", "peg", "better"),
    ("E8 (beside)", "LFF on normalised coordinates keeps more accuracy than in patch units (E1) "
     "at larger resolutions", "larger", "lff-normalized", "lff", "better"),
    ("E8 (beside)", "so does RoPE-Axial on normalised coordinates (DINOv3's) against patch units",
     "larger", "rope-axial-normalized", "rope-axial", "better"),
    ("E8 (beside)", "... and RoPE-Mixed", "larger", "rope-mixed-normalized", "rope-mixed",
     "better"),
    ("E9 (rotary)", "a shifted range (1:2) costs rope_lff nothing (as none, which reads no "
     "position)", "shift-cost", "nn-rope-lff", "nn-none", "equal"),
    ("E9 (rotary)", "... nor rope_lff with gamma 0.2", "shift-cost", "nn-rope-lff-gamma0.2",
     "nn-none", "equal"),
    ("E9 (rotary)", "... nor rope_axial", "shift-cost", "nn-rope-axial", "nn-none", "equal"),
    ("E9 (rotary)", "... nor rope_mixed", "shift-cost", "nn-rope-mixed", "nn-none", "equal"),
    ("E9 (rotary)", "... nor rope_lff on layouts (two corners, G=2)", "shift-cost",
     "layout-rope-lff-g2", "layout-none", "equal"),
    ("E9 (rotary)", "control: the shifted range does cost the added lff", "shift-cost",
     "nn-lff", "nn-none", "better"),
    ("E9 (rotary)", "rope_lff keeps more accuracy than added lff at the shifted range",
     "range-shifted", "nn-rope-lff", "nn-lff", "better"),
    ("E9 (rotary)", "... with gamma 0.2", "range-shifted", "nn-rope-lff-gamma0.2",
     "nn-lff-gamma0.2", "better"),
    ("E9 (rotary)", "... on layouts (G=2)", "range-shifted", "layout-rope-lff-g2",
     "layout-lff-g2", "better"),
    ("E9 (rotary)", "rope_lff keeps more accuracy than added lff at the larger range (0:2)",
     "range-larger", "nn-rope-lff", "nn-lff", "better"),
    ("E9 (rotary)", "in the training range, rope_lff is not worse than added lff",
     "final", "nn-lff", "nn-rope-lff", "not-better"),
]

# Research questions these image-classification grids cannot answer, and why.
NOT_TESTED_HERE = [
    ("CPVT RQ1", "can position encodings be generated from local features?", "by construction: "
     "every PEG run above trains with no other encoding; how well is what E1 and E3 measure"),
    ("CPVT RQ4", "state of the art without fixed embeddings", "needs ImageNet-scale training"),
    ("LFF RQ2 beyond classification", "image generation, detection, widget captioning",
     "need models and data sets far beyond this CPU budget; E6/E7 test the position claims on "
     "generated point sets and layouts instead"),
]

# metric: (short label for the table, what it is)
METRICS = {
    "final": ("final", "test accuracy (%) at the training resolution after the last epoch"),
    "epoch1": ("epoch 1", "test accuracy (%) after the first epoch (convergence)"),
    "larger": ("larger", "mean test accuracy (%) at the unseen resolutions above the trained one"),
    "smaller": ("smaller", "mean test accuracy (%) at the unseen resolutions below it"),
    "correlation": ("−corr", "minus E5's correlation between similarity and L2 distance"),
    "set-correlation": ("−corr sets", "minus the correlation between the trained embedding's "
                        "similarity and L2 distance over 256 test positions in range 0:1"),
    "range-larger": ("0:2", "per-token test accuracy (%) with positions in the larger range 0:2"),
    "range-shifted": ("1:2", "per-token test accuracy (%) with positions in the shifted range "
                      "1:2"),
    "shift-cost": ("0:1 − 1:2", "per-token accuracy (%) in the training range minus that in the "
                   "shifted range 1:2, per seed"),
}
# "equal" claims: reproduced when the means differ by at most this (accuracy, 0.5 points)
EQUAL_TOLERANCE = 0.005
# the training range of the token-set tasks, and the ranges of the set metrics
TRAINING_RANGE = "0:1"
RANGE_METRICS = {"range-larger": "0:2", "range-shifted": "1:2"}


def mean_std(values):
    if not values:
        return float("nan"), float("nan")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def percent(values):
    mean, std = mean_std([100 * v for v in values])
    if math.isnan(mean):
        return "–"
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def read_jsonl(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Results:
    def __init__(self, results_dir, recipe_name, recipe):
        self.recipe = recipe
        folder = Path(results_dir) / recipe_name
        self.runs = {}
        for record in read_jsonl(folder / "runs.jsonl"):
            self.runs.setdefault(record["name"], []).append(record)
        self.inspections = {e: read_jsonl(folder / f"{e}.jsonl") for e in ("E4", "E5")}
        self.trained = recipe["trained_resolution"]

    def metric(self, name, metric):
        """Per-seed values of a metric for a configuration."""
        if metric == "correlation":
            return [-r["similarity_distance_correlation"] for r in self.inspections["E5"]
                    if r["name"] == name]
        values = []
        for record in self.runs.get(name, []):
            if "ranges" in record:  # a token-set run
                by_range = {r["range"]: r for r in record["ranges"]}
                if metric == "epoch1":
                    values.append(record["epochs"][0]["test_accuracy"])
                elif metric == "set-correlation":
                    if by_range[TRAINING_RANGE]["correlation_trained"] is not None:
                        values.append(-by_range[TRAINING_RANGE]["correlation_trained"])
                elif metric == "shift-cost":
                    shifted = RANGE_METRICS["range-shifted"]
                    if shifted in by_range:
                        values.append(by_range[TRAINING_RANGE]["accuracy"] -
                                      by_range[shifted]["accuracy"])
                elif RANGE_METRICS.get(metric, TRAINING_RANGE) in by_range:  # the recipe's ranges
                    values.append(by_range[RANGE_METRICS.get(metric, TRAINING_RANGE)]["accuracy"])
                continue
            by_size = {r["size"]: r["accuracy"] for r in record["resolutions"]}
            if metric == "final":
                values.append(by_size[self.trained])
            elif metric == "epoch1":
                values.append(record["epochs"][0]["test_accuracy"])
            else:
                sizes = [s for s in by_size if (s > self.trained if metric == "larger"
                                                 else s < self.trained)]
                values.append(sum(by_size[s] for s in sizes) / len(sizes))
        return values


def verdict(a, b, kind):
    if len(a) < 2 or len(b) < 2:
        return "not run yet" if not a or not b else "inconclusive (fewer than 2 seeds)"
    mean_a, std_a = mean_std(a)
    mean_b, std_b = mean_std(b)
    difference = mean_a - mean_b
    error = math.sqrt(std_a ** 2 / len(a) + std_b ** 2 / len(b))
    significant = abs(difference) > 2 * error
    if kind == "equal":
        return ("reproduced" if abs(difference) <= EQUAL_TOLERANCE else
                f"not reproduced (differs by more than {100 * EQUAL_TOLERANCE:g} points)")
    if kind == "not-better":
        return "not reproduced" if significant and difference > 0 else "reproduced"
    if not significant:
        return "inconclusive (within seed noise)"
    return "reproduced" if difference > 0 else "not reproduced (the opposite holds)"


def gnuplot(script):
    if shutil.which("gnuplot") is None:
        print("aggregate.py: gnuplot is not installed; plots skipped", file=sys.stderr)
        return False
    completed = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if completed.returncode != 0:
        print(f"aggregate.py: gnuplot failed: {completed.stderr}", file=sys.stderr)
        return False
    return True


def plot(path, title, xlabel, series, xtics=None):
    """series: [(label, [(x, mean, std)])] -> PNG with error bars over seeds."""
    with tempfile.TemporaryDirectory() as folder:
        plots = []
        for i, (label, points) in enumerate(series):
            data = Path(folder) / f"{i}.dat"
            data.write_text("".join(f"{x} {m} {0 if math.isnan(s) else s}\n"
                                    for x, m, s in points))
            plots.append(f"'{data}' using 1:2:3 with yerrorlines title '{label}'")
        # xtics: positions, or (label, position) pairs
        tics = ", ".join(f'"{x[0]}" {x[1]}' if isinstance(x, tuple) else str(x)
                         for x in xtics or [])
        tics = f"set xtics ({tics})\n" if tics else ""
        return gnuplot(f"""set terminal pngcairo size 900,520 font 'sans,10'
set output '{path}'
set title '{title}'
set xlabel '{xlabel}'
set ylabel 'test accuracy (%)'
set key outside right
set grid
{tics}plot {', '.join(plots)}
""")


def epoch_cells(runs, epochs):
    """Test accuracy after each epoch, mean ± std over the runs."""
    return [percent([r["epochs"][e]["test_accuracy"] for r in runs if len(r["epochs"]) > e])
            for e in range(epochs)]


def configuration_notes(experiment):
    return [f"\n{c['name']}: {c['note']}" for c in experiment["configurations"] if c.get("note")]


def convergence_plot(experiment, results, done, epochs, figures, relative, what):
    """The accuracy-per-epoch plot of the configurations in `done`, as report lines."""
    path = figures / f"{experiment['id']}_accuracy_per_epoch.png"
    by_epoch = [(n, [(e + 1, *mean_std([100 * r["epochs"][e]["test_accuracy"]
                                        for r in results.runs[n] if len(r["epochs"]) > e]))
                     for e in range(epochs)]) for n in done]
    if plot(path, f"{experiment['id']}: {what} after each epoch", "epoch", by_epoch,
            list(range(1, epochs + 1))):
        return [f"![accuracy per epoch]({relative}/{path.name})", ""]
    return []


def experiment_section(experiment, results, figures, relative):
    recipe = results.recipe
    sizes = recipe["test_resolutions"]
    names = [c["name"] for c in experiment["configurations"]]
    args = {c["name"]: " ".join(c["args"]) for c in experiment["configurations"]}
    epochs = max((len(r["epochs"]) for n in names for r in results.runs.get(n, [])), default=0)
    lines = [f"## {experiment['id']}: {experiment['title']}", "",
             f"Questions: {experiment.get('questions', '')}.", "",
             "Test accuracy (%), mean ± standard deviation over seeds; * the training resolution.",
             ""]
    header = ["configuration", "flags", "seeds"] + [f"epoch {e + 1}" for e in range(epochs)] + \
        [f"{s} px{'*' if s == results.trained else ''}" for s in sizes]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        runs = results.runs.get(name, [])
        row = [name, f"`{args[name]}`", str(len(runs))] + epoch_cells(runs, epochs)
        for s in sizes:
            row.append(percent([x["accuracy"] for r in runs for x in r["resolutions"]
                                if x["size"] == s]))
        lines.append("| " + " | ".join(row) + " |")
    lines += configuration_notes(experiment)
    lines.append("")
    done = [n for n in names if results.runs.get(n)]
    if not done:
        return lines + ["No runs recorded yet.", ""]
    lines += convergence_plot(experiment, results, done, epochs, figures, relative,
                              "test accuracy")
    resolution = figures / f"{experiment['id']}_accuracy_per_resolution.png"
    by_size = [(n, [(s, *mean_std([100 * x["accuracy"] for r in results.runs[n]
                                   for x in r["resolutions"] if x["size"] == s]))
                    for s in sizes]) for n in done]
    if plot(resolution, f"{experiment['id']}: test accuracy at each test resolution "
            f"(trained at {results.trained} px)", "test resolution (px)", by_size, sizes):
        lines += [f"![accuracy per resolution]({relative}/{resolution.name})", ""]
    return lines


def set_experiment_section(experiment, results, figures, relative):
    """A token-set experiment (E6, E7): accuracy per epoch and per coordinate range, and the
    similarity-distance correlation of the embeddings before and after training."""
    recipe = results.recipe.get("set_tasks", {}).get(experiment["task"], {})
    ranges = recipe.get("coordinate_ranges", [TRAINING_RANGE])
    names = [c["name"] for c in experiment["configurations"]]
    args = {c["name"]: " ".join(c["args"]) for c in experiment["configurations"]}
    epochs = max((len(r["epochs"]) for n in names for r in results.runs.get(n, [])), default=0)
    lines = [f"## {experiment['id']}: {experiment['title']}", "",
             f"Questions: {experiment.get('questions', '')}.", "",
             f"Recipe: {recipe.get('description', '–')}.", "",
             "Per-token test accuracy (%), mean ± standard deviation over seeds, after each epoch "
             f"(range {TRAINING_RANGE}) and at each coordinate range (* the training range); "
             "then the correlation between the cosine similarity of the positional embeddings "
             "and the L2 distance of 256 test positions in range 0:1, at initialisation and "
             "after training (more negative: similarity follows distance).", ""]
    header = (["configuration", "flags", "seeds"] + [f"epoch {e + 1}" for e in range(epochs)] +
              [f"{r}{'*' if r == TRAINING_RANGE else ''}" for r in ranges] +
              ["corr. initial", "corr. trained"])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def at_range(runs, wanted, key):
        return [x[key] for r in runs for x in r["ranges"] if x["range"] == wanted]

    for name in names:
        runs = results.runs.get(name, [])
        row = [name, f"`{args[name]}`", str(len(runs))] + epoch_cells(runs, epochs)
        row += [percent(at_range(runs, r, "accuracy")) for r in ranges]
        for key in ("correlation_initial", "correlation_trained"):
            values = at_range(runs, TRAINING_RANGE, key)
            if values and all(v is None for v in values):
                row.append("n/a (rotary)")  # no embedding to correlate
                continue
            mean, std = mean_std([v for v in values if v is not None])
            row.append("–" if math.isnan(mean) else
                       f"{mean:.3f}" if math.isnan(std) else f"{mean:.3f} ± {std:.3f}")
        lines.append("| " + " | ".join(row) + " |")
    lines += configuration_notes(experiment)
    lines.append("")
    done = [n for n in names if results.runs.get(n)]
    if not done:
        return lines + ["No runs recorded yet.", ""]
    lines += convergence_plot(experiment, results, done, epochs, figures, relative,
                              "per-token test accuracy")
    per_range = figures / f"{experiment['id']}_accuracy_per_range.png"
    by_range = [(n, [(i + 1, *mean_std([100 * a for a in at_range(results.runs[n], r,
                                                                   "accuracy")]))
                     for i, r in enumerate(ranges)]) for n in done]
    if plot(per_range, f"{experiment['id']}: per-token test accuracy at each coordinate range "
            f"(trained at {TRAINING_RANGE})", "coordinate range", by_range,
            [(r, i + 1) for i, r in enumerate(ranges)]):
        lines += [f"![accuracy per coordinate range]({relative}/{per_range.name})", ""]
    return lines


def inspection_section(experiment, results, relative):
    records = results.inspections.get(experiment["id"], [])
    lines = [f"## {experiment['id']}: {experiment['title']}", "",
             f"Questions: {experiment.get('questions', '')}.", ""]
    if not records:
        return lines + ["Not run yet.", ""]
    if experiment["id"] == "E4":
        lines += ["Each picture: 4 test images (rows); the input, then per block the attention "
                  "of the class token to each patch (for the GAP head: the attention each patch "
                  "receives, averaged over all tokens), averaged over heads, each map scaled to "
                  "its own maximum (dark blue 0, yellow the maximum). Seed 0.", "",
                  "Mean attention distance (patches; ViT's measure of how local attention is), "
                  "mean ± std over seeds:", ""]
        depth = len(records[0]["mean_attention_distance"])
        lines += ["| configuration | " + " | ".join(f"block {b + 1}" for b in range(depth)) +
                  " |", "|---|" + "---|" * depth]
        for name in experiment["configurations"]:
            rows = [r["mean_attention_distance"] for r in records if r["name"] == name]
            cells = []
            for b in range(depth):
                mean, std = mean_std([row[b] for row in rows])
                cells.append(f"{mean:.2f} ± {std:.2f}" if not math.isnan(std) else f"{mean:.2f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    else:
        lines += ["Each picture: one small map per grid cell, in grid order, showing the cosine "
                  "similarity of that cell's centred positional signal with every cell (dark blue "
                  "-1, yellow +1). The signal is the additive encoding's embedding; for PEG, what the "
                  "first PEG adds to the tokens, averaged over 256 test images. Seed 0.", "",
                  "| configuration | correlation of similarity with L2 distance (mean ± std) |",
                  "|---|---|"]
        for name in experiment["configurations"]:
            mean, std = mean_std([r["similarity_distance_correlation"] for r in records
                                  if r["name"] == name])
            lines.append(f"| {name} | {mean:.3f} ± {std:.3f} |")
    lines.append("")
    for record in records:
        if record.get("image"):
            lines += [f"{record['name']}:", "", f"![{record['name']}]({relative}/"
                      f"{Path(record['image']).name})", ""]
    return lines


def claims_section(results):
    lines = ["## Verdicts", "",
             "Each claim compares two configurations on one metric. Reproduced: the mean "
             "difference in the claimed direction exceeds twice its standard error (Welch) over "
             "the seeds; not reproduced: the same in the opposite direction; inconclusive: "
             "within that noise. For \"no gain\" claims, reproduced means the larger kernel is "
             "not significantly better; for \"costs nothing\" claims, that the means differ by "
             f"at most {100 * EQUAL_TOLERANCE:g} points. Metrics: " +
             "; ".join(f"{short}: {meaning}" for short, meaning in METRICS.values()) + ".", "",
             "| paper | claim | metric | A | B | A − B | verdict |", "|---|---|---|---|---|---|---|"]
    for paper, claim, metric, a, b, kind in CLAIMS:
        values_a, values_b = results.metric(a, metric), results.metric(b, metric)
        correlation = metric.endswith("correlation")
        scale = 1 if correlation else 100
        if values_a and values_b:
            difference = scale * (mean_std(values_a)[0] - mean_std(values_b)[0])
            shown = f"{difference:+.3f}" if correlation else f"{difference:+.2f}"
        else:
            shown = "–"
        lines.append(f"| {paper} | {claim} | {METRICS[metric][0]} | {a} | {b} | {shown} | "
                     f"{verdict(values_a, values_b, kind)} |")
    lines += ["", "Not tested by these grids:", ""]
    for question, topic, why in NOT_TESTED_HERE:
        lines.append(f"- {question} ({topic}): {why}.")
    return lines + [""]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="standard")
    parser.add_argument("--results", default=str(EXPERIMENTS / "results"))
    parser.add_argument("--figures", default=str(ROOT / "docs" / "results"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "results.md"))
    options = parser.parse_args()
    try:
        recipes = experiments_run.read_json(EXPERIMENTS / "recipes.json")
        if options.recipe not in recipes:
            raise experiments_run.ExperimentError(f"unknown recipe '{options.recipe}'")
        recipe = recipes[options.recipe]
        results = Results(options.results, options.recipe, recipe)
        figures = Path(options.figures) / options.recipe
        figures.mkdir(parents=True, exist_ok=True)
        out = Path(options.out)
        relative = os.path.relpath(figures, out.parent)
        all_runs = [r for rs in results.runs.values() for r in rs]
        commits = sorted({r["commit"] for r in all_runs})
        hours = sum(r["train_seconds"] for r in all_runs) / 3600
        lines = ["# Experiments: the papers' claims at CPU scale", "",
                 "Generated by `python3 experiments/aggregate.py` from the run records in "
                 f"`experiments/results/{options.recipe}/`; do not edit by hand. The runs: "
                 f"`python3 experiments/run.py all --jobs 2` (recipe `{options.recipe}`: "
                 f"{recipe['description']}). Each record holds its full `posenc train` command "
                 "and commit.", "",
                 f"Recorded: {len(all_runs)} runs, {hours:.1f} h of training, from commit(s) "
                 f"{', '.join(commits) or '–'}.", ""]
        lines += claims_section(results)
        reading = Path(options.results) / options.recipe / "reading.md"
        if reading.exists():  # hand-written notes on the figures, dated by their author
            lines += [reading.read_text().rstrip(), ""]
        for name, path in experiments_run.experiment_files().items():
            experiment = experiments_run.read_json(path)
            if "command" in experiment:
                lines += inspection_section(experiment, results, relative)
            elif "task" in experiment:
                lines += set_experiment_section(experiment, results, figures, relative)
            else:
                lines += experiment_section(experiment, results, figures, relative)
        out.write_text("\n".join(lines) + "\n")
        print(f"wrote {out}")
    except experiments_run.ExperimentError as error:
        print(f"aggregate.py: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
