#include "tools/imbench/proc_stats.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace im::imbench {
namespace {

TEST(ProcStatsTest, ReadsOwnRss) {
  absl::StatusOr<uint64_t> rss = ReadRssBytes(getpid());
  ASSERT_TRUE(rss.ok()) << rss.status();
  EXPECT_GT(*rss, 1u << 20);
  EXPECT_EQ(ReadRssBytes(0x7ffffff0).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ProcStatsTest, FindsTheProcessListeningOnAPort) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  absl::StatusOr<pid_t> pid = FindListeningPid(port);
  ASSERT_TRUE(pid.ok()) << pid.status();
  EXPECT_EQ(*pid, getpid());
  close(fd);
  EXPECT_EQ(FindListeningPid(port).status().code(), absl::StatusCode::kNotFound);
}

TEST(ProcStatsTest, PortOfAndLoad) {
  EXPECT_EQ(PortOf("127.0.0.1:50053"), 50053);
  EXPECT_EQ(PortOf("[::1]:7"), 7);
  EXPECT_EQ(PortOf("nohost"), 0);
  EXPECT_GE(LoadAverage()[0], 0.0);
}

}  // namespace
}  // namespace im::imbench
