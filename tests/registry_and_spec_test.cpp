// The registry builds every encoding by name from JSON or the compact command-line form, and
// rejects configurations it cannot honour with a message that lists the valid alternatives.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "posenc/encoding_registry.h"
#include "posenc/encoding_spec.h"
#include "support/test_encodings.h"

namespace posenc {
namespace {

using testing::expect_error_containing;
const EncodingContext kContext{16, {4, 4, 1}};

TEST(EncodingSpec, ParsesTheCompactFormIntoTypedJson) {
  EXPECT_EQ(parse_encoding_spec("lff:F=64,H=32,gamma=10"),
            (nlohmann::json{{"type", "lff"}, {"F", 64}, {"H", 32}, {"gamma", 10}}));
  EXPECT_EQ(parse_encoding_spec(" peg "), (nlohmann::json{{"type", "peg"}}));
  const auto mixed = parse_encoding_spec("lff:gamma=0.5,learn_fourier=false,coords=normalized");
  EXPECT_TRUE(mixed["gamma"].is_number_float());
  EXPECT_TRUE(mixed["learn_fourier"].is_boolean());
  EXPECT_EQ(mixed["coords"], "normalized");
  EXPECT_EQ(parse_encoding_spec(R"({"type": "peg", "k": 5})"),
            (nlohmann::json{{"type", "peg"}, {"k", 5}}));
}

TEST(EncodingSpec, FormatsBackToTheCompactForm) {
  EXPECT_EQ(format_encoding_spec(parse_encoding_spec("lff:F=64,H=32,coords=index")),
            "lff:F=64,H=32,coords=index");
  EXPECT_EQ(format_encoding_spec(parse_encoding_spec("none")), "none");
}

TEST(EncodingSpec, RejectsMalformedText) {
  expect_error_containing([] { parse_encoding_spec(":F=3"); }, {"no encoding name"});
  expect_error_containing([] { parse_encoding_spec("lff:F"); }, {"'F' is not KEY=VALUE"});
  expect_error_containing([] { parse_encoding_spec("lff:F="); }, {"both a key and a value"});
  expect_error_containing([] { parse_encoding_spec("lff:F=2,F=4"); }, {"'F' is given twice"});
  expect_error_containing([] { parse_encoding_spec("lff:F=2,"); }, {"ends with ','"});
  expect_error_containing([] { parse_encoding_spec("{\"type\": "); }, {"not valid JSON"});
  expect_error_containing([] { parse_encoding_spec("{\"k\": 3}"); }, {"string \"type\""});
  expect_error_containing([] { parse_encoding_spec("lff:F=\xcf\xe9"); },
                          {"not printable ASCII", "0xcf at position 6"});
}

TEST(Registry, BuildsEveryEncodingFromItsNameAndFromItsResolvedConfig) {
  ASSERT_GE(registered_encodings().size(), 7u);
  for (const auto& definition : registered_encodings()) {
    auto encoding = make_encoding(definition.name, kContext);
    EXPECT_EQ(encoding->type(), definition.name);
    auto rebuilt = make_encoding(format_encoding_spec(encoding->config()), kContext);
    EXPECT_EQ(rebuilt->config(), encoding->config()) << definition.name;
  }
}

TEST(Registry, UserOptionsOverrideDefaults) {
  auto encoding = make_encoding("lff:F=8,gamma=3", kContext);
  EXPECT_EQ(encoding->config()["F"], 8);
  EXPECT_EQ(encoding->config()["gamma"], 3);
  EXPECT_EQ(encoding->config()["H"], find_encoding("lff").options[1].default_value);
}

TEST(Registry, UnknownEncodingListsTheRegisteredOnes) {
  expect_error_containing([] { make_encoding("fourier", kContext); },
                          {"unknown encoding 'fourier'", "none, sincos1d, sincos2d", "lff", "peg"});
  expect_error_containing(
      [] {
        make_encoding(nlohmann::json{{"k", 3}}, kContext);
      },
      {"string \"type\""});
}

TEST(Registry, UnknownOptionListsTheValidOnes) {
  expect_error_containing([] { make_encoding("peg:kernel=3", kContext); },
                          {"unknown option 'kernel'", "valid options: k, padding, bias"});
  expect_error_containing([] { make_encoding("none:F=3", kContext); },
                          {"unknown option 'F'", "no options"});
}

TEST(Registry, WrongValueTypesAndChoicesAreRejected) {
  expect_error_containing([] { make_encoding("lff:F=big", kContext); },
                          {"'F'", "integer", "\"big\""});
  expect_error_containing([] { make_encoding("lff:F=6.5", kContext); }, {"'F'", "integer"});
  expect_error_containing([] { make_encoding("lff:gamma=nan", kContext); }, {"'gamma'", "number"});
  expect_error_containing([] { make_encoding("lff:gamma=inf", kContext); }, {"'gamma'", "number"});
  expect_error_containing([] { make_encoding("lff:learn_fourier=1", kContext); },
                          {"'learn_fourier'", "boolean"});
  expect_error_containing([] { make_encoding("lff:init=xavier", kContext); },
                          {"one of paper, port", "'xavier'"});
}

TEST(Registry, NegativeOrZeroSizesAreRejected) {
  expect_error_containing([] { make_encoding("peg", {-4, {4, 4, 1}}); }, {"C) must be >= 1", "-4"});
  expect_error_containing(
      [] {
        make_encoding("learned1d", {8, {-2, 4, 1}});
      },
      {"height and width >= 1", "-2x4"});
  expect_error_containing(
      [] {
        make_encoding("learned1d", {8, {2, 4, -1}});
      },
      {"prefix token count must be >= 0", "-1"});
  expect_error_containing([] { make_encoding("lff:F=-8", kContext); }, {"F = -8"});
  expect_error_containing([] { make_encoding("lff:H=0", kContext); }, {"H = 0"});
}

}  // namespace
}  // namespace posenc
