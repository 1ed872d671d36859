#include "posenc/interop/pytorch_models.h"

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/encoding_spec.h"
#include "posenc/grid_table_resampling.h"

namespace posenc {
namespace {

std::string describe_tensor(const torch::Tensor& tensor) {
  return c10::str(tensor.sizes(), " ", tensor.scalar_type());
}

// The family timm's eva.py RoPE ViTs import as: naver's RoPE-Axial and RoPE-Mixed models
// (vit_*_patch16_rope_224, _rope_mixed_224, and their _ape_ variants with a learned table).
constexpr const char* kTimmRopeFamily = "timm-rope-vit";
// Their rope_mixed frequencies, one (2, depth, heads, head_dim / 2) tensor for all blocks;
// posenc has one (2, heads, head_dim / 2) per block.
constexpr const char* kTimmRopeFrequencies = "rope.freqs";
const std::regex& block_frequencies_name() {
  static const std::regex name(R"(rotary_encodings\.(\d+)\.freqs)");
  return name;
}
// timm's beit.py (BEiT, BEiT v2): relative position bias tables per block (blocks.N.attn.) or
// one shared (rel_pos_bias.), BEiT's q_bias and v_bias, layer scale as gamma_1 and gamma_2.
constexpr const char* kTimmBeitFamily = "timm-beit";
// timm's vision_transformer_relpos.py (vit_relpos_*, vit_srelpos_*): RelPosBias tables or
// RelPosMlp MLPs per block (blocks.N.attn.rel_pos.) or one shared (shared_rel_pos.).
constexpr const char* kTimmRelposFamily = "timm-relpos-vit";

bool has_relative_position_modules(const std::string& family) {
  return family == kTimmBeitFamily || family == kTimmRelposFamily;
}

// Where `family` keeps block `block`'s relative position bias, or the one all blocks share.
std::string relative_position_module(const std::string& family, const std::string& block,
                                     bool shared) {
  if (family == kTimmBeitFamily)
    return shared ? "rel_pos_bias" : "blocks." + block + ".attn";
  return shared ? "shared_rel_pos" : "blocks." + block + ".attn.rel_pos";
}

// Whether the model's attention-bias encoding is one module for all blocks.
bool shares_attention_bias(const VisionTransformerOptions& options) {
  for (const auto& spec : options.encodings) {
    const auto config = parse_encoding_spec(spec);
    if (config.contains("shared") && config.at("shared") == true)
      return true;
  }
  return false;
}

// posenc's name of a tensor -> its name in the PyTorch family (the one table both directions
// use). posenc already follows timm's VisionTransformer for the transformer (and BEiT's q_bias,
// v_bias); only the encodings are renamed, and eva.py's and beit.py's layer scale (gamma_1,
// gamma_2 for timm's ls1.gamma, ls2.gamma). `shared_bias`: the model's attention-bias encoding
// is one module for all blocks (shares_attention_bias).
std::string pytorch_name(const std::string& posenc_name, const std::string& family,
                         bool shared_bias) {
  static const std::regex peg(R"(conditional_encodings\.(\d+)\.(weight|bias))");
  static const std::regex lff(R"(additive_encodings\.0\.(Wr\.weight|mlp\.[02]\.(weight|bias)))");
  static const std::regex layer_scale(R"(blocks\.(\d+)\.ls([12])\.gamma)");
  static const std::regex bias_table(R"(bias_encodings\.(\d+)\.relative_position_bias_table)");
  static const std::regex bias_mlp(R"(bias_encodings\.(\d+)\.cpb_mlp\.([02])\.(weight|bias))");
  std::smatch match;
  if ((family == kTimmRopeFamily || family == kTimmBeitFamily) &&
      std::regex_match(posenc_name, match, layer_scale))
    return "blocks." + match[1].str() + ".gamma_" + match[2].str();
  if (has_relative_position_modules(family) && std::regex_match(posenc_name, match, bias_table))
    return relative_position_module(family, match[1].str(), shared_bias) +
           ".relative_position_bias_table";
  if (family == kTimmRelposFamily && std::regex_match(posenc_name, match, bias_mlp))
    return relative_position_module(family, match[1].str(), shared_bias) + ".mlp.fc" +
           (match[2].str() == "0" ? "1." : "2.") + match[3].str();
  if (std::regex_match(posenc_name, match, peg))
    return "pos_block." + match[1].str() + ".proj.0." + match[2].str();
  if (std::regex_match(posenc_name, match, lff))
    return "pos_embed." + match[1].str();
  if (posenc_name == "additive_encodings.0.pos_embed")
    return "pos_embed";
  return posenc_name;
}

const torch::Tensor& required(const StateDict& state, const std::string& name,
                              const std::string& family, const char* why) {
  const auto found = state.find(name);
  TORCH_CHECK(found != state.end(), "the state dict has no '", name, "', which a ", family,
              " model needs (", why, "); is this a ", family, " state dict?");
  return found->second;
}

// How many modules `pattern` numbers in `state` (its one group is the index), checked to be
// numbered 0..n-1.
int64_t count_numbered(const StateDict& state, const std::regex& pattern, const char* what) {
  std::set<int64_t> indices;
  for (const auto& item : state) {
    std::smatch match;
    if (std::regex_match(item.first, match, pattern))
      indices.insert(std::stoll(match[1].str()));
  }
  const auto count = static_cast<int64_t>(indices.size());
  TORCH_CHECK(indices.empty() || *indices.rbegin() + 1 == count, "the state dict's ", what,
              " are not numbered 0..", count - 1);
  return count;
}

// posenc's head for timm's class_token and global_pool (the pooling is not in any tensor).
std::string classifier_head(bool class_token, const std::string& global_pool,
                            std::vector<std::string>& notes) {
  TORCH_CHECK(global_pool.empty() || global_pool == "token" || global_pool == "avg",
              "global_pool must be 'token' or 'avg' (timm's names), got '", global_pool, "'");
  if (!class_token) {
    TORCH_CHECK(global_pool != "token", "global_pool 'token' needs a class token, and the state "
                "dict has no cls_token; use 'avg'");
    return "gap";
  }
  if (global_pool.empty()) {
    notes.push_back("head: the class token (timm's default global_pool='token'); a model made "
                    "with global_pool='avg', fc_norm=False has the same tensors: import it with "
                    "--global-pool avg");
    return "token";
  }
  return global_pool == "token" ? "token" : "gap_with_token";
}

// timm's attention heads for a width (no tensor's shape shows them): 64-wide heads, as all its
// ViT/DeiT sizes from tiny to large, except the widths of its huge, giant, gigantic and so400m
// models, which have 16 heads.
int64_t timm_heads_for_width(int64_t dim, std::vector<std::string>& notes) {
  for (const auto& [width, model] : {std::pair<int64_t, const char*>{1152, "so400m"},
                                     {1280, "huge"}, {1408, "giant"}, {1664, "gigantic"}}) {
    if (dim == width) {
      notes.push_back(c10::str("heads = 16, as timm's ", model, " ViTs of width ", dim,
                               " (the tensors cannot tell; --heads sets it)"));
      return 16;
    }
  }
  TORCH_CHECK(dim % 64 == 0, "dim ", dim, " is not a multiple of 64, so timm's 64-wide heads "
              "do not apply and the tensors cannot tell the heads: pass --heads, or the "
              "model's config.json (--config) with model_args.num_heads");
  notes.push_back(c10::str("heads = dim / 64 = ", dim / 64, " (timm's ViT/DeiT sizes; the "
                           "tensors cannot tell; --heads sets it)"));
  return dim / 64;
}

// eva.py's _ape_ models keep no table row for the class token (no_embed_class=True), posenc's
// learned1d has one: a zero row is put in front, so that the class token gets nothing added, as
// there. A table has no such row when its rows make the grid by themselves (the --table-grid
// asked for, else a square) and with the prefix rows left out would not.
torch::Tensor with_prefix_rows(const torch::Tensor& table, int64_t prefix,
                               const ImportOptions& import, std::vector<std::string>* notes) {
  if (import.family != kTimmRopeFamily || prefix == 0 || table.dim() != 3)
    return table;
  const auto square = [](int64_t n) {
    const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
    return n > 0 && side * side == n;
  };
  const int64_t rows = table.size(1);
  const bool grid_only = import.table_height > 0
                             ? rows == import.table_height * import.table_width
                             : square(rows) && !square(rows - prefix);
  if (!grid_only)
    return table;
  if (notes != nullptr)
    notes->push_back(c10::str("pos_embed has no row for the class token (timm's "
                              "no_embed_class=True): a zero row put in front for learned1d"));
  return torch::cat({torch::zeros({1, prefix, table.size(2)}, table.options()), table}, 1);
}

// The grid of a timm-vit pos_embed (1, prefix + H*W, C): the one asked for, else a square one.
TokenGrid timm_table_grid(const torch::Tensor& table, int64_t prefix, const ImportOptions& import,
                          std::vector<std::string>* notes) {
  const int64_t cells = table.size(1) - prefix;
  TORCH_CHECK(cells > 0, "pos_embed has ", table.size(1), " rows: with ", prefix,
              " class token that leaves no grid rows (timm's no_embed_class tables, which have "
              "no class-token row, are not supported)");
  if (import.table_height > 0 || import.table_width > 0) {
    TORCH_CHECK(import.table_height > 0 && import.table_width > 0 &&
                    import.table_height * import.table_width == cells,
                "the table grid ", import.table_height, "x", import.table_width, " does not fit "
                "pos_embed's ", cells, " grid rows (", table.size(1), " rows less ", prefix,
                " prefix); give the grid timm's model was made for: img_size / patch_size");
    return {import.table_height, import.table_width, prefix};
  }
  const auto square_side = [](int64_t rows) {
    const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(rows))));
    return side * side == rows ? side : 0;
  };
  const int64_t side = square_side(cells);
  // 25 rows are a 4x6 grid beside a class token, or a 5x5 table without the class token's row
  const int64_t side_without_prefix = prefix > 0 ? square_side(table.size(1)) : 0;
  TORCH_CHECK(side > 0, "pos_embed has ", table.size(1), " rows: with ", prefix,
              " class token that leaves ", cells, " grid rows, not a square grid: a non-square "
              "table needs its grid, --table-grid HxW (timm's img_size / patch_size)",
              side_without_prefix > 0
                  ? c10::str("; or it is a ", side_without_prefix, "x", side_without_prefix,
                             " table with no row for the class token (timm's no_embed_class), "
                             "which posenc does not support")
                  : std::string());
  if (notes != nullptr)
    notes->push_back(c10::str("pos_embed's ", cells, " grid rows read as a square ", side, "x",
                              side, " grid; a table made for another aspect ratio with as many "
                              "rows needs --table-grid HxW"));
  return {side, side, prefix};
}

// timm's table grid is its img_size / patch_size: the config's input size gives the grid of a
// non-square table when no flag does (and when it fits the table's rows).
ImportOptions with_table_grid_of_config(const StateDict& state, ImportOptions import) {
  const TimmModelConfig& timm = import.config;
  const auto table = state.find("pos_embed");
  const auto patch = state.find("patch_embed.proj.weight");
  if (import.family != "timm-vit" || import.table_height > 0 || import.table_width > 0 ||
      timm.image_height == 0 || table == state.end() || patch == state.end() ||
      table->second.dim() != 3 || patch->second.dim() != 4 || patch->second.size(2) == 0)
    return import;
  const int64_t side = patch->second.size(2);
  const int64_t cells = table->second.size(1) - (state.count("cls_token") > 0 ? 1 : 0);
  if (timm.image_height % side == 0 && timm.image_width % side == 0 &&
      (timm.image_height / side) * (timm.image_width / side) == cells) {
    import.table_height = timm.image_height / side;
    import.table_width = timm.image_width / side;
  }
  return import;
}

// The attention-bias encoding of a timm-beit or timm-relpos-vit state dict, and the side of the
// square window its table was made for (0 for an MLP, which has none). Empty spec: no relative
// position bias (a BEiT with an absolute table only).
struct RelativePositionImport {
  std::string spec;
  int64_t window = 0;
};
RelativePositionImport relative_position_import(const StateDict& state, const std::string& family,
                                                int64_t prefix, std::vector<std::string>& notes) {
  const auto shared_module = relative_position_module(family, "", true);
  const auto block_module = relative_position_module(family, "0", false);
  const auto present = [&](const std::string& module) {
    return state.count(module + ".relative_position_bias_table") > 0 ||
           state.count(module + ".mlp.fc1.weight") > 0;
  };
  const bool shared = present(shared_module);
  TORCH_CHECK(!(shared && present(block_module)), "the state dict has a shared relative position "
              "bias (", shared_module, ") and one per block (", block_module, "): posenc's "
              "models take one attention-bias encoding, per block or shared, not both");
  const auto module = shared ? shared_module : block_module;
  const auto table = state.find(module + ".relative_position_bias_table");
  RelativePositionImport imported;
  if (table != state.end()) {
    // BEiT's (and RelPosBias's) three class-token rows follow the (2H - 1)(2W - 1) offsets
    const int64_t extra = prefix > 0 ? 3 : 0;
    const int64_t offsets = table->second.dim() == 2 ? table->second.size(0) - extra : 0;
    const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(offsets))));
    TORCH_CHECK(offsets > 0 && side * side == offsets && side % 2 == 1,
                table->first, " is ", describe_tensor(table->second), ": with ", extra,
                " class-token rows that leaves ", offsets, " offsets, not a square window's "
                "(2n - 1)^2 (posenc reads the window of square tables only, as timm's checkpoint "
                "filters do)");
    imported.window = (side + 1) / 2;
    imported.spec = c10::str("relpos_bias:shared=", shared ? "true" : "false",
                             ",prefix_entries=", extra > 0 ? "true" : "false",
                             ",resize=geometric,init=zeros");
    notes.push_back(c10::str("attention bias: relpos_bias over a ", imported.window, "x",
                             imported.window, " window (", table->first, "), ",
                             shared ? "shared by every block" : "one per block",
                             extra > 0 ? ", BEiT's class-token entries" : "",
                             "; other grids resampled geometrically, as timm's set_input_size"));
    return imported;
  }
  const auto hidden = state.find(module + ".mlp.fc1.weight");
  if (hidden != state.end()) {
    TORCH_CHECK(family == kTimmRelposFamily, "a relative position MLP (", hidden->first,
                ") is timm's relpos ViT's: import it with --from ", kTimmRelposFamily);
    TORCH_CHECK(hidden->second.dim() == 2 && hidden->second.size(1) == 2, hidden->first,
                " must be (hidden, 2), an MLP of (dy, dx), got ", describe_tensor(hidden->second));
    const bool cr = state.count(module + ".mlp.fc2.bias") > 0;
    imported.spec = c10::str("relpos_mlp:hidden=", hidden->second.size(0),
                             ",mode=", cr ? "cr" : "swin,normalize=grid",
                             ",shared=", shared ? "true" : "false");
    notes.push_back(c10::str("attention bias: relpos_mlp (", module, ".mlp), timm's RelPosMlp ",
                             cr ? "'cr' mode" : "'swin' mode (offsets by the current window)",
                             shared ? ", shared by every block" : ", one per block"));
    return imported;
  }
  TORCH_CHECK(family == kTimmBeitFamily, "the state dict has no relative position bias (",
              block_module, ".relative_position_bias_table or .mlp.fc1.weight, or ",
              shared_module, "'s), which a ", family, " model has");
  return imported;
}

// The architecture that the tensors' shapes describe, plus what they cannot tell.
VisionTransformerOptions infer_options(const StateDict& state, const ImportOptions& import,
                                       std::vector<std::string>& notes) {
  const std::string& family = import.family;
  VisionTransformerOptions options;
  const auto& patch = required(state, "patch_embed.proj.weight", family, "the patch embedding");
  TORCH_CHECK(patch.dim() == 4 && patch.size(2) == patch.size(3),
              "patch_embed.proj.weight must be (dim, channels, p, p), got ",
              describe_tensor(patch));
  options.dim = patch.size(0);
  options.image_channels = patch.size(1);
  options.patch_size = patch.size(2);
  options.depth = count_numbered(state, std::regex(R"(blocks\.(\d+)\..*)"), "blocks");
  TORCH_CHECK(options.depth > 0, "the state dict has no transformer blocks (blocks.N.*)");
  const auto& fc1 = required(state, "blocks.0.mlp.fc1.weight", family, "the MLP");
  options.mlp_ratio = static_cast<double>(fc1.size(0)) / static_cast<double>(options.dim);
  const auto& head = required(state, "head.weight", family, "the classifier");
  options.classes = head.size(0);
  const TimmModelConfig& timm = import.config;
  TORCH_CHECK(timm.classes == 0 || timm.classes == options.classes, "the model config says ",
              timm.classes, " classes (num_classes) but the state dict's head has ",
              options.classes, " rows: is the config that of this model?");
  TORCH_CHECK(timm.channels == 0 || timm.channels == options.image_channels,
              "the model config's input_size has ", timm.channels, " channels but the patch "
              "embedding takes ", options.image_channels, ": is the config that of this model?");
  std::string global_pool = import.global_pool.empty() ? timm.global_pool : import.global_pool;
  if (state.count("fc_norm.weight") > 0) {
    // timm puts the final norm after the pooling (fc_norm) for its avg-pooled heads
    TORCH_CHECK(global_pool != "token", "the state dict has fc_norm (a LayerNorm after the global "
                "average pooling, timm's global_pool='avg'); posenc's fc_norm follows the average "
                "of the patch tokens only: use --global-pool avg, or leave it out");
    global_pool = "avg";
    options.fc_norm = true;
    notes.push_back("head: fc_norm, the final norm after the mean of the patch tokens (timm's "
                    "global_pool='avg')");
  }
  options.head = classifier_head(state.count("cls_token") > 0, global_pool, notes);
  // the attention's input bias: timm's qkv.bias, none, or BEiT's q_bias and v_bias
  if (state.count("blocks.0.attn.q_bias") > 0) {
    options.qkv_bias = "qv";
    notes.push_back("attention: BEiT's q_bias and v_bias, keys without a bias");
  } else if (state.count("blocks.0.attn.qkv.bias") == 0) {
    options.qkv_bias = "none";
    notes.push_back("attention: no qkv bias (timm's qkv_bias=False)");
  }
  options.drop_path = 0.0;
  options.heads = import.heads > 0 ? import.heads : timm.heads;
  if (options.heads == 0)
    options.heads = timm_heads_for_width(options.dim, notes);
  const bool size_given = import.image_height > 0 || import.image_width > 0;
  TORCH_CHECK(!size_given || (import.image_height > 0 && import.image_width > 0),
              "the image size needs both a height and a width, got ", import.image_height, "x",
              import.image_width);
  const bool size_known = size_given || timm.image_height > 0;
  int64_t image_height = size_given ? import.image_height : size_known ? timm.image_height : 224;
  int64_t image_width = size_given ? import.image_width : size_known ? timm.image_width : 224;

  // layer scale: its starting value is not in the tensors, and the weights replace it
  const bool gamma_names = family == kTimmRopeFamily || family == kTimmBeitFamily;
  if (state.count(gamma_names ? "blocks.0.gamma_1" : "blocks.0.ls1.gamma") > 0)
    options.layer_scale = 1e-5;
  const bool learned_table =
      family == "timm-vit" ||
      ((family == kTimmRopeFamily || family == kTimmBeitFamily) && state.count("pos_embed") > 0);
  TORCH_CHECK(learned_table || (import.table_height == 0 && import.table_width == 0),
              "a table grid is for a learned pos_embed; this ", family, " model has none");
  if (learned_table) {
    const auto table = with_prefix_rows(
        required(state, "pos_embed", family, "the learned position table"),
        options.prefix_tokens(), import, &notes);
    TORCH_CHECK(table.dim() == 3 && table.size(0) == 1 && table.size(2) == options.dim,
                "pos_embed must be (1, tokens, ", options.dim, "), got ", describe_tensor(table));
    // prefix tokens posenc's ViT does not have: named here, before their table rows would be
    // misread as a grid that is not square
    std::string extra_prefix;
    for (const char* name : {"reg_token", "dist_token"})
      if (state.count(name) > 0)
        extra_prefix += (extra_prefix.empty() ? "" : ", ") + std::string(name) + " " +
                        describe_tensor(state.at(name));
    TORCH_CHECK(extra_prefix.empty(), "the state dict has prefix tokens posenc's ViT does not "
                "have: ", extra_prefix, " (timm's register tokens, reg_tokens > 0, and DeiT's "
                "distillation token are not supported; posenc supports one class token or none)");
    const TokenGrid table_grid = timm_table_grid(table, options.prefix_tokens(), import, &notes);
    if (!size_known) {
      image_height = table_grid.height * options.patch_size;
      image_width = table_grid.width * options.patch_size;
    }
    options.encodings = {"learned1d"};
    options.conditional_after_blocks = {};
  }
  if (family == kTimmRopeFamily) {
    if (!learned_table)
      options.encodings.clear();
    options.conditional_after_blocks = {};
    const auto frequencies = state.find(kTimmRopeFrequencies);
    if (frequencies != state.end()) {
      const auto& freqs = frequencies->second;
      TORCH_CHECK(freqs.dim() == 4 && freqs.size(0) == 2 && freqs.size(1) == options.depth &&
                      freqs.size(2) == options.heads &&
                      2 * freqs.size(3) * options.heads == options.dim,
                  "rope.freqs must be (2, depth, heads, head_dim / 2) = (2, ", options.depth, ", ",
                  options.heads, ", ", options.dim / options.heads / 2, ") for RoPE-Mixed, got ",
                  describe_tensor(freqs), " (are the heads right? --heads sets them)");
      options.encodings.push_back("rope_mixed");
      notes.push_back("rotary: rope_mixed (rope.freqs, RoPE-Mixed's learnt frequencies)");
    } else {
      options.encodings.push_back("rope_axial");
      notes.push_back("rotary: rope_axial with naver's temperature 100 (timm's vit_*_rope_*; "
                      "RoPE-Axial has no tensors, so a model without rotary attention would "
                      "read the same)");
    }
  } else if (has_relative_position_modules(family)) {
    if (!learned_table)
      options.encodings.clear();
    options.conditional_after_blocks = {};
    const auto bias = relative_position_import(state, family, options.prefix_tokens(), notes);
    if (!bias.spec.empty())
      options.encodings.push_back(bias.spec);
    if (options.encodings.empty())
      options.encodings = {"none"};
    if (!size_known && !learned_table && bias.window > 0) {
      image_height = image_width = bias.window * options.patch_size;
    }
  } else if (family == "cpvt") {
    const int64_t pegs = count_numbered(state, std::regex(R"(pos_block\.(\d+)\.proj\.0\.weight)"),
                                        "pos_block modules");
    TORCH_CHECK(pegs > 0,
                "the state dict has no pos_block.N.proj.0.weight, which a cpvt model needs");
    const auto& weight = state.at("pos_block.0.proj.0.weight");
    TORCH_CHECK(weight.dim() == 4 && weight.size(1) == 1 && weight.size(2) == weight.size(3),
                "pos_block.0.proj.0.weight must be a depthwise kernel (", options.dim,
                ", 1, k, k), got ", describe_tensor(weight));
    const bool bias = state.count("pos_block.0.proj.0.bias") > 0;
    options.encodings = {c10::str("peg:k=", weight.size(2), bias ? "" : ",bias=false")};
    options.conditional_after_blocks.clear();
    const auto& after = import.conditional_after_blocks.empty()
                            ? timm.conditional_after_blocks
                            : import.conditional_after_blocks;
    if (after.empty()) {
      for (int64_t i = 0; i < pegs; ++i)
        options.conditional_after_blocks.push_back(i);
    } else {
      TORCH_CHECK(static_cast<int64_t>(after.size()) == pegs, "--pe-after (or the config's ",
                  "pe_after) names ", after.size(), " blocks but the state dict has ", pegs,
                  " PEGs (pos_block.0..", pegs - 1, ")");
      options.conditional_after_blocks = after;
    }
    notes.push_back(c10::str("pos_block.N runs after blocks ",
                             c10::ArrayRef<int64_t>(options.conditional_after_blocks)));
  } else if (family == "lff") {
    const auto& wr = required(state, "pos_embed.Wr.weight", family, "the Fourier features");
    const auto& hidden = required(state, "pos_embed.mlp.0.weight", family, "the LFF MLP");
    TORCH_CHECK(wr.dim() == 2 && wr.size(1) == 2,
                "pos_embed.Wr.weight must be (F/2, 2) for "
                "positions on the image grid, got ",
                describe_tensor(wr));
    options.encodings = {c10::str("lff:F=", 2 * wr.size(0), ",H=", hidden.size(0))};
    options.conditional_after_blocks = {};
    notes.push_back("LFF positions: patch centres (row + 0.5, column + 0.5) in patch units");
  } else if (family != "timm-vit") {
    std::string families;
    for (const auto& name : pytorch_model_families())
      families += (families.empty() ? "" : ", ") + name;
    TORCH_CHECK(false, "unknown model family '", family, "'; posenc imports: ", families);
  }
  options.image_height = image_height;
  options.image_width = image_width;
  options.validate();
  return options;
}

}  // namespace

const std::vector<std::string>& pytorch_model_families() {
  static const std::vector<std::string> families{
      "timm-vit", kTimmRopeFamily, kTimmBeitFamily, kTimmRelposFamily, "cpvt", "lff"};
  return families;
}

ImportedModel import_pytorch_model(const StateDict& state, const ImportOptions& requested) {
  const ImportOptions import = with_table_grid_of_config(state, requested);
  ImportedModel imported;
  const auto options = infer_options(state, import, imported.notes);
  imported.model = VisionTransformer(options);
  const bool shared_bias = shares_attention_bias(options);

  std::string problems, not_finite;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> assignments;  // (posenc, converted)
  std::set<std::string> used;
  auto items = imported.model->named_parameters();
  for (const auto& buffer : imported.model->named_buffers())
    items.insert(buffer.key(), buffer.value());
  for (const auto& item : items) {
    std::smatch block;
    if (import.family == kTimmRopeFamily &&
        std::regex_match(item.key(), block, block_frequencies_name())) {
      // block i's (2, heads, head_dim / 2) from the (2, depth, ...) of all blocks (checked above)
      const auto& all_blocks = state.at(kTimmRopeFrequencies);
      used.insert(kTimmRopeFrequencies);
      if (!torch::isfinite(all_blocks).all().item<bool>()) {
        not_finite += c10::str("\n  ", kTimmRopeFrequencies, " ", describe_tensor(all_blocks));
        continue;
      }
      const int64_t index = std::stoll(block[1].str());
      assignments.emplace_back(item.value(), all_blocks.select(1, index).to(torch::kFloat32));
      continue;
    }
    const std::string name = pytorch_name(item.key(), import.family, shared_bias);
    const auto found = state.find(name);
    if (found == state.end()) {
      problems += c10::str("\n  missing: ", name, " ", describe_tensor(item.value()));
      continue;
    }
    used.insert(name);
    torch::Tensor tensor = found->second;
    if (name == "pos_embed")
      tensor = with_prefix_rows(tensor, options.prefix_tokens(), import, nullptr);
    if (!tensor.is_floating_point()) {
      problems += c10::str("\n  not floating point: ", name, " is ", describe_tensor(tensor));
      continue;
    }
    if (name == "pos_embed" && tensor.sizes() != item.value().sizes() && tensor.dim() == 3) {
      const TokenGrid from = timm_table_grid(tensor, options.prefix_tokens(), import, nullptr);
      const TokenGrid to = options.trained_grid();
      tensor = resample_grid_table(tensor.to(torch::kFloat32), from, to);
      imported.notes.push_back(c10::str("pos_embed resampled from ", from.describe(), " to ",
                                        to.describe(), " (bicubic, as timm)"));
    }
    if (tensor.sizes() != item.value().sizes()) {
      problems += c10::str("\n  shape differs: ", name, " is ", describe_tensor(tensor),
                           " in the state dict but the model needs ",
                           describe_tensor(item.value()));
      continue;
    }
    if (!torch::isfinite(tensor).all().item<bool>()) {
      const int64_t bad = tensor.numel() - torch::isfinite(tensor).sum().item<int64_t>();
      not_finite += c10::str("\n  ", name, " ", describe_tensor(tensor), ": ", bad,
                             " NaN or infinite values");
      continue;
    }
    if (tensor.scalar_type() != torch::kFloat32) {
      imported.notes.push_back(
          c10::str(name, " converted from ", tensor.scalar_type(), " to float32"));
    }
    assignments.emplace_back(item.value(), tensor.to(torch::kFloat32));
  }
  for (const auto& item : state) {
    if (used.count(item.first) == 0)
      problems += c10::str("\n  not in a ", import.family, " model: ", item.first, " ",
                           describe_tensor(item.second));
  }
  TORCH_CHECK(problems.empty(), "the state dict does not fit the ", import.family,
              " model its shapes describe (dim ", options.dim, ", depth ", options.depth,
              ", patch ", options.patch_size, ", ", options.classes, " classes):", problems);
  TORCH_CHECK(not_finite.empty(),
              "the state dict holds weights that are not finite, from a run that diverged or a "
              "damaged file; the model would predict nan:",
              not_finite);
  torch::NoGradGuard no_grad;
  for (auto& [target, value] : assignments)
    target.copy_(value);
  imported.model->eval();
  return imported;
}

namespace {

// Whether every option of an encoding spec (resolved, as checkpoints store them, or not) is at
// its registered default.
bool at_defaults(const std::string& spec) {
  const auto config = parse_encoding_spec(spec);
  for (const auto& option : find_encoding(config.at("type").get<std::string>()).options)
    if (config.contains(option.key) && config.at(option.key) != option.default_value)
      return false;
  return true;
}

}  // namespace

std::string exported_family(const VisionTransformerOptions& options) {
  std::vector<std::string> types;
  for (const auto& spec : options.encodings)
    types.push_back(parse_encoding_spec(spec).value("type", ""));
  const bool table = types.size() == 2 && types[0] == "learned1d";
  const std::string& rotary = types.empty() ? "" : types.back();
  const bool timm_rotary = rotary == "rope_axial" || rotary == "rope_mixed";
  if (timm_rotary && (types.size() == 1 || table) && options.head == "token")
    return kTimmRopeFamily;
  const auto has = [&](const char* type) {
    return std::find(types.begin(), types.end(), type) != types.end();
  };
  // BEiT's attention (q_bias, v_bias) and its tables; other relative position biases are the
  // relpos ViT's
  if (options.qkv_bias == "qv" && !has("relpos_mlp"))
    return kTimmBeitFamily;
  if (has("relpos_bias") || has("relpos_mlp"))
    return kTimmRelposFamily;
  return "timm-vit";
}

namespace {

// timm's Beit or VisionTransformerRelPos for a model of those families that timm can rebuild: its
// architecture and the model_args its factory does not set. Left without an architecture (the
// state dict still has timm's names) when timm's class has no such model: other encodings beside
// the bias (a learned table in a relpos ViT), a GAP head without fc_norm in BEiT, ...
void add_relative_position_architecture(const VisionTransformerOptions& options,
                                        const std::string& family, ExportedModelConfig& exported) {
  nlohmann::json bias;
  bool learned_table = false;
  for (const auto& spec : options.encodings) {
    auto config = parse_encoding_spec(spec);
    const auto type = config.value("type", "");
    if (type == "relpos_bias" || type == "relpos_mlp")
      bias = config;
    else if (type == "learned1d")
      learned_table = true;
    else if (type != "none")
      return;
  }
  const auto option = [&](const char* key, const nlohmann::json& fallback) {
    return bias.is_null() ? fallback : bias.value(key, fallback);
  };
  const bool shared = option("shared", false).get<bool>();
  auto& args = exported.model_args;
  args["init_values"] = options.layer_scale > 0.0 ? nlohmann::json(options.layer_scale)
                                                   : nlohmann::json(nullptr);
  if (family == kTimmBeitFamily) {
    // BEiT: always a class token; its fc_norm exactly when global_pool='avg'
    const bool avg = options.head == "gap_with_token" && options.fc_norm;
    if (!(options.head == "token" || avg) ||
        (!bias.is_null() && (bias.value("type", "") != "relpos_bias" ||
                             option("prefix_entries", true) != true)))
      return;
    exported.config.architecture = "beit_base_patch16_224";
    args["global_pool"] = exported.config.global_pool = avg ? "avg" : "token";
    args["use_abs_pos_emb"] = learned_table;
    args["use_rel_pos_bias"] = !bias.is_null() && !shared;
    args["use_shared_rel_pos_bias"] = !bias.is_null() && shared;
    return;
  }
  if (learned_table || bias.is_null() || options.qkv_bias == "qv")
    return;
  const bool class_token = options.has_class_token();
  const std::string type = bias.value("type", "");
  if (type == "relpos_bias" && option("prefix_entries", true) != class_token)
    return;
  if (type == "relpos_mlp" && option("mode", "swin") == "swin" &&
      option("normalize", "trained") != "grid")
    return;
  exported.config.architecture = "vit_relpos_base_patch16_224";
  args["class_token"] = class_token;
  args["fc_norm"] = options.fc_norm;
  args["qkv_bias"] = options.qkv_bias == "qkv";
  args["shared_rel_pos"] = shared;
  if (type == "relpos_bias") {
    args["rel_pos_type"] = "bias";
  } else {
    args["rel_pos_type"] = option("mode", "swin") == "cr" ? "mlp" : "mlp_swin";
    args["rel_pos_dim"] = option("hidden", 512);
  }
}

}  // namespace

ExportedModelConfig exported_model_config(const VisionTransformerOptions& options) {
  ExportedModelConfig exported;
  auto& config = exported.config;
  config.classes = options.classes;
  config.heads = options.heads;
  config.channels = options.image_channels;
  config.image_height = options.image_height;
  config.image_width = options.image_width;
  config.global_pool = options.head == "token" ? "token" : "avg";
  if (options.has_conditional_encoding())
    config.conditional_after_blocks = options.conditional_after_blocks;
  // as timm records them: with num_classes and global_pool (timm.create_model(architecture,
  // **model_args))
  exported.model_args = {{"num_classes", options.classes},
                         {"global_pool", config.global_pool},
                         {"img_size", {options.image_height, options.image_width}},
                         {"patch_size", options.patch_size},
                         {"in_chans", options.image_channels},
                         {"embed_dim", options.dim},
                         {"depth", options.depth},
                         {"num_heads", options.heads},
                         {"mlp_ratio", options.mlp_ratio}};
  if (options.layer_scale > 0.0)
    exported.model_args["init_values"] = options.layer_scale;
  // timm builds the family itself: a learned table, any of posenc's heads (timm's
  // class_token, global_pool and fc_norm say which) and a qkv bias or none
  if (options.encodings.size() == 1 && options.qkv_bias != "qv" &&
      parse_encoding_spec(options.encodings[0]).value("type", "") == "learned1d") {
    config.architecture = "vit_base_patch16_224";  // every size argument is in model_args
    exported.model_args["qkv_bias"] = options.qkv_bias == "qkv";
    if (options.head != "token") {
      exported.model_args["class_token"] = options.has_class_token();
      exported.model_args["fc_norm"] = options.fc_norm;
    }
  }
  // and eva.py's RoPE ViTs, whose factories set naver's rotary defaults (posenc's too)
  if (exported_family(options) == kTimmRopeFamily && options.qkv_bias == "qkv") {
    const bool table = options.encodings.size() == 2;
    const bool mixed =
        parse_encoding_spec(options.encodings.back()).value("type", "") == "rope_mixed";
    if (at_defaults(options.encodings.back()))
      config.architecture = c10::str("vit_base_patch16_rope_", mixed ? "mixed_" : "",
                                     table ? "ape_" : "", "224");
    // the factories' layer scale is 1e-5: none must be said
    if (options.layer_scale == 0.0)
      exported.model_args["init_values"] = nullptr;
    // the _ape_ factories make a table without the class token's row; posenc's has one
    if (table)
      exported.model_args["no_embed_class"] = false;
  }
  const std::string family = exported_family(options);
  if (has_relative_position_modules(family))
    add_relative_position_architecture(options, family, exported);
  return exported;
}

StateDict export_pytorch_model(const VisionTransformerImpl& model) {
  const std::string family = exported_family(model.options());
  const bool shared_bias = shares_attention_bias(model.options());
  StateDict state;
  std::vector<torch::Tensor> block_frequencies;  // rope_mixed's, by block
  for (const auto& item : model.named_parameters()) {
    std::smatch block;
    if (family == kTimmRopeFamily &&
        std::regex_match(item.key(), block, block_frequencies_name())) {
      block_frequencies.push_back(item.value().detach());  // named_parameters: in block order
      continue;
    }
    state[pytorch_name(item.key(), family, shared_bias)] = item.value().detach();
  }
  for (const auto& item : model.named_buffers())
    state[pytorch_name(item.key(), family, shared_bias)] = item.value().detach();
  if (!block_frequencies.empty())  // (2, heads, pairs) per block -> (2, depth, heads, pairs)
    state[kTimmRopeFrequencies] = torch::stack(block_frequencies, 1);
  return state;
}

}  // namespace posenc
