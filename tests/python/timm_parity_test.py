"""Parity with timm itself: posenc's imports checked against golden outputs of timm's own models.

tests/fixtures/timm/ holds, per case, the state dict of a small model made by
`timm.create_model(...)` (timm 1.0.x; CPVT with timm's PosConv), input tensors at the trained
and at another resolution (non-square ones among them) and timm's logits for each; manifest.json
says how to import each case and what posenc must do. tests/python/make_timm_fixtures.py made
them in the reference environment (scripts/make-timm-fixtures.sh); this test needs no timm, only
the project's environment:

    .venv/bin/python tests/python/timm_parity_test.py --posenc build/posenc

Per case of the manifest:
  match      `posenc import` and `posenc forward` at every input give timm's logits to within
             the manifest's tolerance (1e-4, the largest absolute difference of any logit);
  refuse     `posenc import` exits with status 1 and a message naming what posenc lacks (every
             one of the case's message_fragments), without a crash or a traceback, and writes
             no checkpoint.
What a state dict cannot tell (timm's global_pool beside a class token, a non-square table's
grid) the case's import flags say, as a user would.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest

import torch

POSENC = None
FIXTURES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                         "fixtures", "timm"))
with open(os.path.join(FIXTURES, "manifest.json")) as manifest_file:
    MANIFEST = json.load(manifest_file)
TOLERANCE = MANIFEST["tolerance"]
assert TOLERANCE <= 1e-4, "the manifest's tolerance must stay at 1e-4 or below"
# What a crash rather than an error looks like on stderr
CRASH_SIGNS = ("Traceback (most recent call last)", "terminate called", "Aborted",
               "Segmentation fault", "core dumped", "Exception raised from")

DIFFERENCES = []  # (case, size, max abs difference), printed at the end


def fixture(relative):
    return os.path.join(FIXTURES, relative)


def posenc(*arguments, check=True):
    result = subprocess.run([POSENC, *arguments], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"posenc {' '.join(arguments)} failed ({result.returncode}):\n"
                             f"{result.stderr}")
    return result


class TimmParity(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.folder.cleanup()

    def scratch(self, name):
        return os.path.join(self.folder.name, name)

    def import_case(self, case, check=True):
        return posenc("import", "--from", case["family"], fixture(case["state_dict"]), "--out",
                      self.scratch("last.pt"), *case["posenc_import_flags"], check=check)

    def largest_differences(self, case):
        """(size, max abs difference from timm's logits) at every input of the case."""
        self.import_case(case)
        found = []
        for evaluation in case["evaluations"]:
            size = "x".join(map(str, evaluation["size"]))
            output = self.scratch(f"logits_{size}.pth")
            posenc("forward", "--checkpoint", self.scratch("last.pt"), "--input",
                   fixture(evaluation["input"]), "--output", output, "--threads", "1")
            logits = torch.load(output)
            expected = torch.load(fixture(evaluation["logits"]))
            self.assertEqual(tuple(logits.shape), tuple(expected.shape), f"{case['name']} {size}")
            found.append((size, (logits - expected).abs().max().item()))
        return found

    def check_match(self, case):
        for size, difference in self.largest_differences(case):
            DIFFERENCES.append((case["name"], size, difference))
            self.assertLessEqual(difference, TOLERANCE,
                                 f"{case['name']} at {size}: posenc's logits differ from timm's "
                                 f"by {difference:.3g}")

    def check_refusal(self, case):
        result = self.import_case(case, check=False)
        self.assertEqual(result.returncode, 1, f"{case['name']}: posenc import should refuse "
                         f"with an error, got status {result.returncode}:\n{result.stdout}"
                         f"{result.stderr}")
        for sign in CRASH_SIGNS:
            self.assertNotIn(sign, result.stderr, f"{case['name']}: a crash, not an error")
        self.assertIn("posenc: error:", result.stderr)
        for fragment in case["message_fragments"]:
            self.assertIn(fragment, result.stderr,
                          f"{case['name']}: the message should name {fragment!r}")
        self.assertFalse(os.path.exists(self.scratch("last.pt")))


class Manifest(unittest.TestCase):
    def test_made_by_timm_1_0(self):
        self.assertRegex(MANIFEST["timm_version"], r"^1\.0\.\d+$")
        self.assertTrue(MANIFEST["torch_version"].startswith("2."))

    def test_every_case_is_complete(self):
        names = [case["name"] for case in MANIFEST["cases"]]
        self.assertEqual(len(names), len(set(names)))
        for case in MANIFEST["cases"]:
            self.assertIn(case["expect"], ("match", "refuse"), case["name"])
            self.assertTrue(case["timm_model"] and "create_model_kwargs" in case, case["name"])
            self.assertTrue(os.path.isfile(fixture(case["state_dict"])), case["name"])
            self.assertTrue(case["evaluations"], case["name"])
            for evaluation in case["evaluations"]:
                self.assertTrue(os.path.isfile(fixture(evaluation["input"])))
                self.assertTrue(os.path.isfile(fixture(evaluation["logits"])))
            if case["expect"] == "refuse":
                self.assertTrue(case["message_fragments"], case["name"])
        expects = {case["expect"] for case in MANIFEST["cases"]}
        self.assertTrue({"match", "refuse"} <= expects)
        # the trained resolution and a non-square one, for a class-token model and CPVT
        for family in ("timm-vit", "timm-rope-vit", "timm-beit", "timm-relpos-vit", "cpvt"):
            sizes = [tuple(e["size"]) for case in MANIFEST["cases"] if case["family"] == family
                     and case["expect"] == "match" for e in case["evaluations"]]
            self.assertTrue(any(h != w for h, w in sizes), family)


def add_case_tests():
    """One test per case, named after it, so that each shows in the output on its own."""
    for case in MANIFEST["cases"]:
        kind = case["expect"]
        check = {"match": TimmParity.check_match, "refuse": TimmParity.check_refusal}[kind]

        def test(self, case=case, check=check):
            check(self, case)

        test.__doc__ = f"{case['name']} ({case['timm_model']}): {kind}"
        setattr(TimmParity, f"test_{kind}_{case['name']}", test)


add_case_tests()


def print_differences():
    if DIFFERENCES:
        print(f"\nlargest |posenc - timm| per input (tolerance {TOLERANCE:g}):", file=sys.stderr)
        for name, size, difference in DIFFERENCES:
            print(f"  {name:40s} {size:>6s}  {difference:.2e}", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--posenc", required=True, help="the posenc executable")
    arguments, rest = parser.parse_known_args()
    POSENC = os.path.abspath(arguments.posenc)
    program = unittest.main(argv=[sys.argv[0], *rest], verbosity=2, exit=False)
    print_differences()
    sys.exit(0 if program.result.wasSuccessful() else 1)
