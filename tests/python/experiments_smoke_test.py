"""The experiment pipeline end to end on the smoke recipe (a 2-block ViT, 256 images, 2 epochs;
256 token sets for the set tasks), so the code that produces docs/results.md cannot rot: run.py
trains, evaluates and records each configuration once, skips what is recorded, runs E4/E5 on the
checkpoints, evaluates token-set models at each coordinate range, and aggregate.py turns the
records into tables, plots and verdicts. Says nothing about the encodings themselves.

    python3 tests/python/experiments_smoke_test.py --posenc build/posenc
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))
import run as experiments_run  # noqa: E402

POSENC = None
IMAGE_CONFIGURATIONS = ["learned1d", "lff", "peg"]
SET_CONFIGURATIONS = ["layout-lff-g2", "nn-lff", "nn-rope-lff"]  # E7, E6, E9 (rotary)
CONFIGURATIONS = IMAGE_CONFIGURATIONS + SET_CONFIGURATIONS


def run_script(script, *arguments):
    return subprocess.run([sys.executable, str(ROOT / "experiments" / script), *arguments],
                          capture_output=True, text=True, cwd=ROOT)


class ExperimentPipeline(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.TemporaryDirectory()
        work = Path(cls.folder.name)
        cls.results, cls.figures = work / "results", work / "figures"
        cls.locations = ["--recipe", "smoke", "--posenc", POSENC, "--results", str(cls.results),
                         "--runs", str(work / "runs"), "--figures", str(cls.figures)]
        cls.first = run_script("run.py", "all", "--only", ",".join(CONFIGURATIONS),
                               *cls.locations)
        cls.second = run_script("run.py", "all", "--only", ",".join(CONFIGURATIONS),
                                *cls.locations)
        cls.report = work / "results.md"
        cls.aggregate = run_script("aggregate.py", "--recipe", "smoke", "--results",
                                   str(cls.results), "--figures", str(cls.figures), "--out",
                                   str(cls.report))

    @classmethod
    def tearDownClass(cls):
        cls.folder.cleanup()

    def records(self, name):
        path = self.results / "smoke" / name
        return [json.loads(line) for line in path.read_text().splitlines()]

    def test_each_configuration_is_trained_once_and_recorded_with_its_command(self):
        self.assertEqual(self.first.returncode, 0, self.first.stderr + self.first.stdout)
        runs = self.records("runs.jsonl")
        self.assertEqual(sorted(r["name"] for r in runs), sorted(CONFIGURATIONS))  # lff: E1 and E2
        recipe = experiments_run.read_json(ROOT / "experiments" / "recipes.json")["smoke"]
        for record in runs:
            if "task" in record:
                task_recipe = recipe["set_tasks"][record["task"]]
                self.assertEqual(record["recipe_args"], task_recipe["train_args"])
                self.assertEqual(len(record["epochs"]), 2)
                self.assertEqual([r["range"] for r in record["ranges"]],
                                 task_recipe["coordinate_ranges"])
                for result in record["ranges"]:
                    self.assertTrue(0.0 <= result["accuracy"] <= 1.0)
                    for key in ("correlation_initial", "correlation_trained"):
                        if record["name"].startswith("nn-rope"):  # no embedding: null
                            self.assertIsNone(result[key])
                        else:
                            self.assertTrue(-1.0 <= result[key] <= 1.0)
                continue
            self.assertEqual(record["recipe_args"], recipe["train_args"])
            self.assertIn(" ".join(record["args"]), record["command"])
            self.assertEqual(len(record["epochs"]), 2)
            self.assertEqual([r["size"] for r in record["resolutions"]],
                             recipe["test_resolutions"])
            for result in record["resolutions"]:
                self.assertTrue(0.0 <= result["accuracy"] <= 1.0)

    def test_a_second_invocation_skips_what_is_recorded(self):
        self.assertEqual(self.second.returncode, 0, self.second.stderr)
        self.assertNotIn(" train ", self.second.stdout)
        self.assertEqual(len(self.records("runs.jsonl")), len(CONFIGURATIONS))

    def test_inspections_record_figures_and_draw_pictures(self):
        attention = self.records("E4.jsonl")
        self.assertEqual(sorted(r["name"] for r in attention), ["learned1d", "lff", "peg"])
        for record in attention:
            self.assertEqual(len(record["mean_attention_distance"]), 2)  # one per block
        probes = self.records("E5.jsonl")
        self.assertEqual(sorted(r["name"] for r in probes), ["learned1d", "lff", "peg"])
        for record in probes:
            self.assertTrue(-1.0 <= record["similarity_distance_correlation"] <= 1.0)
            self.assertEqual(record["signal"], "conditional" if record["name"] == "peg"
                             else "additive")
            picture = self.figures / record["image"]
            self.assertEqual(picture.read_bytes()[:8], b"\x89PNG\r\n\x1a\n", picture)

    def test_the_report_has_tables_plots_and_a_verdict_per_claim(self):
        self.assertEqual(self.aggregate.returncode, 0, self.aggregate.stderr)
        text = self.report.read_text()
        for name in IMAGE_CONFIGURATIONS:
            self.assertRegex(text, rf"\| {name} \| `--pe {name}` \| 1 \|")
        for name in SET_CONFIGURATIONS:
            self.assertRegex(text, rf"\| {name} \| `--pe (rope_)?lff:gamma=0.05[^`]*` \| 1 \|")
        # a rotary-only model has no embedding to correlate: said, not a number
        self.assertRegex(text, r"\| nn-rope-lff \| [^\n]*\| n/a \(rotary\) \| n/a \(rotary\) \|")
        self.assertEqual(text.count("inconclusive (fewer than 2 seeds)") +
                         text.count("not run yet"), len(experiments_run_claims()))
        for plot in ("E1_accuracy_per_epoch.png", "E1_accuracy_per_resolution.png",
                     "E6_accuracy_per_range.png", "E7_accuracy_per_epoch.png",
                     "E9_accuracy_per_range.png"):
            self.assertTrue((self.figures / "smoke" / plot).exists(), plot)

    def test_changed_configurations_and_unknown_names_are_refused(self):
        results = experiments_run.ResultsFile(Path(self.folder.name) / "check.jsonl")
        results.append({"name": "peg", "seed": 0, "args": ["--pe", "peg"],
                        "recipe_args": ["--epochs", "2"]})
        self.assertIsNotNone(results.recorded("peg", 0, ["--pe", "peg"], ["--epochs", "2"]))
        with self.assertRaisesRegex(experiments_run.ExperimentError, "new name"):
            results.recorded("peg", 0, ["--pe", "peg:k=5"], ["--epochs", "2"])
        with self.assertRaisesRegex(experiments_run.ExperimentError, "new recipe"):
            results.recorded("peg", 0, ["--pe", "peg"], ["--epochs", "3"])
        unknown = run_script("run.py", "E99", *self.locations)
        self.assertEqual(unknown.returncode, 1)
        self.assertIn("unknown experiment 'E99'", unknown.stderr)
        typo = run_script("run.py", "E1", "--only", "pegg", *self.locations)
        self.assertEqual(typo.returncode, 1)
        self.assertIn("--only: pegg", typo.stderr)
        (Path(self.folder.name) / "bad").mkdir()
        (Path(self.folder.name) / "bad" / "smoke").mkdir()
        (Path(self.folder.name) / "bad" / "smoke" / "runs.jsonl").write_text("{not json\n")
        corrupt = run_script("run.py", "E1", "--recipe", "smoke", "--posenc", POSENC,
                             "--results", str(Path(self.folder.name) / "bad"))
        self.assertEqual(corrupt.returncode, 1)
        self.assertIn("runs.jsonl:1 is not a run record", corrupt.stderr)


def experiments_run_claims():
    import aggregate
    return aggregate.CLAIMS


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--posenc", required=True, help="the posenc executable")
    arguments, rest = parser.parse_known_args()
    POSENC = os.path.abspath(arguments.posenc)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
