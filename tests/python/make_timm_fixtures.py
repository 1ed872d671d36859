"""Writes tests/fixtures/timm/: golden outputs of timm's own Vision Transformers, for
tests/python/timm_parity_test.py to check posenc's imports against without timm.

Run it in the reference environment (.venv-timm: timm 1.0.31 on torch 2.14.1 + torchvision 0.29.1;
scripts/make-timm-fixtures.sh makes it and runs this):

    .venv-timm/bin/python tests/python/make_timm_fixtures.py [--out tests/fixtures/timm]

Every model is built by `timm.create_model(name, pretrained=False, ...)` with small overrides and
`dynamic_img_size=True`, so that timm itself resamples its position table when an input has
another grid. CPVT is timm's VisionTransformer without an absolute table (pos_embed='none') plus
timm's own PEG, `timm.models.twins.PosConv`, after the blocks named in the case. Per case the
folder holds the state dict (torch.save of state_dict()) and timm's logits for each input;
inputs are shared by shape under inputs/. manifest.json says, per case, the timm model and its
create_model kwargs, how to import it into posenc (family and flags) and what posenc must do:
"match" (logits within the tolerance at every input) or "refuse" (a non-zero exit whose message
contains every one of message_fragments). What a state dict cannot tell (timm's global_pool
beside a class token, the grid of a non-square table with a square row count) the case's import
flags say, as a user would have to.

timm's own initialisation leaves every bias at 0, every LayerNorm at (1, 0) and the class token
near 0, which would let a swapped or dropped tensor go unseen; the weights are therefore redrawn
from fixed seeds (randomise below) with magnitudes that keep the logits of order 1.
"""
import argparse
import copy
import json
import math
import os
import re
import sys

import torch
import torch.nn as nn

import timm
import timm.models.eva as timm_eva
import timm.models.vision_transformer as timm_vit
import torchvision
from timm.models.twins import PosConv
from timm.models.vision_transformer import checkpoint_filter_fn

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "fixtures", "timm"))
TOLERANCE = 1e-4  # max abs difference of posenc's logits from timm's; the test reads it from here
BATCH = 2


class CPVT(nn.Module):
    """A timm VisionTransformer without an absolute table, with timm's PosConv (CPVT's PEG) after
    the given blocks. PosConv runs on the grid tokens; prefix tokens (the class token) pass it
    unchanged, as in CPVT. The PEGs are registered on the timm model itself as pos_block.N, so
    its state_dict() carries CPVT's names (pos_block.N.proj.0.weight) beside timm's."""

    def __init__(self, vit, peg_after):
        super().__init__()
        assert vit.pos_embed is None and vit.dynamic_img_size
        self.vit = vit
        self.peg_after = list(peg_after)
        vit.pos_block = nn.ModuleList(
            [PosConv(vit.embed_dim, vit.embed_dim) for _ in self.peg_after])

    def state_dict_for_export(self):
        return self.vit.state_dict()

    def forward(self, images):
        vit = self.vit
        x = vit.patch_embed(images)  # (B, H, W, C): dynamic_img_size keeps the grid
        size = (x.shape[1], x.shape[2])
        x = vit._pos_embed(x)  # class token prepended, no table (pos_embed='none')
        x = vit.norm_pre(vit.patch_drop(x))
        prefix = vit.num_prefix_tokens
        for index, block in enumerate(vit.blocks):
            x = block(x)
            if index in self.peg_after:
                peg = vit.pos_block[self.peg_after.index(index)]
                x = torch.cat([x[:, :prefix], peg(x[:, prefix:], size)], dim=1)
        return vit.forward_head(vit.norm(x))


class Plain(nn.Module):
    """A timm model as it is."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def state_dict_for_export(self):
        return self.model.state_dict()

    def forward(self, images):
        return self.model(images)


class Resizable(nn.Module):
    """A timm model with a fixed input size (Beit, VisionTransformerRelPos: no dynamic_img_size)
    run at another size as timm itself does it: a copy of the model is given that size with
    model.set_input_size(img_size=...), which resamples the relative position bias tables (timm's
    resize_rel_pos_bias_table, BEiT's geometric resampling), rebuilds RelPosMlp's offsets and
    resamples an absolute table (resample_abs_pos_embed)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def state_dict_for_export(self):
        return self.model.state_dict()

    def forward(self, images):
        size = tuple(images.shape[-2:])
        if size == tuple(self.model.patch_embed.img_size):
            return self.model(images)
        resized = copy.deepcopy(self.model)
        resized.set_input_size(img_size=size)
        return resized(images)


def randomise(module, seed):
    """Every floating tensor of the state dict (timm's names) redrawn from a seeded generator:
    norm weights
    1 + N(0, 0.2^2), biases (and BEiT's q_bias, v_bias) N(0, 0.1^2), layer-scale gammas 0.5 + N(0, 0.1^2), the class, register
    and distillation tokens, the position table and RoPE-Mixed's frequencies N(0, 0.5^2), every
    other weight N(0, 1/fan_in) (relative position bias tables: N(0, 1/heads))."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict_for_export().items():  # views of the parameters
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            leaf = name.rsplit(".", 1)[-1]
            owner = name.rsplit(".", 2)[-2] if "." in name else ""
            if leaf == "weight" and "norm" in owner:
                value = 1.0 + 0.2 * noise
            elif leaf == "bias" or leaf in ("q_bias", "v_bias"):  # beit.py's q_bias, v_bias
                value = 0.1 * noise
            elif leaf in ("gamma", "gamma_1", "gamma_2"):  # VisionTransformer's, eva.py's
                value = 0.5 + 0.1 * noise
            elif leaf == "freqs":  # eva.py's RoPE-Mixed frequencies (2, depth, heads, pairs)
                value = 0.5 * noise
            elif name in ("cls_token", "reg_token", "dist_token", "pos_embed"):
                value = 0.5 * noise
            else:
                fan_in = max(1, math.prod(tensor.shape[1:]))
                value = noise / math.sqrt(fan_in)
            tensor.copy_(value)
    return module.eval()


# --- the cases -------------------------------------------------------------------------------
# Shared small overrides: 32x32 images, patch 8 (a 4x4 grid), 10 classes.
SMALL = dict(img_size=32, patch_size=8, num_classes=10, dynamic_img_size=True)
# Variants posenc refuses only need to reach its checks: one block, narrower, grey images.
TINY = dict(SMALL, embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.0, in_chans=1)
# eva.py's RoPE ViTs: 3 heads of 16 channels (RoPE needs head_dim divisible by 4)
ROPE_VIT = dict(SMALL, embed_dim=48, depth=2, num_heads=3, mlp_ratio=2.0, in_chans=3)
# beit.py and vision_transformer_relpos.py have no dynamic_img_size: other sizes go through
# set_input_size (Resizable)
FIXED_SIZE = {k: v for k, v in ROPE_VIT.items() if k != "dynamic_img_size"}

CASES = [
    # -- imported and matched ---------------------------------------------------------------
    dict(name="vit_tiny", model="vit_tiny_patch16_224",
         kwargs=dict(SMALL, embed_dim=48, depth=2, num_heads=3, mlp_ratio=2.0, in_chans=3),
         family="timm-vit", flags=["--heads", "3"], expect="match",
         sizes=[(32, 32), (32, 48)],
         about="ViT with class token and learned pos_embed (1, 1 + 4*4, 48); at 32x48 timm "
               "resamples the 4x4 table to 4x6 (resample_abs_pos_embed, bicubic)"),
    dict(name="deit_tiny", model="deit_tiny_patch16_224",
         kwargs=dict(SMALL, embed_dim=48, depth=2, num_heads=2, mlp_ratio=2.0, in_chans=1),
         family="timm-vit", flags=["--heads", "2"], expect="match",
         sizes=[(32, 32), (24, 40)],
         about="DeiT (no distillation token), grey images; at 24x40 the table is resampled to "
               "3x5: antialiased shrinking in height, growing in width"),
    dict(name="vit_base_gap", model="vit_base_patch16_gap_224",
         kwargs=dict(SMALL, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, in_chans=1),
         family="timm-vit", flags=["--heads", "2"], expect="match",
         sizes=[(32, 32), (48, 32)],
         about="timm's GAP ViT: class_token=False, global_pool='avg', fc_norm=False (norm "
               "before the mean, as posenc's gap head); table (1, 16, 32) without prefix rows"),
    dict(name="vit_tiny_at_40", model="vit_tiny_patch16_224", state_of="vit_tiny",
         kwargs=dict(SMALL, embed_dim=48, depth=2, num_heads=3, mlp_ratio=2.0, in_chans=3,
                     img_size=40),
         family="timm-vit", flags=["--heads", "3", "--image-size", "40"], expect="match",
         sizes=[(40, 40), (32, 48)],
         about="vit_tiny's state dict (a 4x4 table) loaded into timm's model for 40x40 through "
               "timm's checkpoint_filter_fn, which resamples the table to 5x5 with "
               "resample_abs_pos_embed; posenc resamples it on import (--image-size 40); at "
               "32x48 both resample 5x5 to 4x6"),
    dict(name="deit_tiny_at_24", model="deit_tiny_patch16_224", state_of="deit_tiny",
         kwargs=dict(SMALL, embed_dim=48, depth=2, num_heads=2, mlp_ratio=2.0, in_chans=1,
                     img_size=24),
         family="timm-vit", flags=["--heads", "2", "--image-size", "24"], expect="match",
         sizes=[(24, 24), (40, 24)],
         about="deit_tiny's 4x4 table shrunk to 3x3 (antialiased) by checkpoint_filter_fn and by "
               "posenc's import; at 40x24 both resample 3x3 to 5x3"),
    dict(name="cpvt", model="vit_tiny_patch16_224",
         kwargs=dict(SMALL, embed_dim=48, depth=2, num_heads=3, mlp_ratio=2.0, in_chans=1,
                     pos_embed="none"),
         peg_after=[0], family="cpvt", flags=["--heads", "3", "--image-size", "32"],
         expect="match", sizes=[(32, 32), (32, 48)],
         about="CPVT: class token, no absolute table, timm's PosConv (3x3 depthwise, residual) "
               "after block 0 on the grid tokens"),
    dict(name="cpvt_gap", model="vit_base_patch16_gap_224",
         kwargs=dict(SMALL, embed_dim=32, depth=3, num_heads=2, mlp_ratio=2.0, in_chans=1,
                     pos_embed="none"),
         peg_after=[0, 2], family="cpvt",
         flags=["--heads", "2", "--image-size", "32", "--pe-after", "0,2"],
         expect="match", sizes=[(32, 32), (40, 24)],
         about="CPVT-GAP: no class token, global average pooling after the final norm, PosConv "
               "after blocks 0 and 2"),
    # (fc_norm and qkv_bias=False were refused until the BEiT and relpos ViT imports)
    dict(name="vit_fc_norm", model="vit_tiny_patch16_224",
         kwargs=dict(TINY, class_token=False, global_pool="avg"),
         family="timm-vit", flags=["--heads", "2"], expect="match",
         sizes=[(32, 32), (32, 48)],
         about="global_pool='avg' with timm's default fc_norm: LayerNorm after the mean, no "
               "final norm before it"),
    # -- refused, with a message naming what posenc lacks -----------------------------------
    dict(name="vit_reg4", model="vit_tiny_patch16_224",
         kwargs=dict(TINY, reg_tokens=4),
         family="timm-vit", flags=["--heads", "2"],
         lacks="register tokens (reg_token)",
         expect="refuse",
         fragments=["reg_token"], sizes=[(32, 32)],
         about="4 register tokens after the class token; the table has 1 + 4 prefix rows"),
    dict(name="vit_reg4_gap", model="vit_betwixt_patch16_reg4_gap_256",
         kwargs=dict(TINY),
         family="timm-vit", flags=["--heads", "2"],
         lacks="register tokens (and no_embed_class)",
         expect="refuse",
         fragments=["reg_token"], sizes=[(32, 32)],
         about="timm's register GAP model: class_token=False, no_embed_class=True, "
               "reg_tokens=4, global_pool='avg' (fc_norm), layer scale"),
    dict(name="vit_no_embed_class", model="vit_tiny_patch16_224",
         kwargs=dict(TINY, no_embed_class=True),
         family="timm-vit", flags=["--heads", "2"],
         lacks="no_embed_class tables (no row for the class token)",
         expect="refuse",
         fragments=["no_embed_class"], sizes=[(32, 32)],
         about="the table has no row for the class token (added before the class token is "
               "prepended)"),
    dict(name="deit3_small", model="deit3_small_patch16_224",
         kwargs=dict(TINY),
         family="timm-vit", flags=["--heads", "2"],
         lacks="no_embed_class tables, layer scale",
         expect="refuse",
         fragments=["no_embed_class"], sizes=[(32, 32)],
         about="DeiT III: no_embed_class=True and layer scale (init_values)"),
    dict(name="vit_layer_scale", model="vit_tiny_patch16_224",
         kwargs=dict(TINY, init_values=1e-5),
         family="timm-vit", flags=["--heads", "2"], expect="match",
         sizes=[(32, 32), (32, 48)],
         about="layer scale (init_values): per-channel gammas on both residual branches "
               "(blocks.N.ls1.gamma, ls2.gamma)"),
    dict(name="vit_no_qkv_bias", model="vit_tiny_patch16_224",
         kwargs=dict(TINY, qkv_bias=False),
         family="timm-vit", flags=["--heads", "2"], expect="match",
         sizes=[(32, 32), (48, 32)],
         about="qkv_bias=False: the attention's input projection has no bias"),
    dict(name="vit_qk_norm", model="vit_tiny_patch16_224",
         kwargs=dict(TINY, qk_norm=True),
         family="timm-vit", flags=["--heads", "2"],
         lacks="qk_norm (LayerNorm on queries and keys)",
         expect="refuse",
         fragments=["blocks.0.attn.q_norm.weight", "blocks.0.attn.k_norm.weight"],
         sizes=[(32, 32)],
         about="qk_norm=True: LayerNorm on queries and keys per head"),
    dict(name="deit_distilled", model="deit_tiny_distilled_patch16_224",
         kwargs=dict(TINY),
         family="timm-vit", flags=["--heads", "2"],
         lacks="the distillation token and head (dist_token, head_dist)",
         expect="refuse",
         fragments=["dist_token"], sizes=[(32, 32)],
         about="distilled DeiT: a second prefix token and a second head (head_dist), logits "
               "averaged in eval"),
    dict(name="vit_non_square_table", model="vit_tiny_patch16_224",
         kwargs=dict(TINY, img_size=(32, 48)),
         family="timm-vit", flags=["--heads", "2"],
         lacks="the table's grid, which a non-square table needs (--table-grid)",
         expect="refuse",
         fragments=["not a square grid", "--table-grid HxW"], sizes=[(32, 48)],
         about="trained at 32x48: a 4x6 table (24 grid rows, no square), imported without "
               "--table-grid"),
    # -- what the state dict cannot tell, told by the import flags ---------------------------
    dict(name="vit_non_square_table_grid", model="vit_tiny_patch16_224",
         kwargs=dict(TINY, img_size=(32, 48)),
         family="timm-vit", flags=["--heads", "2", "--table-grid", "4x6"], expect="match",
         sizes=[(32, 48), (48, 32)],
         about="trained at 32x48: a 4x6 table, its grid given by --table-grid; at 48x32 both "
               "resample 4x6 to 6x4"),
    dict(name="vit_token_and_avg_pool", model="vit_tiny_patch16_224",
         kwargs=dict(TINY, global_pool="avg", fc_norm=False),
         family="timm-vit", flags=["--heads", "2", "--global-pool", "avg"], expect="match",
         sizes=[(32, 32), (32, 48)],
         about="class token kept but pooled by the mean of the patch tokens (global_pool="
               "'avg', fc_norm=False): the same tensors as a class-token model, so only "
               "--global-pool avg tells posenc (its gap_with_token head)"),
    dict(name="vit_non_square_table_square_count", model="vit_tiny_patch16_224",
         kwargs=dict(TINY, img_size=(16, 64)),
         family="timm-vit", flags=["--heads", "2", "--table-grid", "2x8"], expect="match",
         sizes=[(16, 64), (32, 32)],
         about="trained at 16x64: a 2x8 table whose 16 grid rows would also make a 4x4 grid, "
               "so only --table-grid 2x8 tells posenc; at 32x32 both resample 2x8 to 4x4"),
    # -- timm's eva.py RoPE ViTs (naver's RoPE-ViT): layer scale 1e-5, class token -----------
    dict(name="vit_rope_axial", model="vit_small_patch16_rope_224",
         kwargs=ROPE_VIT,
         family="timm-rope-vit", flags=["--heads", "3", "--image-size", "32"], expect="match",
         sizes=[(32, 32), (32, 48)],
         about="RoPE-Axial (temperature 100, xy, interleaved pairs), no table: timm turns q and k "
               "of the grid tokens by its RotaryEmbeddingCat of each input's own grid"),
    dict(name="vit_rope_mixed", model="vit_small_patch16_rope_mixed_224",
         kwargs=ROPE_VIT,
         family="timm-rope-vit", flags=["--heads", "3", "--image-size", "32"], expect="match",
         sizes=[(32, 32), (48, 32)],
         about="RoPE-Mixed: rope.freqs (2, depth, heads, head_dim / 2), learnt frequencies per "
               "block and head, no table"),
    dict(name="vit_rope_axial_ape", model="vit_small_patch16_rope_ape_224",
         kwargs=ROPE_VIT,
         family="timm-rope-vit", flags=["--heads", "3"], expect="match",
         sizes=[(32, 32), (32, 48)],
         about="RoPE-Axial + APE: a learned table without the class token's row "
               "(no_embed_class=True), resampled by timm to 4x6 at 32x48"),
    dict(name="vit_rope_mixed_ape", model="vit_small_patch16_rope_mixed_ape_224",
         kwargs=ROPE_VIT,
         family="timm-rope-vit", flags=["--heads", "3"], expect="match",
         sizes=[(32, 32), (24, 40)],
         about="RoPE-Mixed + APE (no_embed_class=True); at 24x40 the table is resampled to 3x5"),
    # -- timm's beit.py (BEiT): relative position bias with class-token entries ---------------
    dict(name="beit", model="beit_base_patch16_224", kwargs=FIXED_SIZE, resizable=True,
         family="timm-beit", flags=["--heads", "3", "--image-size", "32"], expect="match",
         sizes=[(32, 32), (48, 48), (32, 48)],
         about="BEiT: a relative position bias table per block (4x4 window, 49 offsets + 3 "
               "class-token rows), q_bias and v_bias, layer scale gamma_1/gamma_2, global_pool="
               "'avg' with fc_norm; at 48x48 and 32x48 timm's set_input_size resamples the "
               "tables geometrically (resize_rel_pos_bias_table), posenc its relpos_bias:"
               "resize=geometric"),
    dict(name="beit_shared_ape", model="beit_base_patch16_224",
         kwargs=dict(FIXED_SIZE, use_abs_pos_emb=True, use_rel_pos_bias=False,
                     use_shared_rel_pos_bias=True, global_pool="token"),
         resizable=True, family="timm-beit", flags=["--heads", "3", "--image-size", "32"],
         expect="match", sizes=[(32, 32), (40, 24)],
         about="BEiT with one shared relative position bias (rel_pos_bias.*), an absolute table "
               "with the class row, class-token head; at 40x24 both resample the table (5x3 "
               "window) and the bias"),
    # -- timm's vision_transformer_relpos.py ---------------------------------------------------
    dict(name="vit_relpos", model="vit_relpos_small_patch16_224", kwargs=FIXED_SIZE,
         resizable=True, family="timm-relpos-vit", flags=["--heads", "3", "--image-size", "32"],
         expect="match", sizes=[(32, 32), (32, 48)],
         about="RelPosMlp per block in timm's 'cr' mode (ln offsets, both layers biased), no "
               "class token, fc_norm, qkv_bias=False, layer scale ls1/ls2; at 32x48 the MLP "
               "sees the 4x6 window's offsets"),
    dict(name="vit_srelpos", model="vit_srelpos_small_patch16_224", kwargs=FIXED_SIZE,
         resizable=True, family="timm-relpos-vit", flags=["--heads", "3", "--image-size", "32"],
         expect="match", sizes=[(32, 32), (48, 32)],
         about="one RelPosMlp shared by every block (shared_rel_pos.mlp.*), final norm before "
               "the average (fc_norm=False)"),
    dict(name="vit_relpos_swin", model="vit_relpos_small_patch16_224",
         kwargs=dict(FIXED_SIZE, rel_pos_type="mlp_swin"), resizable=True,
         family="timm-relpos-vit", flags=["--heads", "3", "--image-size", "32"],
         expect="match", sizes=[(32, 32), (40, 40)],
         about="RelPosMlp in its 'swin' mode: Swin-V2's log2 offsets normalised by the current "
               "window and 16 sigmoid, no fc2 bias (posenc's relpos_mlp normalize=grid)"),
    dict(name="vit_relpos_bias_cls", model="vit_relpos_base_patch16_cls_224",
         kwargs=dict(FIXED_SIZE, rel_pos_type="bias"), resizable=True,
         family="timm-relpos-vit", flags=["--heads", "3", "--image-size", "32"],
         expect="match", sizes=[(32, 32), (48, 48), (24, 40)],
         about="RelPosBias tables per block with a class token (BEiT's three class-token rows), "
               "class-token head; at other sizes timm's set_input_size resamples the tables "
               "geometrically"),
]


RESAMPLED = []  # each call of timm's resample_abs_pos_embed that changed the table


def watch_resampling():
    """Records when timm's VisionTransformer or Eva (their _pos_embed with dynamic_img_size, and
    checkpoint_filter_fn) resamples a table with timm.layers.resample_abs_pos_embed, so that the
    manifest can say which inputs made timm resample; the values are timm's own."""
    for module in (timm_vit, timm_eva):
        resample = module.resample_abs_pos_embed

        def recording(posemb, new_size, old_size=None, num_prefix_tokens=1, resample=resample,
                      **options):
            result = resample(posemb, new_size, old_size, num_prefix_tokens, **options)
            if result is not posemb:
                old = "x".join(map(str, old_size)) if old_size is not None else "square"
                new = "x".join(map(str, new_size))
                RESAMPLED.append(f"{old} -> {new} grid, {num_prefix_tokens} prefix rows kept")
            return result

        module.resample_abs_pos_embed = recording


def build(case):
    model = timm.create_model(case["model"], pretrained=False, **case["kwargs"])
    if "peg_after" in case:
        return CPVT(model, case["peg_after"])
    if case.get("resizable"):
        return Resizable(model)
    return Plain(model)


def input_name(channels, size):
    return f"inputs/images_{channels}x{size[0]}x{size[1]}.pth"


WRITTEN = set()


def save(tensor_or_dict, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(tensor_or_dict, path)
    WRITTEN.add(os.path.abspath(path))


def remove_stale_files(out):
    """Fixture files of an earlier run that this one did not write (a renamed or dropped case)."""
    for root, folders, files in os.walk(out, topdown=False):
        for name in files:
            path = os.path.abspath(os.path.join(root, name))
            if name.endswith(".pth") and path not in WRITTEN:
                print(f"removing stale {os.path.relpath(path, out)}")
                os.remove(path)
        if root != out and not os.listdir(root):
            os.rmdir(root)


def compact_json(value):
    """JSON with one item a line, but lists of numbers or strings on one line."""
    text = json.dumps(value, indent=1)
    text = re.sub(r"\[\s*([^\[\]{}]*?)\s*\]",
                  lambda match: "[" + re.sub(r",\s+", ", ", match.group(1)) + "]", text)
    assert json.loads(text) == json.loads(json.dumps(value))
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="fixture folder (default: %(default)s)")
    arguments = parser.parse_args()
    out = arguments.out
    os.makedirs(out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    watch_resampling()

    states = {}  # case name -> its state dict, for cases that load another's
    manifest_cases = []
    inputs = {}
    for seed, case in enumerate(CASES):
        torch.manual_seed(1000 + seed)
        module = build(case)
        if "state_of" in case:
            source = states[case["state_of"]]
            target = module.state_dict_for_export()
            # timm's own way of loading a checkpoint into a model for another image size
            del RESAMPLED[:]
            filtered = checkpoint_filter_fn(dict(source), module.model)
            assert RESAMPLED, "checkpoint_filter_fn was to resample the table"
            load_resampled = list(RESAMPLED)
            module.model.load_state_dict(filtered, strict=True)
            module.eval()
            state_file = f"{case['state_of']}/state.pth"
            assert set(filtered) == set(target)
        else:
            randomise(module, seed)
            state = {k: v.detach().clone().contiguous()
                     for k, v in module.state_dict_for_export().items()}
            states[case["name"]] = state
            state_file = f"{case['name']}/state.pth"
            save(state, os.path.join(out, state_file))

        channels = case["kwargs"].get("in_chans", 3)
        evaluations = []
        for size in case["sizes"]:
            name = input_name(channels, size)
            if name not in inputs:
                seed_of_input = channels * 10000 + size[0] * 100 + size[1]
                generator = torch.Generator().manual_seed(seed_of_input)
                inputs[name] = torch.randn(BATCH, channels, *size, generator=generator)
                save(inputs[name], os.path.join(out, name))
            del RESAMPLED[:]
            with torch.no_grad():
                logits = module(inputs[name])
            resampled = list(RESAMPLED)
            assert logits.shape == (BATCH, case["kwargs"]["num_classes"]), logits.shape
            assert torch.isfinite(logits).all()
            logits_file = f"{case['name']}/logits_{size[0]}x{size[1]}.pth"
            save(logits.detach().clone().contiguous(), os.path.join(out, logits_file))
            evaluations.append(dict(size=list(size), input=name, logits=logits_file,
                                    logits_abs_max=round(logits.abs().max().item(), 4),
                                    timm_resampled_pos_embed=resampled))

        entry = dict(
            name=case["name"],
            about=case["about"],
            timm_model=case["model"],
            create_model_kwargs=dict(pretrained=False, **case["kwargs"]),
            state_dict=state_file,
            family=case["family"],
            posenc_import_flags=case["flags"],
            expect=case["expect"],
            evaluations=evaluations,
        )
        if "peg_after" in case:
            entry["cpvt"] = dict(peg="timm.models.twins.PosConv", after_blocks=case["peg_after"],
                                 names="pos_block.N.proj.0.{weight,bias}",
                                 note="pos_embed='none'; PosConv on the grid tokens, prefix "
                                      "tokens passed through")
        if case.get("resizable"):
            entry["timm_resize"] = ("other sizes: copy.deepcopy(model).set_input_size("
                                    "img_size=(H, W)), timm's own way for this class")
        if "state_of" in case:
            entry["timm_load"] = dict(
                how="timm.models.vision_transformer.checkpoint_filter_fn(state, model), then "
                    "model.load_state_dict(..., strict=True)",
                resampled_pos_embed=load_resampled)
        if case["expect"] == "refuse":
            entry["message_fragments"] = case["fragments"]
        if "lacks" in case:
            entry["posenc_lacks"] = case["lacks"]
        manifest_cases.append(entry)
        print(f"{case['name']:34s} {case['expect']:9s} "
              + " ".join(f"{e['size'][0]}x{e['size'][1]}:|logit|<={e['logits_abs_max']}"
                         for e in evaluations))

    manifest = dict(
        about="Golden outputs of timm's own models for tests/python/timm_parity_test.py; made by "
              "tests/python/make_timm_fixtures.py (scripts/make-timm-fixtures.sh).",
        timm_version=timm.__version__,
        torch_version=torch.__version__,
        torchvision_version=torchvision.__version__,
        python_version=sys.version.split()[0],
        tolerance=TOLERANCE,
        batch=BATCH,
        cases=manifest_cases,
    )
    text = compact_json(manifest)
    with open(os.path.join(out, "manifest.json"), "w") as file:
        file.write(text + "\n")
    remove_stale_files(out)
    total = sum(os.path.getsize(os.path.join(root, f))
                for root, _, files in os.walk(out) for f in files)
    print(f"wrote {len(manifest_cases)} cases to {out}: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
