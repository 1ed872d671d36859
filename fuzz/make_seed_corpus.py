"""Writes the small seed corpus of every fuzz target into fuzz/corpus/<target>/ (committed; run
again only to change it). Needs the project's environment (.venv, with torch) and a built posenc for the checkpoint.

    .venv/bin/python fuzz/make_seed_corpus.py --posenc build/posenc
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import tempfile
import zlib

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as file:
        file.write(data if isinstance(data, bytes) else data.encode())


def idx(dims, payload):
    return struct.pack(">BBBB", 0, 0, 0x08, len(dims)) + b"".join(
        struct.pack(">I", d) for d in dims) + bytes(payload)


def png(width, height, channels, pixels):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    colour = {1: 0, 3: 2}[channels]
    rows = b"".join(b"\x00" + bytes(pixels[r * width * channels:(r + 1) * width * channels])
                    for r in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8,
                                                              colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def bmp(width, height):
    row = (width * 3 + 3) & ~3
    pixels = bytes(row * height)
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 0, 0, 0, 0)
    return header + info + pixels


def tiny_vit_state():
    dim, grid, patch, classes = 8, 2, 2, 3
    torch.manual_seed(0)
    state = {"cls_token": torch.randn(1, 1, dim), "pos_embed": torch.randn(1, 1 + grid * grid, dim),
             "patch_embed.proj.weight": torch.randn(dim, 1, patch, patch),
             "patch_embed.proj.bias": torch.randn(dim)}
    for name, shape in [("norm1", (dim,)), ("norm2", (dim,))]:
        state[f"blocks.0.{name}.weight"] = torch.ones(shape)
        state[f"blocks.0.{name}.bias"] = torch.zeros(shape)
    for name, (rows, cols) in [("attn.qkv", (3 * dim, dim)), ("attn.proj", (dim, dim)),
                               ("mlp.fc1", (2 * dim, dim)), ("mlp.fc2", (dim, 2 * dim))]:
        state[f"blocks.0.{name}.weight"] = torch.randn(rows, cols)
        state[f"blocks.0.{name}.bias"] = torch.randn(rows)
    state.update({"norm.weight": torch.ones(dim), "norm.bias": torch.zeros(dim),
                  "head.weight": torch.randn(classes, dim), "head.bias": torch.zeros(classes)})
    return state


# points (G=1), boxes as two corners (G=2) with null targets and sets of different sizes
TOKEN_SET_SEEDS = {
    "points.jsonl": '{"positions": [[0.1, 0.2], [0.5, 0.9], [0.7, 0.3]], '
                    '"content": [[1, 0], [0, 1], [1, 0]], "targets": [1, 0, 0]}\n'
                    '{"positions": [[0.4, 0.4], [0.45, 0.5]], "content": [[0, 1], [1, 0]], '
                    '"targets": [0, 1]}\n',
    "boxes.jsonl": '{"positions": [[[0, 0], [0.2, 0.1]], [[0.3, 0], [0.9, 0.1]]], '
                   '"content": [[1], [2]], "targets": [2, null]}\n'
                   '\n'
                   '{"positions": [[[0.1, 0.5], [0.4, 0.6]]], "content": [[0.5]], '
                   '"targets": [0]}\n',
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--posenc", required=True)
    posenc = parser.parse_args().posenc

    images = idx([2, 3, 3], range(18))
    write("idx_file", "images-raw.idx", images)
    write("idx_file", "images.idx.gz", gzip.compress(images, mtime=0))
    write("idx_file", "labels-raw.idx", idx([2], [0, 1]))

    write("image_file", "gray.png", png(4, 3, 1, range(12)))
    write("image_file", "rgb.png", png(3, 2, 3, range(18)))
    write("image_file", "rgb.bmp", bmp(3, 2))

    write("run_config", "micro.json", json.dumps({
        "model": {"dim": 96, "depth": 6, "heads": 3, "encodings": ["peg"], "head": "gap"},
        "training": {"epochs": 10, "batch_size": 128, "train_resolutions": [20, 28]},
        "data": {"kind": "fashion-mnist"}}))
    write("run_config", "idx.json", json.dumps({
        "data": {"kind": "idx", "train_images": "a", "train_labels": "b", "test_images": "c",
                 "test_labels": "d"}, "normalization": {"mean": [0.5], "std": [0.25]}}))

    for i, spec in enumerate(["none", "sincos1d", "sincos2d:temperature=100", "learned1d",
                              "learned2d:resize=index", "lff:F=16,H=8,gamma=2,coords=normalized",
                              "peg:k=5,padding=circular", '{"type": "lff", "variant": "mlp"}']):
        write("encoding_spec", f"spec-{i}.txt", spec)

    for name, text in TOKEN_SET_SEEDS.items():
        write("token_sets_jsonl", name, text)

    state = tiny_vit_state()
    buffer = tempfile.NamedTemporaryFile(suffix=".pth", delete=False)
    torch.save(state, buffer.name)
    with open(buffer.name, "rb") as file:
        write("torch_save", "tiny-vit.pth", file.read())
    checkpoint = buffer.name + ".pt"
    subprocess.run([posenc, "import", "--from", "timm-vit", buffer.name, "--out", checkpoint,
                    "--heads", "2"], check=True, capture_output=True)
    with open(checkpoint, "rb") as file:
        write("checkpoint", "tiny-vit.pt", file.read())
    os.remove(checkpoint)
    os.remove(buffer.name)


if __name__ == "__main__":
    main()
