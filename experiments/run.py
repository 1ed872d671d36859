#!/usr/bin/env python3
"""Runs the experiments' grids: every configuration of each named experiment with each seed of
the recipe, skipping runs whose results are already recorded, so a grid can be spread over
several sessions. Each finished run appends one JSON line to RESULTS/RECIPE/runs.jsonl.

    python3 experiments/run.py E1 E3            # the standard recipe, all seeds
    python3 experiments/run.py E1 --jobs 2      # two runs at a time, one thread each
    python3 experiments/run.py all --stop-after 90m
    python3 experiments/run.py E1 --recipe smoke --results /tmp/r --runs /tmp/runs   # CI

A run interrupted (Ctrl-C, --stop-after, a crash) resumes from its last checkpoint the next time.
E4 and E5 (attention maps, encoding probes) read the seed-0 checkpoints of E1's configurations
and train those first if they are missing.
Experiments with a "task" (E6 nearest neighbour, E7 layout) train token-set models with the
recipe's "set_tasks" arguments for that task and evaluate them at its coordinate ranges.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = Path(__file__).resolve().parent


class ExperimentError(Exception):
    pass


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ExperimentError(f"{path} does not exist")
    except json.JSONDecodeError as error:
        raise ExperimentError(f"{path} is not valid JSON: {error}")


def experiment_files():
    return {path.name.split("_")[0]: path for path in sorted(EXPERIMENTS.glob("E*_*.json"))}


def load_experiment(name):
    files = experiment_files()
    if name not in files:
        raise ExperimentError(f"unknown experiment '{name}'; choose from {', '.join(files)} or all")
    experiment = read_json(files[name])
    for key in ("id", "title", "configurations"):
        if key not in experiment:
            raise ExperimentError(f"{files[name]} lacks '{key}'")
    return experiment


def parse_duration(text):
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except (ValueError, IndexError):
        raise ExperimentError(f"--stop-after: '{text}' is not a duration such as 90m, 2h or 600")


def source_commit():
    """The commit the runs come from, '-dirty' when the code differs from it (results excluded)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", ".",
                                ":!experiments/results", ":!docs/results.md", ":!docs/results"],
                               cwd=ROOT).returncode != 0
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class ResultsFile:
    """RESULTS/RECIPE/runs.jsonl: one line per finished run, keyed by (configuration, seed)."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.records = {}
        if path.exists():
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    key = (record["name"], record["seed"])
                except (json.JSONDecodeError, KeyError, TypeError) as error:
                    raise ExperimentError(f"{path}:{number} is not a run record ({error}); "
                                          "fix or delete that line")
                self.records[key] = record

    def recorded(self, name, seed, args, recipe_args):
        record = self.records.get((name, seed))
        if record is not None and record["recipe_args"] != recipe_args:
            raise ExperimentError(
                f"the recipe's arguments are now {recipe_args}, but the recorded runs in "
                f"{self.path} used {record['recipe_args']}; define a new recipe in "
                "experiments/recipes.json instead of changing one that has results")
        if record is not None and record["args"] != args:
            raise ExperimentError(
                f"configuration '{name}' now has the arguments {args}, but its recorded seed-{seed} "
                f"run used {record['args']}; give the changed configuration a new name, or delete "
                f"its lines from {self.path} to run it again")
        return record

    def append(self, record):
        with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")
            self.records[(record["name"], record["seed"])] = record


def read_metrics(run_dir):
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Runner:
    def __init__(self, options, recipe_name, recipe):
        self.options = options
        self.recipe_name = recipe_name
        self.recipe = recipe
        self.results = ResultsFile(Path(options.results) / recipe_name / "runs.jsonl")
        self.runs_root = Path(options.runs) / recipe_name
        self.posenc = str(Path(options.posenc).resolve())
        self.threads = max(1, (os.cpu_count() or 1) // options.jobs)
        self.deadline = time.monotonic() + parse_duration(options.stop_after) \
            if options.stop_after else None
        self.commit = source_commit()
        self.stopping = threading.Event()

    def task_recipe(self, experiment):
        """The recipe's part for the experiment's task: image experiments use the recipe itself,
        token-set experiments its "set_tasks" entry (train_args and coordinate_ranges)."""
        task = experiment.get("task")
        if task is None:
            return self.recipe
        recipe = self.recipe.get("set_tasks", {}).get(task)
        if recipe is None:
            raise ExperimentError(f"recipe '{self.recipe_name}' has no set_tasks entry for "
                                  f"task '{task}' ({experiment['id']})")
        return recipe

    def epochs(self, train_args):
        if "--epochs" not in train_args[:-1]:
            raise ExperimentError(f"recipe '{self.recipe_name}' must set --epochs in its "
                                  "train_args: the runner needs it to tell finished runs from "
                                  "interrupted ones")
        return int(train_args[train_args.index("--epochs") + 1])

    def run_dir(self, name, seed):
        return self.runs_root / name / f"seed{seed}"

    def execute(self, command, log_path):
        with open(log_path, "a") as log:
            log.write("$ " + shlex.join(command) + "\n")
            log.flush()
            completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        if completed.returncode != 0:
            tail = "".join(Path(log_path).read_text().splitlines(True)[-5:])
            raise ExperimentError(f"{shlex.join(command)} failed with exit code "
                                  f"{completed.returncode}; the end of {log_path}:\n{tail}")

    def train_command(self, train_args, configuration, seed, run_dir, resume):
        if resume:  # the run's settings are in its checkpoint
            return [self.posenc, "train", "--out", str(run_dir), "--threads", str(self.threads),
                    "--resume"]
        return [self.posenc, "train", *train_args, *configuration["args"], "--seed", str(seed),
                "--out", str(run_dir), "--threads", str(self.threads)]

    def ensure_trained(self, configuration, seed, train_args=None):
        """Trains (or finishes) the run; returns its folder, or None when told to stop."""
        train_args = self.recipe["train_args"] if train_args is None else train_args
        run_dir = self.run_dir(configuration["name"], seed)
        epochs = self.epochs(train_args)
        if len(read_metrics(run_dir)) >= epochs and (run_dir / "last.pt").exists():
            return run_dir
        if self.stopping.is_set() or (self.deadline and time.monotonic() > self.deadline):
            self.stopping.set()
            return None
        run_dir.mkdir(parents=True, exist_ok=True)
        resume = (run_dir / "last.pt").exists()
        print(f"[{self.recipe_name}] {'resume' if resume else 'train'} {configuration['name']} "
              f"seed {seed}", flush=True)
        command = self.train_command(train_args, configuration, seed, run_dir, resume)
        if self.deadline:
            left = max(1, int(self.deadline - time.monotonic()))
            command += ["--time-budget", f"{left}s"]
        self.execute(command, run_dir / "train.log")
        if len(read_metrics(run_dir)) < epochs:  # stopped by its time budget or a signal
            self.stopping.set()
            return None
        return run_dir

    def run_training(self, experiment, configuration, seed):
        name = configuration["name"]
        recipe = self.task_recipe(experiment)
        train_args = recipe["train_args"]
        if self.results.recorded(name, seed, configuration["args"], train_args):
            return
        run_dir = self.ensure_trained(configuration, seed, train_args)
        if run_dir is None:
            return
        eval_command = [self.posenc, "eval", "--checkpoint", str(run_dir / "last.pt"), "--json",
                        "--threads", str(self.threads)]
        if "task" in experiment:
            eval_command += ["--coordinate-ranges", ",".join(recipe["coordinate_ranges"])]
        else:
            sizes = [str(s) for s in recipe["test_resolutions"]]
            sizes += experiment.get("extra_test_resolutions", [])  # e.g. E10's "28x44"
            eval_command += ["--resolutions", ",".join(sizes)]
        log = run_dir / "eval.log"
        with open(log, "w") as f:
            completed = subprocess.run(eval_command, stdout=subprocess.PIPE, stderr=f, text=True,
                                       cwd=ROOT)
        if completed.returncode != 0:
            raise ExperimentError(f"{shlex.join(eval_command)} failed; see {log}")
        evaluation = json.loads(completed.stdout)
        metrics = read_metrics(run_dir)
        record = {
            "name": name,
            "seed": seed,
            "recipe": self.recipe_name,
            "args": configuration["args"],
            "recipe_args": train_args,
            "command": shlex.join(["build/posenc", "train", *train_args,
                                   *configuration["args"], "--seed", str(seed)]),
            "commit": self.commit,
            "finished": datetime.datetime.now().isoformat(timespec="seconds"),
            "epochs": [{key: m[key] for key in ("epoch", "train_loss", "test_accuracy",
                                                  "epoch_seconds")} for m in metrics],
            "train_seconds": sum(m["epoch_seconds"] for m in metrics),
        }
        if "task" in experiment:
            record["task"] = experiment["task"]
            # a model whose only encoding is rotary has no embedding to correlate: null
            record["ranges"] = [
                {"range": r["positions"], "accuracy": r["accuracy"], "loss": r["loss"],
                 "correlation_initial": (r["similarity_distance_correlation"] or {}).get("initial"),
                 "correlation_trained": (r["similarity_distance_correlation"] or {}).get("trained")}
                for r in evaluation["results"]]
            final = [r for r in record["ranges"] if r["range"] == recipe["coordinate_ranges"][0]]
        else:
            # "size" is the height; "width" only where it differs (a non-square test size)
            record["resolutions"] = [
                {"size": r["height"], "grid": r["grid"], "accuracy": r["accuracy"],
                 "loss": r["loss"], **({"width": r["width"]} if r["width"] != r["height"] else {})}
                for r in evaluation["results"]]
            final = [r for r in record["resolutions"]
                     if r["size"] == recipe["trained_resolution"] and "width" not in r]
        self.results.append(record)
        accuracy = f"{100 * final[0]['accuracy']:.2f}%" if final else "?"
        print(f"[{self.recipe_name}] done {name} seed {seed}: {accuracy} in the training range",
              flush=True)

    def run_inspection(self, experiment):
        """E4/E5: a posenc command on each configuration's checkpoints, one per seed. Its JSON
        output goes to RESULTS/RECIPE/<id>.jsonl (rewritten: the commands take seconds), its
        picture for seed 0 to FIGURES/RECIPE/<id>_<configuration>.png."""
        source = load_experiment(experiment["checkpoints_from"])
        by_name = {c["name"]: c for c in source["configurations"]}
        figures = Path(self.options.figures) / self.recipe_name
        figures.mkdir(parents=True, exist_ok=True)
        records = []
        for name in experiment["configurations"]:
            if name not in by_name:
                raise ExperimentError(f"{experiment['id']} names '{name}', which "
                                      f"{experiment['checkpoints_from']} does not define")
            for seed in self.recipe["seeds"]:
                run_dir = self.ensure_trained(by_name[name], seed)
                if run_dir is None:
                    return
                picture = (figures / f"{experiment['id']}_{name}.png" if seed == 0
                           else run_dir / f"{experiment['id']}.png")
                command = [self.posenc, experiment["command"], "--checkpoint",
                           str(run_dir / "last.pt"), *experiment["args"], "--json",
                           "--out", str(picture), "--force",  # the runner redraws its figures
                           "--threads", str(os.cpu_count() or 1)]
                completed = subprocess.run(command, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True, cwd=ROOT)
                if completed.returncode != 0:
                    raise ExperimentError(f"{shlex.join(command)} failed: "
                                          f"{completed.stderr.strip()}")
                record = json.loads(completed.stdout)
                record.update({"name": name, "seed": seed, "commit": self.commit,
                               "image": str(picture.relative_to(picture.parents[1]))
                               if seed == 0 else None})
                del record["checkpoint"]
                records.append(record)
        path = self.results.path.parent / f"{experiment['id']}.jsonl"
        path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        print(f"[{self.recipe_name}] {experiment['id']}: {len(records)} records in {path}",
              flush=True)

    def run(self, experiments):
        trainings = []
        for experiment in experiments:
            if "command" in experiment:
                continue
            for configuration in experiment["configurations"]:
                for seed in self.recipe["seeds"]:
                    if (configuration["name"], seed) not in [(c["name"], s)
                                                             for _, c, s in trainings]:
                        trainings.append((experiment, configuration, seed))
        with concurrent.futures.ThreadPoolExecutor(self.options.jobs) as pool:
            futures = [pool.submit(self.run_training, e, c, s) for e, c, s in trainings]
            for future in concurrent.futures.as_completed(futures):
                future.result()
        for experiment in experiments:
            if "command" in experiment and not self.stopping.is_set():
                self.run_inspection(experiment)
        if self.stopping.is_set():
            print("stopped before the grid was complete; run the same command again to continue",
                  flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="+", help="E1 ... E5, or all")
    parser.add_argument("--recipe", default="standard", help="a recipe in experiments/recipes.json")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time; the cores are split between them (default 1)")
    parser.add_argument("--stop-after", help="start nothing new after this long, e.g. 90m; "
                        "the run in progress checkpoints and stops at the limit")
    parser.add_argument("--only", help="run only these configurations (comma-separated names)")
    parser.add_argument("--posenc", default="build/posenc", help="the posenc executable")
    parser.add_argument("--results", default=str(EXPERIMENTS / "results"),
                        help="where run records go (default experiments/results)")
    parser.add_argument("--figures", default=str(ROOT / "docs" / "results"),
                        help="where E4/E5 images go (default docs/results)")
    parser.add_argument("--runs", default=str(ROOT / "runs" / "experiments"),
                        help="where checkpoints go (default runs/experiments)")
    options = parser.parse_args()
    try:
        if options.jobs < 1:
            raise ExperimentError("--jobs must be at least 1")
        recipes = read_json(EXPERIMENTS / "recipes.json")
        if options.recipe not in recipes:
            raise ExperimentError(f"unknown recipe '{options.recipe}'; choose from "
                                  f"{', '.join(recipes)}")
        if not Path(options.posenc).exists():
            raise ExperimentError(f"{options.posenc} does not exist; build posenc first "
                                  "(scripts/build.sh) or pass --posenc")
        names = list(experiment_files()) if options.experiments == ["all"] else options.experiments
        experiments = [load_experiment(name) for name in names]
        if options.only:
            wanted = options.only.split(",")
            known = {c if isinstance(c, str) else c["name"]
                     for e in experiments for c in e["configurations"]}
            unknown = [name for name in wanted if name not in known]
            if unknown:
                raise ExperimentError(f"--only: {', '.join(unknown)} not in "
                                      f"{', '.join(names)}; they define {', '.join(sorted(known))}")
            for experiment in experiments:
                experiment["configurations"] = [
                    c for c in experiment["configurations"]
                    if (c if isinstance(c, str) else c["name"]) in wanted]
        Runner(options, options.recipe, recipes[options.recipe]).run(experiments)
    except ExperimentError as error:
        print(f"run.py: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the runs in progress wrote checkpoints: run the same command again "
              "to continue", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
