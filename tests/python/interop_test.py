"""PyTorch interop, checked from Python in the project's environment (.venv: the PyTorch whose
LibTorch posenc is built on).

Builds small ViT/DeiT, CPVT (class token and GAP) and LFF models in plain PyTorch with timm's
names, saves random weights, imports them with `posenc import` and compares `posenc forward`
with PyTorch's output at the trained and a second resolution; exports them back and loads them
into the PyTorch model; runs torch.autograd.gradcheck on torch.ops.posenc.*; feeds bad files to
`posenc import`.

    .venv/bin/python tests/python/interop_test.py --posenc build/posenc --ops build/libposenc_torch_ops.so
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile
import unittest

import torch
import torch.nn as nn
import torch.nn.functional as F

POSENC = None
OPS = None
TOLERANCE = 1e-4


# --- reference models, written the way timm / the CPVT and LFF ports write them ---------------

class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attention = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, channels, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, patch)

    def forward(self, x):
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2), x.shape[2], x.shape[3]


class PosCNN(nn.Module):
    """CPVT's PEG: a depthwise conv inside an nn.Sequential, residual, on the grid tokens."""

    def __init__(self, dim, k):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(dim, dim, k, 1, k // 2, groups=dim))

    def forward(self, x, H, W, prefix):
        prefix_tokens, grid = x[:, :prefix], x[:, prefix:]
        B, N, C = grid.shape
        feat = grid.transpose(1, 2).reshape(B, C, H, W)
        grid = (self.proj(feat) + feat).flatten(2).transpose(1, 2)
        return torch.cat([prefix_tokens, grid], dim=1)


class LearnableFourierFeatures(nn.Module):
    """The common LFF port: Wr, then Linear-GELU-Linear on 1/sqrt(F) [cos || sin]."""

    def __init__(self, M, F_dim, H_dim, D):
        super().__init__()
        self.F_dim = F_dim
        self.Wr = nn.Linear(M, F_dim // 2, bias=False)
        self.mlp = nn.Sequential(nn.Linear(F_dim, H_dim), nn.GELU(), nn.Linear(H_dim, D))

    def forward(self, x):
        projected = self.Wr(x)
        features = torch.cat([torch.cos(projected), torch.sin(projected)], dim=-1)
        return self.mlp(features / math.sqrt(self.F_dim))


def resample_abs_pos_embed(pos_embed, new_size, prefix):
    """timm's resample_abs_pos_embed: bicubic, antialiased, on the grid part only."""
    prefix_rows, grid = pos_embed[:, :prefix], pos_embed[:, prefix:]
    side = int(math.sqrt(grid.shape[1]))
    if (side, side) == tuple(new_size):
        return pos_embed
    grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new_size, mode="bicubic", antialias=True, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, grid.shape[1])
    return torch.cat([prefix_rows, grid], dim=1)


class VisionTransformer(nn.Module):
    """timm names; pe is 'learned' (ViT/DeiT), 'peg' (CPVT) or 'lff'."""

    def __init__(self, pe, image=16, patch=4, channels=3, dim=64, depth=2, heads=2, classes=5,
                 mlp_ratio=2.0, class_token=True, peg_after=(0,), peg_k=3):
        super().__init__()
        self.pe, self.peg_after = pe, list(peg_after)
        self.prefix = 1 if class_token else 0
        self.patch_embed = PatchEmbed(channels, dim, patch)
        if class_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        grid = image // patch
        if pe == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, self.prefix + grid * grid, dim))
        elif pe == "lff":
            self.pos_embed = LearnableFourierFeatures(2, 32, 16, dim)
        elif pe == "peg":
            self.pos_block = nn.ModuleList([PosCNN(dim, peg_k) for _ in self.peg_after])
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, images):
        x, H, W = self.patch_embed(images)
        if self.prefix:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        if self.pe == "learned":
            x = x + resample_abs_pos_embed(self.pos_embed, (H, W), self.prefix)
        elif self.pe == "lff":
            rows, columns = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5,
                                           indexing="ij")
            centres = torch.stack([rows.reshape(-1), columns.reshape(-1)], dim=1)
            encoding = self.pos_embed(centres)  # (H*W, dim); the class token gets none
            x = x + F.pad(encoding, (0, 0, self.prefix, 0)).unsqueeze(0)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if self.pe == "peg" and i in self.peg_after:
                x = self.pos_block[self.peg_after.index(i)](x, H, W, self.prefix)
        x = self.norm(x)
        return self.head(x[:, 0] if self.prefix else x.mean(dim=1))


def randomise(model, seed):
    """Every tensor random (LayerNorm weights around 1), so that no name mix-up goes unseen."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            noise = torch.randn(tensor.shape, generator=generator) * 0.2
            tensor.copy_(1.0 + noise if name.endswith("norm1.weight") or name.endswith(
                "norm2.weight") or name == "norm.weight" else noise)
    return model.eval()


def posenc(*arguments, check=True):
    result = subprocess.run([POSENC, *arguments], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"posenc {' '.join(arguments)} failed:\n{result.stderr}")
    return result


# --- tests ---------------------------------------------------------------------------------

class ImportAndExport(unittest.TestCase):
    MODELS = {
        "vit": ("timm-vit", dict(pe="learned")),
        "deit": ("timm-vit", dict(pe="learned", dim=64, depth=3, mlp_ratio=4.0)),
        "cpvt": ("cpvt", dict(pe="peg")),
        "cpvt-gap-peg-0-1": ("cpvt", dict(pe="peg", class_token=False, peg_after=(0, 1), peg_k=5)),
        "lff": ("lff", dict(pe="lff")),
    }

    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.path = lambda name: os.path.join(self.folder.name, name)

    def tearDown(self):
        self.folder.cleanup()

    def forward_in_posenc(self, checkpoint, images, name):
        torch.save(images, self.path(name + "-input.pth"))
        posenc("forward", "--checkpoint", checkpoint, "--input", self.path(name + "-input.pth"),
               "--output", self.path(name + "-logits.pth"), "--threads", "1")
        return torch.load(self.path(name + "-logits.pth"))

    def test_imported_models_match_pytorch_at_two_resolutions_and_export_back(self):
        for seed, (name, (family, settings)) in enumerate(self.MODELS.items()):
            with self.subTest(model=name):
                model = randomise(VisionTransformer(**settings), seed)
                torch.save(model.state_dict(), self.path(name + ".pth"))
                checkpoint = self.path(name + ".pt")
                posenc("import", "--from", family, self.path(name + ".pth"), "--out", checkpoint,
                       "--heads", "2", "--image-size", "16")
                for size in (16, 24):
                    images = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(size))
                    with torch.no_grad():
                        expected = model(images)
                    logits = self.forward_in_posenc(checkpoint, images, f"{name}-{size}")
                    error = (logits - expected).abs().max().item()
                    self.assertLessEqual(error, TOLERANCE, f"{name} at {size}x{size}")

                posenc("export", "--checkpoint", checkpoint, "--out", self.path(name + "-out.pth"))
                exported = torch.load(self.path(name + "-out.pth"))
                self.assertEqual(set(exported), set(model.state_dict()))
                again = VisionTransformer(**settings).eval()
                again.load_state_dict(exported)  # strict: same names and shapes
                images = torch.randn(2, 3, 16, 16)
                with torch.no_grad():
                    self.assertTrue(torch.equal(again(images), model(images)), name)

    def test_a_table_of_another_grid_is_resampled_on_import(self):
        model = randomise(VisionTransformer(pe="learned", image=16), 7)
        torch.save(model.state_dict(), self.path("vit.pth"))
        result = posenc("import", "--from", "timm-vit", self.path("vit.pth"), "--out",
                        self.path("vit.pt"), "--heads", "2", "--image-size", "24")
        self.assertIn("pos_embed resampled", result.stdout)
        images = torch.randn(2, 3, 24, 24)
        with torch.no_grad():
            expected = model(images)  # resamples its 4x4 table to 6x6 on the fly
        logits = self.forward_in_posenc(self.path("vit.pt"), images, "resampled")
        self.assertLessEqual((logits - expected).abs().max().item(), TOLERANCE)

    def expect_import_error(self, family, content, *fragments, save=True):
        path = self.path("bad.pth")
        if save:
            torch.save(content, path)
        else:
            with open(path, "wb") as file:
                file.write(content)
        result = posenc("import", "--from", family, path, "--out", self.path("bad.pt"),
                        "--heads", "2", check=False)
        self.assertEqual(result.returncode, 1, result.stderr)  # an error, not a crash
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)
        self.assertFalse(os.path.exists(self.path("bad.pt")))

    def test_bad_files_give_clear_errors(self):
        state = randomise(VisionTransformer(pe="learned"), 1).state_dict()
        with open(self.path("good.pth"), "wb") as file:
            torch.save(state, file)
        with open(self.path("good.pth"), "rb") as file:
            whole = file.read()
        self.expect_import_error("timm-vit", [1, 2, 3], "holds a list", "not a state dict")
        self.expect_import_error("timm-vit", {"a": 1}, "'a' is an integer", "not a tensor")
        self.expect_import_error("timm-vit", whole[: len(whole) // 2], "truncated or corrupt",
                                 save=False)
        self.expect_import_error("timm-vit", b"not a pickle", "not a torch.save file", save=False)
        # the module itself (torch.save(model)) and TorchScript, where the weights belong
        self.expect_import_error("timm-vit", torch.nn.Linear(2, 2), "of Python objects",
                                 "torch.save(model.state_dict(), f)")
        scripted = self.path("scripted.pt")
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), scripted)
        with open(scripted, "rb") as file:
            self.expect_import_error("timm-vit", file.read(), "is a TorchScript archive",
                                     save=False)
        self.expect_import_error("resnet", state, "unknown model family 'resnet'", "timm-vit")
        self.expect_import_error("cpvt", state, "pos_block")
        wrong_shape = dict(state)
        wrong_shape["blocks.1.attn.qkv.weight"] = torch.zeros(10, 64)
        self.expect_import_error("timm-vit", wrong_shape, "shape differs",
                                 "blocks.1.attn.qkv.weight")
        wrong_dtype = dict(state)
        wrong_dtype["head.bias"] = torch.zeros(5, dtype=torch.int64)
        self.expect_import_error("timm-vit", wrong_dtype, "not floating point: head.bias")
        posenc("import", "--from", "timm-vit", self.path("good.pth"), "--out", self.path("good.pt"),
               "--heads", "2")
        torch.save(torch.full((1, 3, 16, 16), float("nan")), self.path("nan.pth"))
        result = posenc("forward", "--checkpoint", self.path("good.pt"), "--input",
                        self.path("nan.pth"), "--output", self.path("out.pth"), check=False)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("holds NaN or infinite values", result.stderr)
        extra = dict(state)
        extra["dist_token"] = torch.zeros(1, 1, 64)
        self.expect_import_error("timm-vit", extra,
                                 "prefix tokens posenc's ViT does not have: dist_token")


class RegisteredOps(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.ops.load_library(OPS)

    @staticmethod
    def peg_reference(tokens, weight, bias, height, width, prefix):
        """PEG the way public code writes it: to (B, C, H, W), depthwise conv, residual, back."""
        prefix_tokens, grid = tokens[:, :prefix], tokens[:, prefix:]
        B, N, C = grid.shape
        feat = grid.transpose(1, 2).reshape(B, C, height, width)
        out = F.conv2d(feat, weight, bias, padding=weight.shape[-1] // 2, groups=C) + feat
        return torch.cat([prefix_tokens, out.flatten(2).transpose(1, 2)], dim=1)

    @staticmethod
    def fourier_reference(positions, wr):
        projected = positions @ wr.t()
        return torch.cat([projected.cos(), projected.sin()], -1) / math.sqrt(2 * wr.shape[0])

    @classmethod
    def fourier_mlp_reference(cls, positions, wr, w1, b1, w2, b2):
        """The LFF encoder as the public code writes it: features, Linear, GELU, Linear."""
        hidden = F.gelu(F.linear(cls.fourier_reference(positions, wr), w1, b1))
        return F.linear(hidden, w2, b2)

    @staticmethod
    def rotation_reference(tokens, angles, prefix, pairs):
        """RoPE as naver's RoPE-ViT writes it (apply_rotary_emb): each pair of a head as one
        complex number, multiplied by torch.polar(1, angle); rotate-half pairs are (i, i + d/2)."""
        batch, count, channels = tokens.shape
        heads, half = angles.shape[2], angles.shape[3]
        x = tokens[:, prefix:].reshape(batch, count - prefix, heads, 2 * half)
        if pairs == "half":
            x = torch.stack([x[..., :half], x[..., half:]], -1)
        else:
            x = x.reshape(batch, count - prefix, heads, half, 2)
        turned = torch.view_as_real(torch.view_as_complex(x.contiguous())
                                    * torch.polar(torch.ones_like(angles), angles))
        if pairs == "half":
            turned = torch.cat([turned[..., 0], turned[..., 1]], -1)
        turned = turned.reshape(batch, count - prefix, channels)
        return torch.cat([tokens[:, :prefix], turned], 1)

    @staticmethod
    def fourier_mlp_inputs(positions, frequencies, hidden, outputs, **options):
        """positions (..., M) and the encoder's parameters wr, w1, b1, w2, b2."""
        values = positions.shape[-1]
        return [positions, torch.randn(frequencies, values, **options),
                torch.randn(hidden, 2 * frequencies, **options) * 0.2,
                torch.randn(hidden, **options) * 0.1,
                torch.randn(outputs, hidden, **options) * 0.2, torch.randn(outputs, **options) * 0.1]

    def test_gradcheck_in_double(self):
        options = dict(dtype=torch.float64, requires_grad=True)
        tokens, weight, bias = torch.randn(2, 1 + 3 * 5, 4, **options), \
            torch.randn(4, 1, 3, 3, **options), torch.randn(4, **options)
        self.assertTrue(torch.autograd.gradcheck(
            lambda t, w, b: torch.ops.posenc.peg_conv(t, w, b, 3, 5, 1, "zeros"),
            (tokens, weight, bias)))
        positions, wr = torch.randn(7, 2, **options), torch.randn(6, 2, **options)
        self.assertTrue(torch.autograd.gradcheck(torch.ops.posenc.fourier_features,
                                                 (positions, wr)))
        encoder_inputs = self.fourier_mlp_inputs(torch.randn(5, 2, **options), 3, 4, 6, **options)
        self.assertTrue(torch.autograd.gradcheck(torch.ops.posenc.fourier_mlp, encoder_inputs))
        for pairs in ("interleaved", "half"):
            tokens, angles = torch.randn(2, 1 + 6, 8, **options), torch.randn(1, 6, 2, 2, **options)
            self.assertTrue(torch.autograd.gradcheck(
                lambda t, a: torch.ops.posenc.rotate_pairs(t, a, 1, pairs), (tokens, angles)))

    def test_fused_float32_values_and_gradients_match_eager_pytorch(self):
        def compare(op, reference, inputs):
            ours = [x.detach().clone().requires_grad_() for x in inputs]
            theirs = [x.detach().clone().requires_grad_() for x in inputs]
            out, expected = op(*ours), reference(*theirs)
            self.assertLessEqual((out - expected).abs().max().item(), 1e-4)
            grad = torch.randn_like(out)
            out.backward(grad)
            expected.backward(grad)
            for a, b in zip(ours, theirs):
                scale = max(1.0, b.grad.abs().max().item())
                self.assertLessEqual((a.grad - b.grad).abs().max().item() / scale, 1e-4)

        for height, width, prefix, k in [(14, 14, 1, 3), (5, 7, 0, 5)]:
            compare(lambda t, w, b: torch.ops.posenc.peg_conv(t, w, b, height, width, prefix),
                    lambda t, w, b: self.peg_reference(t, w, b, height, width, prefix),
                    [torch.randn(3, prefix + height * width, 40), torch.randn(40, 1, k, k),
                     torch.randn(40)])
        compare(torch.ops.posenc.fourier_features, self.fourier_reference,
                [torch.randn(50, 2) * 3, torch.randn(32, 2)])
        # more than one tile of the fused encoder (256 positions), the last one partial; 3-D input
        compare(torch.ops.posenc.fourier_mlp, self.fourier_mlp_reference,
                self.fourier_mlp_inputs(torch.randn(3, 200, 2) * 3, 64, 64, 48))
        # a ViT-S block's q (6 heads of 64) with a class token; per-image angles (point sets)
        for pairs, angle_images in (("interleaved", 1), ("half", 1), ("interleaved", 3)):
            compare(lambda t, a: torch.ops.posenc.rotate_pairs(t, a, 1, pairs),
                    lambda t, a: self.rotation_reference(t, a, 1, pairs),
                    [torch.randn(3, 1 + 49, 384), torch.rand(angle_images, 49, 6, 32) * 8 - 4])

    def test_bad_arguments_raise_instead_of_crashing(self):
        with self.assertRaisesRegex(RuntimeError, "padding"):
            torch.ops.posenc.peg_conv(torch.randn(1, 4, 2), torch.randn(2, 1, 3, 3), None, 2, 2,
                                      0, "mirror")
        with self.assertRaises(RuntimeError):
            torch.ops.posenc.peg_conv(torch.randn(1, 5, 2), torch.randn(2, 1, 3, 3), None, 2, 2)
        positions, wr, w1, b1, w2, b2 = self.fourier_mlp_inputs(torch.randn(4, 2), 3, 4, 6)
        with self.assertRaisesRegex(RuntimeError, "w1 must be"):
            torch.ops.posenc.fourier_mlp(positions, wr, w1.t(), b1, w2, b2)
        with self.assertRaisesRegex(RuntimeError, "positions must be"):
            torch.ops.posenc.fourier_mlp(torch.randn(4, 3), wr, w1, b1, w2, b2)
        with self.assertRaisesRegex(RuntimeError, "rotary pair layout 'complex'"):
            torch.ops.posenc.rotate_pairs(torch.randn(1, 5, 8), torch.randn(1, 4, 2, 2), 1,
                                          "complex")
        with self.assertRaisesRegex(RuntimeError, "angles hold 5 positions"):
            torch.ops.posenc.rotate_pairs(torch.randn(1, 5, 8), torch.randn(1, 5, 2, 2), 1)


class OpsLibraryGuard(unittest.TestCase):
    """libposenc_torch_ops.so refuses a PyTorch other than the one posenc was built against."""

    MARKER = b"posenc-ops-built-for-torch="

    def load_in_fresh_python(self, library):
        script = ("import torch\n"
                  f"torch.ops.load_library({str(library)!r})\n"
                  "print(torch.ops.posenc.peg_conv)\n")
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)

    def test_loads_into_the_pytorch_it_was_built_for(self):
        result = self.load_in_fresh_python(OPS)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_another_pytorch_gets_an_error_naming_both_versions(self):
        """A copy whose recorded version is changed in place stands for a build for another
        PyTorch: loading it must raise, naming both versions, and load no operator."""
        with open(OPS, "rb") as library:
            content = library.read()
        start = content.index(self.MARKER) + len(self.MARKER)
        built = content[start:content.index(b"\0", start)]
        other = b"9.99.9"[:len(built)].ljust(len(built), b"9")
        with tempfile.TemporaryDirectory() as folder:
            copy = os.path.join(folder, os.path.basename(OPS))
            with open(copy, "wb") as library:
                library.write(content[:start] + other + content[start + len(built):])
            implementation = OPS.replace("libposenc_torch_ops.so", "libposenc_torch_ops_impl.so")
            os.symlink(implementation, os.path.join(folder, os.path.basename(implementation)))
            result = self.load_in_fresh_python(copy)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"built against PyTorch {other.decode()}", result.stderr)
        self.assertIn(f"this Python runs PyTorch {torch.__version__}", result.stderr)
        self.assertNotIn("undefined symbol", result.stderr)

    def test_a_missing_operator_library_is_named(self):
        with tempfile.TemporaryDirectory() as folder:
            copy = os.path.join(folder, os.path.basename(OPS))
            with open(OPS, "rb") as source, open(copy, "wb") as library:
                library.write(source.read())
            result = self.load_in_fresh_python(copy)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("cannot load posenc's operators from", result.stderr)
        self.assertIn("libposenc_torch_ops_impl.so", result.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--posenc", required=True, help="the posenc executable")
    parser.add_argument("--ops", required=True, help="libposenc_torch_ops.so")
    arguments, rest = parser.parse_known_args()
    POSENC, OPS = os.path.abspath(arguments.posenc), os.path.abspath(arguments.ops)
    torch.manual_seed(0)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
