// PyTorch interop from C++: posenc's writer and hand-written reader of torch.save files agree,
// an exported model imports back to the same outputs, and damaged files give errors, never a
// crash. (tests/python/interop_test.py checks the same against Python's own torch.save.)
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/encoding_spec.h"
#include "posenc/interop/pytorch_models.h"
#include "posenc/interop/torch_save_files.h"
#include "posenc/train/checkpoint.h"
#include "support/temporary_folder.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;
using testing::TemporaryFolder;

VisionTransformerOptions small_model(const std::string& encoding) {
  auto options = VisionTransformerOptions::preset("nano");
  options.image_channels = 3;
  options.image_height = options.image_width = 16;
  options.depth = 2;
  options.encodings = {encoding};
  options.conditional_after_blocks = encoding.rfind("peg", 0) == 0
                                         ? std::vector<int64_t>{0, 1}
                                         : std::vector<int64_t>{};
  options.drop_path = 0.0;
  return options;
}

std::string read_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), {}};
}

TEST(PyTorchInterop, AnExportedModelImportsBackToTheSameOutputs) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"learned1d", "timm-vit"}, {"peg:k=5", "cpvt"}, {"lff:F=32,H=16", "lff"}};
  for (const auto& [encoding, family] : cases) {
    TemporaryFolder folder;
    torch::manual_seed(3);
    VisionTransformer model(small_model(encoding));
    model->eval();
    write_torch_state_dict(folder.path("model.pth"), export_pytorch_model(*model));
    ImportOptions options;
    options.family = family;
    options.heads = model->options().heads;
    options.image_height = options.image_width = 16;
    auto imported = import_pytorch_model(read_torch_state_dict(folder.path("model.pth")), options);
    const auto images = torch::randn({2, 3, 20, 20});
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(imported.model->forward(images), model->forward(images))) << family;
  }
}

// timm's eva.py RoPE ViTs (naver's RoPE-Axial and RoPE-Mixed, with or without a learned table):
// exported under eva.py's names (layer scale as gamma_1, gamma_2; the blocks' RoPE-Mixed
// frequencies as one rope.freqs), named for the timm factory that rebuilds them, and imported
// back to the same outputs.
TEST(PyTorchInterop, RopeVitsExportUnderTimmsEvaNamesAndImportBack) {
  struct Case {
    std::vector<std::string> encodings;
    std::string architecture;
  };
  for (const Case& c : std::vector<Case>{
           {{"rope_axial"}, "vit_base_patch16_rope_224"},
           {{"rope_mixed"}, "vit_base_patch16_rope_mixed_224"},
           {{"learned1d", "rope_mixed"}, "vit_base_patch16_rope_mixed_ape_224"},
           {{"learned1d", "rope_axial"}, "vit_base_patch16_rope_ape_224"}}) {
    SCOPED_TRACE(c.architecture);
    auto options = small_model("rope_axial");
    options.encodings = c.encodings;
    options.layer_scale = 0.1;
    torch::manual_seed(5);
    VisionTransformer model(options);
    model->eval();
    const auto state = export_pytorch_model(*model);
    EXPECT_EQ(exported_family(options), "timm-rope-vit");
    EXPECT_EQ(exported_model_config(options).config.architecture, c.architecture);
    EXPECT_EQ(state.count("blocks.1.gamma_2"), 1U);
    EXPECT_EQ(state.count("blocks.1.ls2.gamma"), 0U);
    const bool mixed = c.encodings.back() == "rope_mixed";
    ASSERT_EQ(state.count("rope.freqs"), mixed ? 1U : 0U);
    if (mixed) {  // (2, depth, heads, head_dim / 2)
      EXPECT_EQ(state.at("rope.freqs").sizes(), (std::vector<int64_t>{2, 2, 2, 16}));
      EXPECT_EQ(state.count("rotary_encodings.0.freqs"), 0U);
    }
    TemporaryFolder folder;
    write_torch_state_dict(folder.path("model.pth"), state);
    ImportOptions import;
    import.family = "timm-rope-vit";
    import.heads = options.heads;
    import.image_height = import.image_width = 16;
    auto imported = import_pytorch_model(read_torch_state_dict(folder.path("model.pth")), import);
    std::vector<std::string> types;  // the import resolves every option
    for (const auto& spec : imported.model->options().encodings)
      types.push_back(parse_encoding_spec(spec).at("type").get<std::string>());
    EXPECT_EQ(types, c.encodings);
    EXPECT_GT(imported.model->options().layer_scale, 0.0);
    // resolved specs at their defaults still name the timm factory
    EXPECT_EQ(exported_model_config(imported.model->options()).config.architecture,
              c.architecture);
    const auto images = torch::randn({2, 3, 20, 24});
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(imported.model->forward(images), model->forward(images)));
  }
}

// BEiT (beit.py) and relpos ViTs (vision_transformer_relpos.py): exported under timm's names,
// named for the factory that rebuilds them, imported back to the same options and outputs.
TEST(PyTorchInterop, BeitAndRelposVitsExportUnderTimmsNamesAndImportBack) {
  struct Case {
    std::vector<std::string> encodings;
    std::string head, qkv_bias, family, architecture, bias_name;
    bool fc_norm;
  };
  const std::vector<Case> cases{
      {{"relpos_bias:resize=geometric"}, "gap_with_token", "qv", "timm-beit",
       "beit_base_patch16_224", "blocks.1.attn.relative_position_bias_table", true},
      {{"learned1d", "relpos_bias:shared=true,resize=geometric"}, "token", "qv", "timm-beit",
       "beit_base_patch16_224", "rel_pos_bias.relative_position_bias_table", false},
      {{"relpos_mlp:mode=cr,hidden=16"}, "gap", "none", "timm-relpos-vit",
       "vit_relpos_base_patch16_224", "blocks.1.attn.rel_pos.mlp.fc2.bias", true},
      {{"relpos_mlp:mode=cr,hidden=16,shared=true"}, "gap", "none", "timm-relpos-vit",
       "vit_relpos_base_patch16_224", "shared_rel_pos.mlp.fc1.weight", false},
      {{"relpos_bias:resize=geometric"}, "token", "none", "timm-relpos-vit",
       "vit_relpos_base_patch16_224", "blocks.0.attn.rel_pos.relative_position_bias_table",
       false}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.encodings.back());
    auto options = small_model("learned1d");
    options.encodings = c.encodings;
    options.head = c.head;
    options.qkv_bias = c.qkv_bias;
    options.fc_norm = c.fc_norm;
    options.layer_scale = 0.1;
    torch::manual_seed(6);
    VisionTransformer model(options);
    model->eval();
    {
      torch::NoGradGuard no_grad;  // tables and q/v biases start at zero: give them values
      for (auto& parameter : model->parameters())
        parameter.add_(torch::randn_like(parameter) * 0.1);
    }
    const auto state = export_pytorch_model(*model);
    EXPECT_EQ(exported_family(options), c.family);
    EXPECT_EQ(exported_model_config(options).config.architecture, c.architecture);
    EXPECT_EQ(state.count(c.bias_name), 1U);
    EXPECT_EQ(state.count("blocks.0.attn.q_bias"), c.qkv_bias == "qv" ? 1U : 0U);
    EXPECT_EQ(state.count("blocks.0.attn.qkv.bias"), 0U);
    EXPECT_EQ(state.count(c.family == "timm-beit" ? "blocks.0.gamma_1" : "blocks.0.ls1.gamma"),
              1U);
    TemporaryFolder folder;
    write_torch_state_dict(folder.path("model.pth"), state);
    ImportOptions import;
    import.family = c.family;
    import.heads = options.heads;
    import.image_height = import.image_width = 16;
    auto imported = import_pytorch_model(read_torch_state_dict(folder.path("model.pth")), import);
    const auto& back = imported.model->options();
    EXPECT_EQ(back.head, c.head);
    EXPECT_EQ(back.qkv_bias, c.qkv_bias);
    EXPECT_EQ(back.fc_norm, c.fc_norm);
    EXPECT_EQ(exported_model_config(back).config.architecture, c.architecture);
    const auto images = torch::randn({2, 3, 20, 24});  // another grid: the tables resampled
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::allclose(imported.model->forward(images), model->forward(images), 1e-6,
                                1e-6));
  }
}

// What a BEiT or relpos ViT import cannot read says so.
TEST(PyTorchInterop, RefusesRelativePositionBiasesItCannotRead) {
  auto options = small_model("relpos_bias");
  options.qkv_bias = "qv";
  torch::manual_seed(7);
  VisionTransformer model(options);
  auto state = export_pytorch_model(*model);
  ImportOptions import;
  import.family = "timm-beit";
  import.heads = options.heads;
  import.image_height = import.image_width = 16;
  auto both = state;
  both["rel_pos_bias.relative_position_bias_table"] =
      state.at("blocks.0.attn.relative_position_bias_table");
  expect_error_containing([&] { import_pytorch_model(both, import); },
                          {"shared relative position bias", "one per block", "not both"});
  auto not_square = state;
  not_square["blocks.0.attn.relative_position_bias_table"] = torch::zeros({50, 2});
  expect_error_containing([&] { import_pytorch_model(not_square, import); },
                          {"[50, 2]", "47 offsets", "square window"});
  auto other_window = state;
  import.image_height = import.image_width = 24;  // a 6x6 grid, the table is for 4x4
  expect_error_containing([&] { import_pytorch_model(other_window, import); },
                          {"relative_position_bias_table", "shape differs"});
  import.image_height = import.image_width = 16;
  import.global_pool = "token";
  auto with_fc_norm = state;
  with_fc_norm["fc_norm.weight"] = state.at("norm.weight");
  expect_error_containing([&] { import_pytorch_model(with_fc_norm, import); },
                          {"fc_norm", "--global-pool avg"});
  import.global_pool.clear();
  import.family = "timm-relpos-vit";
  auto no_bias = state;
  for (const auto& name : {"blocks.0.attn.relative_position_bias_table",
                           "blocks.1.attn.relative_position_bias_table"})
    no_bias.erase(name);
  expect_error_containing([&] { import_pytorch_model(no_bias, import); },
                          {"no relative position bias", "timm-relpos-vit"});
}

bool any_note_contains(const ImportedModel& imported, const std::string& fragment) {
  for (const auto& note : imported.notes)
    if (note.find(fragment) != std::string::npos)
      return true;
  return false;
}

// What the tensors cannot tell (heads, a non-square grid's input size, the CPVT blocks) goes
// through export's config.json and back: the import needs no flags and gives the same outputs.
TEST(PyTorchInterop, ExportsConfigCarriesWhatTheTensorsCannotTell) {
  for (const auto& [encoding, family] : std::vector<std::pair<std::string, std::string>>{
           {"learned1d", "timm-vit"}, {"peg:k=3", "cpvt"}}) {
    auto options = small_model(encoding);
    options.dim = 48;  // 3 heads of 16: neither dim / 64 nor a width of timm's
    options.heads = 3;
    options.classes = 5;
    options.image_height = 8;  // patch 4: a 2 x 8 grid
    options.image_width = 32;
    if (family == "cpvt")
      options.conditional_after_blocks = {-1, 1};  // before block 0 and after block 1
    torch::manual_seed(11);
    VisionTransformer model(options);
    model->eval();
    const auto exported = exported_model_config(options);
    EXPECT_EQ(exported.config.architecture.empty(), family != "timm-vit") << family;
    const auto json = timm_model_config_json(exported.config, exported.model_args);
    ImportOptions import;
    import.family = family;
    import.config = parse_timm_model_config(json, "model.config.json");
    const auto state = export_pytorch_model(*model);
    auto imported = import_pytorch_model(state, import);
    EXPECT_EQ(imported.model->options().heads, 3) << family;
    EXPECT_EQ(imported.model->options().image_height, 8) << family;
    EXPECT_EQ(imported.model->options().image_width, 32) << family;
    EXPECT_EQ(imported.model->options().conditional_after_blocks,
              options.conditional_after_blocks)
        << family;
    const auto images = torch::randn({2, 3, 8, 32});
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(imported.model->forward(images), model->forward(images))) << family;

    ImportOptions without_config;
    without_config.family = family;
    expect_error_containing([&] { import_pytorch_model(state, without_config); },
                            {"dim 48 is not a multiple of 64", "--heads", "config.json"});
    auto other = import;
    other.config.classes = 7;
    expect_error_containing([&] { import_pytorch_model(state, other); },
                            {"config says 7 classes", "head has 5 rows"});
  }
}

// timm's own config.json files (tests/fixtures/timm_configs/, written by timm's save_config_for_hf
// through scripts/make-timm-config-fixtures.py): the settings posenc reads from them.
TEST(PyTorchInterop, ReadsTimmsOwnModelConfigs) {
  const std::string folder = std::string(POSENC_SOURCE_DIR) + "/tests/fixtures/timm_configs/";
  const auto deit = read_timm_model_config(folder + "deit_tiny_patch16_224.json");
  EXPECT_EQ(deit.architecture, "deit_tiny_patch16_224");
  EXPECT_EQ(deit.classes, 1000);
  EXPECT_EQ(deit.channels, 3);
  EXPECT_EQ(deit.image_height, 224);
  EXPECT_EQ(deit.image_width, 224);
  EXPECT_EQ(deit.mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(deit.std, (std::vector<double>{0.229, 0.224, 0.225}));
  EXPECT_EQ(deit.global_pool, "token");
  const auto labelled = read_timm_model_config(folder + "vit_tiny_3_classes_48x32.json");
  EXPECT_EQ(labelled.classes, 3);
  EXPECT_EQ(labelled.class_names, (std::vector<std::string>{"cat", "dog", "bird"}));
  EXPECT_EQ(labelled.image_height, 48);
  EXPECT_EQ(labelled.image_width, 32);
  EXPECT_EQ(labelled.heads, 3);
  const auto augreg = read_timm_model_config(folder + "vit_base_patch16_224.augreg_in21k.json");
  EXPECT_EQ(augreg.mean, (std::vector<double>{0.5, 0.5, 0.5}));

  // timm's huge width has 16 heads of 80, not dim / 64
  auto huge = small_model("learned1d");
  huge.dim = 1280;
  huge.heads = 16;
  huge.depth = 1;
  huge.mlp_ratio = 0.25;
  const auto state = export_pytorch_model(*VisionTransformer(huge));
  ImportOptions import;
  import.family = "timm-vit";
  const auto imported = import_pytorch_model(state, import);
  EXPECT_EQ(imported.model->options().heads, 16);
  EXPECT_TRUE(any_note_contains(imported, "huge"));

  for (const auto& [text, fragment] : std::vector<std::pair<std::string, std::string>>{
           {R"({"pretrained_cfg": {"input_size": [3, 224]}})", "\"input_size\" must be"},
           {R"({"pretrained_cfg": {"mean": "imagenet"}})", "\"mean\" must be a list"},
           {R"({"num_classes": 2.5})", "\"num_classes\" must be a positive whole number"},
           {R"({"label_names": {"0": "a", "2": "b"}})", "without gaps"},
           {R"({"pretrained_cfg": {"input_size": [1, 8, 8], "mean": [0.5, 0.5, 0.5]}})",
            "one value per input channel"}}) {
    const auto json = nlohmann::json::parse(text);  // clang 14 captures no structured binding
    expect_error_containing([&] { parse_timm_model_config(json, "c.json"); },
                            {"c.json", fragment});
  }
}

// NaN or infinite weights (a diverged run) are refused by name, not imported to predict nan.
TEST(PyTorchInterop, RefusesWeightsThatAreNotFinite) {
  torch::manual_seed(3);
  VisionTransformer model(small_model("learned1d"));
  auto state = export_pytorch_model(*model);
  state.at("blocks.0.attn.qkv.weight").index_put_({0, 0}, std::nan(""));
  state.at("head.bias").index_put_({1}, INFINITY);
  ImportOptions options;
  options.family = "timm-vit";
  options.heads = model->options().heads;
  expect_error_containing([&] { import_pytorch_model(state, options); },
                          {"not finite", "blocks.0.attn.qkv.weight", "head.bias", "1 NaN"});
}

// A timm-vit state dict does not say how timm pools beside a class token, nor the grid of a
// table whose row count is a square: the import says what it assumed and takes both as options.
TEST(PyTorchInterop, ImportNotesWhatTheStateDictCannotTellAndTakesItAsOptions) {
  auto trained = small_model("learned1d");
  trained.image_height = 8;  // patch 4: a 2 x 8 grid, 16 rows beside the class token's
  trained.image_width = 32;
  torch::manual_seed(5);
  VisionTransformer model(trained);
  model->eval();
  const auto state = export_pytorch_model(*model);
  ImportOptions options;
  options.family = "timm-vit";
  options.heads = trained.heads;

  const auto assumed = import_pytorch_model(state, options);
  EXPECT_EQ(assumed.model->options().head, "token");
  EXPECT_TRUE(any_note_contains(assumed, "--global-pool avg"));
  EXPECT_EQ(assumed.model->options().trained_grid(), (TokenGrid{4, 4, 1}));
  EXPECT_TRUE(any_note_contains(assumed, "--table-grid HxW"));

  options.table_height = 2;
  options.table_width = 8;
  auto told = import_pytorch_model(state, options);
  EXPECT_EQ(told.model->options().trained_grid(), (TokenGrid{2, 8, 1}));
  EXPECT_EQ(told.model->options().image_height, 8);
  EXPECT_EQ(told.model->options().image_width, 32);
  const auto images = torch::randn({2, 3, 8, 32});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(told.model->forward(images), model->forward(images)));

  // gap_with_token: the class token attends but the head reads the mean of the patch tokens
  options.global_pool = "avg";
  auto pooled = import_pytorch_model(state, options);
  EXPECT_EQ(pooled.model->options().head, "gap_with_token");
  auto tokens = model->features(images);  // (2, 1 + 16, dim)
  const auto expected = torch::linear(tokens.narrow(1, 1, 16).mean(1), state.at("head.weight"),
                                      state.at("head.bias"));
  EXPECT_TRUE(torch::allclose(pooled.model->forward(images), expected, 1e-6, 1e-6));

  options.table_height = 4;
  expect_error_containing([&] { import_pytorch_model(state, options); },
                          {"4x8 does not fit", "16 grid rows"});
  options.table_height = 0;
  options.table_width = 0;
  options.global_pool = "mean";
  expect_error_containing([&] { import_pytorch_model(state, options); },
                          {"'token' or 'avg'", "'mean'"});
}

TEST(PyTorchInterop, ReadsTensorsAndRejectsFilesThatAreNotStateDicts) {
  TemporaryFolder folder;
  const auto tensor = torch::arange(12, torch::kFloat64).reshape({3, 4}).t();  // not contiguous
  write_torch_tensor(folder.path("tensor.pth"), tensor);
  EXPECT_TRUE(torch::equal(read_torch_tensor(folder.path("tensor.pth")), tensor));
  expect_error_containing([&] { read_torch_state_dict(folder.path("tensor.pth")); },
                          {"holds a tensor", "not a state dict"});
  write_torch_state_dict(folder.path("dict.pth"), {{"w", torch::ones({2})}});
  expect_error_containing([&] { read_torch_tensor(folder.path("dict.pth")); }, {"not a tensor"});
  expect_error_containing([&] { read_torch_state_dict(folder.path("none.pth")); },
                          {"none.pth does not exist"});
  // a posenc checkpoint (a TorchScript archive) given where a state dict belongs
  torch::nn::Linear linear(2, 2);
  save_checkpoint(folder.path("last.pt"), {{"model", {}}}, *linear, nullptr, TrainingProgress{});
  expect_error_containing([&] { read_torch_state_dict(folder.path("last.pt")); },
                          {"is a TorchScript archive", "--checkpoint", "model.state_dict()"});
  testing::write_bytes(folder.path("text.pth"), "PK but no zip");
  expect_error_containing([&] { read_torch_state_dict(folder.path("text.pth")); },
                          {"truncated or corrupt"});
  ImportOptions unknown;
  unknown.family = "resnet";
  expect_error_containing(
      [&] { import_pytorch_model(read_torch_state_dict(folder.path("dict.pth")), unknown); },
      {"'patch_embed.proj.weight'"});
}

// The reader is hand-written: damaged files must end in an error, never a crash or a hang.
TEST(PyTorchInterop, DamagedFilesGiveErrorsNotCrashes) {
  TemporaryFolder folder;
  torch::manual_seed(1);
  VisionTransformer model(small_model("learned1d"));
  write_torch_state_dict(folder.path("model.pth"), export_pytorch_model(*model));
  const std::string original = read_bytes(folder.path("model.pth"));
  std::mt19937 random(7);
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string damaged = original;
    if (trial % 3 == 0) {
      damaged.resize(std::uniform_int_distribution<size_t>(0, original.size() - 1)(random));
    } else {
      for (int flip = 0; flip < 1 + trial % 8; ++flip) {
        const auto at = std::uniform_int_distribution<size_t>(0, damaged.size() - 1)(random);
        damaged[at] = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(random));
      }
    }
    testing::write_bytes(folder.path("damaged.pth"), damaged);
    try {
      read_torch_state_dict(folder.path("damaged.pth"));
    } catch (const c10::Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 100) << "most damaged files must be refused";
}

}  // namespace
}  // namespace posenc
