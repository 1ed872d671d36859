"""timm's config.json files, by timm itself, in the timm reference environment
(scripts/timm-venv.sh; CI needs neither):

  .venv-timm/bin/python scripts/timm_model_configs.py fixtures
      writes tests/fixtures/timm_configs/, the configs posenc's tests read
      (PyTorchInterop.ReadsTimmsOwnModelConfigs), with timm's own save_config_for_hf;
  .venv-timm/bin/python scripts/timm_model_configs.py check MODEL.pth [MODEL.config.json]
          [--input IMAGES.pth --expect LOGITS.pth]
      builds the model a `posenc export` config describes with timm.create_model(architecture,
      **model_args) and loads the exported state dict into it, strictly; with --input and
      --expect, also runs it on the images (at the config's input size) and prints the largest
      difference from the expected logits (e.g. timm's own, from the parity fixtures), failing
      above 1e-4.
"""
import argparse
import json
import pathlib

import timm
import torch
from timm.models._hub import save_config_for_hf

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "timm_configs"

# file name -> (timm model name, create_model overrides, save_config_for_hf model_config)
CASES = {
    "deit_tiny_patch16_224": ("deit_tiny_patch16_224.fb_in1k", {}, {}),
    "vit_base_patch16_224.augreg_in21k": ("vit_base_patch16_224.augreg_in21k", {}, {}),
    "vit_tiny_3_classes_48x32": (
        "vit_tiny_patch16_224",
        {"num_classes": 3, "img_size": (48, 32)},
        {"label_names": ["cat", "dog", "bird"], "model_args": {"num_heads": 3}},
    ),
}


def write_fixtures():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, (model_name, overrides, model_config) in CASES.items():
        model = timm.create_model(model_name, pretrained=False, **overrides)
        path = FIXTURES / f"{name}.json"
        save_config_for_hf(model, path, model_config=model_config)
        print(f"wrote {path} (timm {timm.__version__}, {model_name})")


def check_export(state_dict_path, config_path, images_path=None, expected_path=None):
    config_path = config_path or str(pathlib.Path(state_dict_path).with_suffix(".config.json"))
    config = json.loads(pathlib.Path(config_path).read_text())
    arguments = dict(config["model_args"])
    if "img_size" in arguments:
        arguments["img_size"] = tuple(arguments["img_size"])
    model = timm.create_model(config["architecture"], pretrained=False, **arguments)
    model.load_state_dict(torch.load(state_dict_path, weights_only=True), strict=True)
    model.eval()
    channels, height, width = config["pretrained_cfg"]["input_size"]
    with torch.no_grad():
        logits = model(torch.zeros(1, channels, height, width))
    print(f"timm {timm.__version__} built {config['architecture']} with {arguments} and loaded "
          f"{state_dict_path} strictly; logits {tuple(logits.shape)}")
    if images_path:
        with torch.no_grad():
            logits = model(torch.load(images_path, weights_only=True))
        difference = (logits - torch.load(expected_path, weights_only=True)).abs().max().item()
        print(f"largest |logit - expected| on {images_path}: {difference:.3g}")
        if difference > 1e-4:
            raise SystemExit(f"the rebuilt model's logits differ from {expected_path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fixtures")
    check = commands.add_parser("check")
    check.add_argument("state_dict")
    check.add_argument("config", nargs="?")
    check.add_argument("--input", help="images (B, C, H, W) saved with torch.save")
    check.add_argument("--expect", help="the logits expected on --input")
    arguments = parser.parse_args()
    if arguments.command == "fixtures":
        write_fixtures()
    else:
        if bool(arguments.input) != bool(arguments.expect):
            parser.error("--input and --expect go together")
        check_export(arguments.state_dict, arguments.config, arguments.input, arguments.expect)


if __name__ == "__main__":
    main()
