#include "tools/imctl/command_line.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace im::imctl {

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<OptionSpec>& specs,
                                     bool stop_at_positional) {
  ParsedArgs parsed;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-' ||
        (arg.size() > 1 && arg[1] != '-' && arg != "-h")) {
      if (stop_at_positional && !options_done) {
        parsed.positional.assign(args.begin() + i, args.end());
        return parsed;
      }
      parsed.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      parsed.help = true;
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto spec = std::find_if(specs.begin(), specs.end(),
                             [&](const OptionSpec& s) { return s.name == name; });
    if (spec == specs.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown option --", name));
    }
    if (spec->value_name.empty()) {
      if (has_value) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " takes no value"));
      }
      parsed.values[name] = "true";
      continue;
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value (", spec->value_name, ")"));
      }
      value = args[++i];
    }
    parsed.values[name] = value;
  }
  return parsed;
}

std::string FormatOptions(const std::vector<OptionSpec>& specs) {
  size_t width = 0;
  std::vector<std::string> heads;
  for (const OptionSpec& spec : specs) {
    std::string head = "--" + spec.name;
    if (!spec.value_name.empty()) absl::StrAppend(&head, " ", spec.value_name);
    width = std::max(width, head.size());
    heads.push_back(std::move(head));
  }
  std::string out;
  for (size_t i = 0; i < specs.size(); ++i) {
    absl::StrAppend(&out, "  ", heads[i],
                    std::string(width - heads[i].size() + 3, ' '),
                    specs[i].help, "\n");
  }
  return out;
}

}  // namespace im::imctl
