"""Checkpoints written before the move to LibTorch 2.x still work: the image run and the point-set
run in tests/fixtures/checkpoints_libtorch_1_13/ (posenc bd29479 on Debian's LibTorch 1.13, with
optimiser state; make_fixtures.sh there made them) evaluate to the accuracy that posenc
reported for them, and `--resume` continues each for another epoch.

    .venv/bin/python tests/python/old_checkpoints_test.py --posenc build/posenc
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                        "checkpoints_libtorch_1_13")
# The products and sums run on another BLAS (MKL, not OpenBLAS) and in other orders, so logits
# differ in their last bits; an image whose two best logits are that close may change class.
# Two of 10,000 images (or of 3,200 point-set tokens, one) is the most that may move.
ACCURACY_TOLERANCE = 2e-4


def posenc(*arguments):
    result = subprocess.run([POSENC, *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"posenc {' '.join(arguments)} failed ({result.returncode}):\n"
                             f"{result.stderr}")
    return result.stdout


def accuracies(report):
    return [entry["accuracy"] for entry in json.loads(report)["results"]]


class CheckpointsFromLibTorch113(unittest.TestCase):
    def setUp(self):
        self.scratch = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.scratch)

    def check_run(self, name):
        fixture = os.path.join(FIXTURES, name)
        with open(os.path.join(fixture, "eval.json")) as recorded:
            expected = accuracies(recorded.read())
        run = os.path.join(self.scratch, name)
        shutil.copytree(fixture, run)
        measured = accuracies(posenc("eval", "--checkpoint", os.path.join(run, "last.pt"),
                                     "--json", "--threads", "2"))
        self.assertEqual(len(measured), len(expected))
        for now, then in zip(measured, expected):
            self.assertAlmostEqual(now, then, delta=ACCURACY_TOLERANCE)

        posenc("train", "--out", run, "--resume", "--epochs", "2", "--threads", "2")
        with open(os.path.join(run, "metrics.jsonl")) as metrics:
            epochs = [json.loads(line)["epoch"] for line in metrics if line.strip()]
        self.assertEqual(epochs, [1, 2])
        self.assertEqual(len(accuracies(posenc("eval", "--checkpoint",
                                               os.path.join(run, "last.pt"), "--json"))),
                         len(expected))

    def test_image_run_evaluates_to_its_recorded_accuracy_and_resumes(self):
        self.check_run("image")

    def test_point_set_run_evaluates_to_its_recorded_accuracy_and_resumes(self):
        self.check_run("set")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--posenc", required=True, help="the posenc executable")
    arguments, rest = parser.parse_known_args()
    POSENC = os.path.abspath(arguments.posenc)
    unittest.main(argv=[sys.argv[0], *rest])
