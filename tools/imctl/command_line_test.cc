#include "tools/imctl/command_line.h"

#include "gtest/gtest.h"

namespace im::imctl {
namespace {

const std::vector<OptionSpec> kSpecs = {
    {"limit", "N", "page size"}, {"json", "", "JSON"}};

TEST(ParseArgsTest, OptionsAnywhereAndBothValueForms) {
  absl::StatusOr<ParsedArgs> parsed =
      ParseArgs({"12", "--limit", "5", "--json", "x", "--limit=7"}, kSpecs);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->positional, (std::vector<std::string>{"12", "x"}));
  EXPECT_EQ(parsed->get("limit"), "7");
  EXPECT_TRUE(parsed->has("json"));
  EXPECT_FALSE(parsed->help);
}

TEST(ParseArgsTest, DoubleDashKeepsTheRestAsText) {
  absl::StatusOr<ParsedArgs> parsed =
      ParseArgs({"7", "--", "--json", "-h", "text"}, kSpecs);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->positional,
            (std::vector<std::string>{"7", "--json", "-h", "text"}));
  EXPECT_FALSE(parsed->has("json"));
  EXPECT_FALSE(parsed->help);
}

TEST(ParseArgsTest, HelpAndErrors) {
  EXPECT_TRUE(ParseArgs({"--help"}, kSpecs)->help);
  EXPECT_TRUE(ParseArgs({"a", "-h"}, kSpecs)->help);
  EXPECT_EQ(ParseArgs({"--nope"}, kSpecs).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseArgs({"--limit"}, kSpecs).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseArgs({"--json=1"}, kSpecs).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A lone "-" or negative-looking text is positional.
  EXPECT_EQ(ParseArgs({"-", "-5"}, kSpecs)->positional,
            (std::vector<std::string>{"-", "-5"}));
}

TEST(ParseArgsTest, GlobalOptionsStopAtTheCommand) {
  absl::StatusOr<ParsedArgs> parsed =
      ParseArgs({"--limit", "3", "history", "9", "--json"}, kSpecs, true);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->get("limit"), "3");
  EXPECT_EQ(parsed->positional,
            (std::vector<std::string>{"history", "9", "--json"}));
  EXPECT_FALSE(parsed->has("json"));
}

TEST(FormatOptionsTest, AlignsHelp) {
  EXPECT_EQ(FormatOptions(kSpecs),
            "  --limit N   page size\n"
            "  --json      JSON\n");
}

}  // namespace
}  // namespace im::imctl
