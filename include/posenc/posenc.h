#pragma once

// Everything a user of posenc needs: the encoding interface, the registry that builds encodings
// by name, and the layouts that say where tokens sit.
#include "posenc/encoding_options.h"
#include "posenc/encoding_registry.h"
#include "posenc/encoding_spec.h"
#include "posenc/grid_table_resampling.h"
#include "posenc/kernels/fourier_features.h"
#include "posenc/kernels/kernel_settings.h"
#include "posenc/kernels/peg_conv.h"
#include "posenc/positional_encoding.h"
#include "posenc/system_info.h"
#include "posenc/token_layout.h"
#include "posenc/version.h"
