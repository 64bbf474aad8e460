#include "storage/mysql/mysql_options.h"

#include "gtest/gtest.h"

namespace im::storage {
namespace {

TEST(ParseMysqlDsnTest, FullDsn) {
  absl::StatusOr<MysqlOptions> o = ParseMysqlDsn(
      "mysql://im%40x:p%3Ass@word@db.example:13306/im_main?pool=32&"
      "acquire_timeout=250ms&connect_timeout=2s&read_timeout=9s&"
      "write_timeout=8s&lock_wait_timeout=4s&validate_after_idle=1s&"
      "max_transaction_attempts=6&max_cached_statements=64");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->user, "im@x");
  EXPECT_EQ(o->password, "p:ss@word");
  EXPECT_EQ(o->host, "db.example");
  EXPECT_EQ(o->port, 13306);
  EXPECT_EQ(o->database, "im_main");
  EXPECT_EQ(o->pool_size, 32);
  EXPECT_EQ(o->acquire_timeout, absl::Milliseconds(250));
  EXPECT_EQ(o->connect_timeout, absl::Seconds(2));
  EXPECT_EQ(o->read_timeout, absl::Seconds(9));
  EXPECT_EQ(o->write_timeout, absl::Seconds(8));
  EXPECT_EQ(o->lock_wait_timeout, absl::Seconds(4));
  EXPECT_EQ(o->validate_after_idle, absl::Seconds(1));
  EXPECT_EQ(o->max_transaction_attempts, 6);
  EXPECT_EQ(o->max_cached_statements, 64);
}

TEST(ParseMysqlDsnTest, Defaults) {
  absl::StatusOr<MysqlOptions> o = ParseMysqlDsn("mysql://im@localhost");
  ASSERT_TRUE(o.ok()) << o.status();
  const MysqlOptions d;
  EXPECT_EQ(o->user, "im");
  EXPECT_EQ(o->password, "");
  EXPECT_EQ(o->host, "localhost");
  EXPECT_EQ(o->port, 3306);
  EXPECT_EQ(o->database, "");
  EXPECT_EQ(o->pool_size, d.pool_size);
  EXPECT_EQ(o->acquire_timeout, d.acquire_timeout);
}

TEST(ParseMysqlDsnTest, Ipv6Host) {
  absl::StatusOr<MysqlOptions> o = ParseMysqlDsn("mysql://im:im@[::1]:3307/db");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 3307);
  EXPECT_EQ(o->database, "db");
}

TEST(ParseMysqlDsnTest, RoundTrip) {
  MysqlOptions o;
  o.host = "10.0.0.7";
  o.port = 3310;
  o.user = "svc user";
  o.password = "p@ss:w/rd?&";
  o.database = "im";
  o.pool_size = 8;
  o.acquire_timeout = absl::Milliseconds(1500);
  absl::StatusOr<MysqlOptions> back = ParseMysqlDsn(MysqlDsn(o));
  ASSERT_TRUE(back.ok()) << back.status() << " for " << MysqlDsn(o);
  EXPECT_EQ(back->host, o.host);
  EXPECT_EQ(back->port, o.port);
  EXPECT_EQ(back->user, o.user);
  EXPECT_EQ(back->password, o.password);
  EXPECT_EQ(back->database, o.database);
  EXPECT_EQ(back->pool_size, 8);
  EXPECT_EQ(back->acquire_timeout, absl::Milliseconds(1500));
  EXPECT_EQ(RedactedMysqlDsn(o).find("p%40ss"), std::string::npos);
  EXPECT_NE(RedactedMysqlDsn(o).find("***"), std::string::npos);
}

TEST(ParseMysqlDsnTest, Rejections) {
  for (const char* dsn : {
           "postgres://im@localhost/db",
           "mysql://localhost/db",            // no user
           "mysql://im@localhost:port/db",    // bad port
           "mysql://im@localhost:70000/db",   // port out of range
           "mysql://im@/db",                  // no host
           "mysql://im@h/db?pool=0",
           "mysql://im@h/db?pool=x",
           "mysql://im@h/db?read_timeout=5",  // no unit
           "mysql://im@h/db?read_timeout=0s",
           "mysql://im@h/db?colour=blue",
           "mysql://im%zz@h/db",
           "mysql://im%4@h/db",
           "mysql://im@[::1/db",
       }) {
    EXPECT_EQ(ParseMysqlDsn(dsn).status().code(),
              absl::StatusCode::kInvalidArgument)
        << dsn;
  }
}

}  // namespace
}  // namespace im::storage
