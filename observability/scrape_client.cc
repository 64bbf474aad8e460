#include "observability/scrape_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace im::observability {

absl::StatusOr<std::string> Scrape(const std::string& host_port,
                                   const std::string& path) {
  const size_t colon = host_port.rfind(':');
  int port = 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(host_port.substr(colon + 1), &port) ||
      inet_pton(AF_INET, host_port.substr(0, colon).c_str(),
                &address.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an IPv4 host:port: ", host_port));
  }
  address.sin_port = htons(static_cast<uint16_t>(port));

  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&address),
                        sizeof(address)) != 0) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", host_port));
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host_port, "\r\n\r\n");
  size_t written = 0;
  while (written < request.size()) {
    const ssize_t n =
        send(fd, request.data() + written, request.size() - written, 0);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  std::string response;
  char buffer[8192];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
    response.append(buffer, static_cast<size_t>(n));
  }
  close(fd);

  const size_t header_end = response.find("\r\n\r\n");
  const size_t line_end = response.find("\r\n");
  if (header_end == std::string::npos) {
    return absl::InternalError(
        absl::StrCat("no HTTP response from ", host_port));
  }
  const std::string status_line = response.substr(0, line_end);
  if (status_line.find(" 200 ") == std::string::npos) {
    return absl::InternalError(
        absl::StrCat("GET ", path, " on ", host_port, ": ", status_line));
  }
  return response.substr(header_end + 4);
}

}  // namespace im::observability
