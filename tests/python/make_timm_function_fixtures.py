"""Writes tests/fixtures/timm_functions/: golden outputs of timm's own layer functions, for the
C++ tests to check posenc's versions against without timm.

Run it in the reference environment (.venv-timm: timm 1.0.31 on torch 2.14.1, no SciPy, so timm
takes its default linear interpolation; scripts/make-timm-fixtures.sh runs it):

    .venv-timm/bin/python tests/python/make_timm_function_fixtures.py [--out FOLDER]

resize_rel_pos_bias_table.pth: BEiT's geometric resampling of a relative position bias table
(timm.layers.resize_rel_pos_bias_table, as Beit.set_input_size and beit's checkpoint_filter_fn
call it). Per case NAME: NAME.table, a seeded ((2 H0 - 1)(2 W0 - 1) + 3, heads) table with BEiT's
three class-token rows last; NAME.windows, the int64 tensor [H0, W0, H, W]; NAME.resized, timm's
((2 H - 1)(2 W - 1) + 3, heads) result.
"""
import argparse
import os

import torch
import timm
from timm.layers import resize_rel_pos_bias_table

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "fixtures", "timm_functions"))

# name: (trained window H0 x W0, new window H x W, heads)
RESIZE_CASES = {
    "grow_square": ((4, 4), (6, 6), 3),
    "shrink_square": ((4, 4), (3, 3), 2),
    "widen": ((4, 4), (4, 6), 2),
    "transpose": ((3, 5), (5, 3), 2),
    "from_one_token": ((1, 1), (2, 2), 2),
    "large": ((14, 14), (24, 24), 1),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="fixture folder (default: %(default)s)")
    out = parser.parse_args().out
    os.makedirs(out, exist_ok=True)
    assert not int(os.environ.get("TIMM_USE_SCIPY_INTERP", 0)), "posenc follows timm's default"
    generator = torch.Generator().manual_seed(23)
    state = {}
    for name, (old, new, heads) in RESIZE_CASES.items():
        rows = (2 * old[0] - 1) * (2 * old[1] - 1) + 3
        table = torch.randn(rows, heads, generator=generator)
        new_rows = (2 * new[0] - 1) * (2 * new[1] - 1) + 3
        resized = resize_rel_pos_bias_table(
            table, new_window_size=new, new_bias_shape=(new_rows, heads), old_window_size=old)
        assert resized.shape == (new_rows, heads)
        state[f"{name}.table"] = table
        state[f"{name}.windows"] = torch.tensor([old[0], old[1], new[0], new[1]])
        state[f"{name}.resized"] = resized.contiguous()
    path = os.path.join(out, "resize_rel_pos_bias_table.pth")
    torch.save(state, path)
    print(f"wrote {path}: {len(RESIZE_CASES)} cases (timm {timm.__version__}, torch "
          f"{torch.__version__})")


if __name__ == "__main__":
    main()
