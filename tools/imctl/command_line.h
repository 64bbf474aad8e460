#ifndef IM_TOOLS_IMCTL_COMMAND_LINE_H_
#define IM_TOOLS_IMCTL_COMMAND_LINE_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace im::imctl {

// One option a command accepts: --name VALUE (or --name=VALUE), or a
// switch (--name) when value_name is empty.
struct OptionSpec {
  std::string name;
  std::string value_name;
  std::string help;
};

// What a command line said, after the options a command accepts were
// taken out. "--" ends options (so a message may start with "-").
struct ParsedArgs {
  std::vector<std::string> positional;
  absl::flat_hash_map<std::string, std::string> values;
  bool help = false;

  bool has(const std::string& name) const { return values.contains(name); }
  std::string get(const std::string& name,
                  const std::string& fallback = "") const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  }
};

// Parses `args` against `specs`. Options may appear anywhere; -h and
// --help set `help`. INVALID_ARGUMENT for an unknown option or a missing
// value. `stop_at_positional`: the first positional argument and all after
// it are left unparsed (global options before a command).
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<OptionSpec>& specs,
                                     bool stop_at_positional = false);

// "  --name VALUE   help" lines, aligned.
std::string FormatOptions(const std::vector<OptionSpec>& specs);

}  // namespace im::imctl

#endif  // IM_TOOLS_IMCTL_COMMAND_LINE_H_
