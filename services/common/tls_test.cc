// TLS and mTLS listeners and channels (GrpcServer, MakeChannel) with
// certificates from scripts/gen-dev-certs.sh, generated into TEST_TMPDIR.

#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "im/auth/v1/auth.grpc.pb.h"
#include "services/common/grpc_server.h"

namespace im {
namespace {

// Answers WhoAmI with the client certificate's common name as the
// display name (empty when the client presented none).
class PeerIdentityService final : public auth::v1::AuthService::Service {
 public:
  grpc::Status WhoAmI(grpc::ServerContext* context,
                      const auth::v1::WhoAmIRequest*,
                      auth::v1::WhoAmIResponse* response) override {
    std::string common_name;
    for (const grpc::string_ref& value :
         context->auth_context()->FindPropertyValues("x509_common_name")) {
      common_name.assign(value.data(), value.size());
    }
    response->mutable_user()->set_display_name(common_name);
    return grpc::Status::OK;
  }
};

std::string GenerateCerts(const std::string& name) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  const std::string script =
      absl::StrCat(std::getenv("TEST_SRCDIR"), "/im/scripts/gen-dev-certs.sh");
  const std::string command =
      absl::StrCat("bash '", script, "' '", dir, "' >/dev/null");
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  return dir;
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(GenerateCerts("certs"));
    other_certs_ = new std::string(GenerateCerts("other-ca"));
  }
  static void TearDownTestSuite() {
    delete certs_;
    delete other_certs_;
  }

  static std::string Cert(const std::string& file) {
    return absl::StrCat(*certs_, "/", file);
  }

  // Starts a listener: TLS, and mTLS when `require_client_cert`.
  void StartServer(bool require_client_cert) {
    ServerOptions options;
    options.tls.cert_file = Cert("server.crt");
    options.tls.key_file = Cert("server.key");
    if (require_client_cert) options.tls.ca_file = Cert("ca.crt");
    auto server = GrpcServer::Start(options, {&service_});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  // WhoAmI over a channel with `tls`; the common name the server saw.
  grpc::Status Call(const TlsOptions& tls, std::string* common_name = nullptr,
                    const std::string& host = "127.0.0.1") {
    auto channel = MakeChannel(absl::StrCat(host, ":", server_->port()), tls);
    EXPECT_TRUE(channel.ok()) << channel.status();
    auto stub = auth::v1::AuthService::NewStub(*channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    auth::v1::WhoAmIResponse response;
    grpc::Status status =
        stub->WhoAmI(&context, auth::v1::WhoAmIRequest(), &response);
    if (common_name != nullptr) *common_name = response.user().display_name();
    return status;
  }

  TlsOptions ClientTls(bool with_cert) {
    TlsOptions tls;
    tls.ca_file = Cert("ca.crt");
    // Dial 127.0.0.1 (no DNS) and check the certificate's DNS name.
    tls.server_name_override = "localhost";
    if (with_cert) {
      tls.cert_file = Cert("client.crt");
      tls.key_file = Cert("client.key");
    }
    return tls;
  }

  static std::string* certs_;
  static std::string* other_certs_;
  PeerIdentityService service_;
  std::unique_ptr<GrpcServer> server_;
};

std::string* TlsTest::certs_ = nullptr;
std::string* TlsTest::other_certs_ = nullptr;

TEST_F(TlsTest, TlsClientTrustingTheCaConnects) {
  StartServer(/*require_client_cert=*/false);
  std::string common_name = "unset";
  grpc::Status status = Call(ClientTls(false), &common_name);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(common_name, "");
}

TEST_F(TlsTest, TlsByIpAddressSan) {
  StartServer(false);
  TlsOptions tls = ClientTls(false);
  tls.server_name_override.clear();
  grpc::Status status = Call(tls);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(TlsTest, PlaintextClientIsRefusedByTlsListener) {
  StartServer(false);
  grpc::Status status = Call(TlsOptions{});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, ClientNotTrustingTheCaRefusesServer) {
  StartServer(false);
  TlsOptions tls;
  tls.ca_file = absl::StrCat(*other_certs_, "/ca.crt");
  grpc::Status status = Call(tls);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, WrongServerNameIsRefused) {
  StartServer(false);
  TlsOptions tls = ClientTls(false);
  tls.server_name_override = "auth.example.org";
  grpc::Status status = Call(tls);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MtlsClientWithCertificateConnects) {
  StartServer(/*require_client_cert=*/true);
  std::string common_name;
  grpc::Status status = Call(ClientTls(true), &common_name);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(common_name, "im-service");
}

TEST_F(TlsTest, MtlsClientWithoutCertificateIsRefused) {
  StartServer(true);
  grpc::Status status = Call(ClientTls(false));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MtlsClientWithCertificateFromAnotherCaIsRefused) {
  StartServer(true);
  TlsOptions tls = ClientTls(false);
  tls.cert_file = absl::StrCat(*other_certs_, "/client.crt");
  tls.key_file = absl::StrCat(*other_certs_, "/client.key");
  grpc::Status status = Call(tls);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, PlaintextClientIsRefusedByMtlsListener) {
  StartServer(true);
  grpc::Status status = Call(TlsOptions{});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace im
