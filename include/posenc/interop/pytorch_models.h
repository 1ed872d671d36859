#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "posenc/interop/timm_model_config.h"
#include "posenc/interop/torch_save_files.h"
#include "posenc/models/vision_transformer.h"

namespace posenc {

// The PyTorch model families whose state dicts posenc reads and writes. All share timm's names
// for the transformer (cls_token, patch_embed.proj.*, blocks.N.{norm1,attn.qkv,attn.proj,norm2,
// mlp.fc1,mlp.fc2}.*, norm.*, head.*) and differ in the positional encoding:
//   timm-vit  ViT / DeiT: a learned table pos_embed (1, 1 + H*W, C) over class token and grid
//   cpvt      CPVT / Twins / timm PEG: pos_block.N.proj.0.{weight,bias}, a depthwise conv
//             (C, 1, k, k) inside an nn.Sequential, after block N (class-token or GAP head)
//   lff       the common LFF port as the model's pos_embed module: pos_embed.Wr.weight (F/2, 2),
//             pos_embed.mlp.0.* and pos_embed.mlp.2.* (Linear, GELU, Linear), on patch centres
//   timm-rope-vit  timm's eva.py RoPE ViTs: rope.freqs (RoPE-Mixed), gamma_1, gamma_2
//   timm-beit      timm's beit.py (BEiT, BEiT v2): blocks.N.attn.relative_position_bias_table or
//                  rel_pos_bias.relative_position_bias_table (shared), attn.q_bias and v_bias,
//                  gamma_1, gamma_2, optional pos_embed, fc_norm for global_pool='avg'
//   timm-relpos-vit  timm's vision_transformer_relpos.py: blocks.N.attn.rel_pos.
//                  {relative_position_bias_table, mlp.fc1.*, mlp.fc2.*} or shared_rel_pos.*
// Every family reads timm's fc_norm (the norm after the pooling) and a qkv projection without
// a bias (qkv_bias=False).
const std::vector<std::string>& pytorch_model_families();

struct ImportOptions {
  std::string family;  // one of pytorch_model_families()
  // What the model's config.json says (timm_model_config.h): heads, input size, classes,
  // global_pool and the CPVT blocks, used where the fields below are 0 or empty; its classes and
  // channels must match the tensors'.
  TimmModelConfig config;
  // Attention heads do not show in any tensor's shape; 0 takes the config's num_heads, else
  // timm's heads for the width (dim / 64; 16 for its huge and giant widths, noted).
  int64_t heads = 0;
  // The resolution posenc records as the trained one (evaluation default, learned-table grid).
  // 0: the config's input size, else timm-vit takes its table's grid x patch; cpvt and lff,
  // which have no table, 224 x 224.
  // A timm-vit table of another grid is resampled bicubically, as timm does.
  int64_t image_height = 0;
  int64_t image_width = 0;
  // timm-vit: the grid of pos_embed (timm's img_size / patch_size when the table was made), which
  // its row count alone does not give for a non-square one (2 x 8 and 4 x 4 both have 16 rows).
  // 0: a square grid, noted; a row count that is not a square is refused with a hint.
  int64_t table_height = 0;
  int64_t table_width = 0;
  // timm's global_pool: "token" (classify the class token) or "avg" (the mean of the patch
  // tokens). A class-token model made with global_pool='avg', fc_norm=False has the same tensors
  // as one made with 'token': only this option tells them apart. Empty: "token" if the state
  // dict has a cls_token (timm's default, noted), "avg" if it has none.
  std::string global_pool;
  // cpvt: the blocks after which pos_block.0, .1, ... run; empty: 0, 1, 2, ... (CPVT's PEG after
  // block 0, or after each of the first blocks for the stronger variant).
  std::vector<int64_t> conditional_after_blocks;
};

struct ImportedModel {
  VisionTransformer model{nullptr};
  std::vector<std::string> notes;  // what was inferred, converted or resampled, for the user
};

// Builds the posenc VisionTransformer that `state` describes and loads its tensors. Throws with
// every problem listed by name and shape: missing, unexpected, misshapen or non-floating tensors,
// an unknown family. Floating tensors of another precision are converted to float32 (noted).
ImportedModel import_pytorch_model(const StateDict& state, const ImportOptions& options);

// The config.json that `posenc export` writes beside the state dict: classes, heads, input
// size, global_pool and the CPVT blocks; for a timm-vit model with a class-token head, for the
// timm-rope-vit models at their defaults (vit_base_patch16_rope_[mixed_][ape_]224), and for the
// BEiT and relpos ViT models timm's Beit and VisionTransformerRelPos can build
// (beit_base_patch16_224, vit_relpos_base_patch16_224), also timm's architecture and the
// model_args that rebuild it (timm.create_model(architecture, **model_args)). The caller adds the
// normalisation and class names.
struct ExportedModelConfig {
  TimmModelConfig config;
  nlohmann::json model_args;
};
ExportedModelConfig exported_model_config(const VisionTransformerOptions& options);

// The family whose names an export uses: timm-rope-vit (timm's eva.py) for a class-token model
// with rope_axial or rope_mixed, alone or after a learned table; timm-beit for BEiT's attention
// (qkv_bias "qv") without a relpos_mlp; timm-relpos-vit for another model with relpos_bias or
// relpos_mlp; timm-vit otherwise (whose names are also cpvt's and lff's).
std::string exported_family(const VisionTransformerOptions& options);

// The model's tensors under the names of its family (timm-vit, cpvt or lff by its encodings;
// timm-rope-vit as exported_family says: layer scale as gamma_1, gamma_2 and rope_mixed's
// frequencies stacked as rope.freqs; encodings without a PyTorch counterpart keep posenc's
// names), ready for torch.save.
StateDict export_pytorch_model(const VisionTransformerImpl& model);

}  // namespace posenc
