#include "services/gateway/grpc_web_codec.h"

#include <string>

#include "gtest/gtest.h"

namespace im::gateway {
namespace {

using ::std::string_literals::operator""s;

TEST(ParseWebContentTypeTest, AcceptsGrpcWebVariantsOnly) {
  EXPECT_EQ(ParseWebContentType("application/grpc-web"), WebEncoding::kBinary);
  EXPECT_EQ(ParseWebContentType("application/grpc-web+proto"),
            WebEncoding::kBinary);
  EXPECT_EQ(ParseWebContentType("Application/GRPC-Web-Text; charset=utf-8"),
            WebEncoding::kText);
  EXPECT_EQ(ParseWebContentType("application/grpc-web-text+proto"),
            WebEncoding::kText);
  EXPECT_FALSE(ParseWebContentType("application/grpc").has_value());
  EXPECT_FALSE(ParseWebContentType("application/grpc-web+json").has_value());
  EXPECT_FALSE(ParseWebContentType("text/plain").has_value());
  EXPECT_FALSE(ParseWebContentType("").has_value());
}

TEST(FramesTest, MessageFrameIsFlagAndBigEndianLength) {
  EXPECT_EQ(EncodeMessageFrame("abc"), "\x00\x00\x00\x00\x03" "abc"s);
  EXPECT_EQ(EncodeMessageFrame(""), "\x00\x00\x00\x00\x00"s);
  const std::string big(0x010203, 'x');
  EXPECT_EQ(EncodeMessageFrame(big).substr(0, 5), "\x00\x00\x01\x02\x03"s);
}

TEST(FramesTest, TrailerFrameHasHighBitAndHeaderLines) {
  const std::string frame =
      EncodeTrailerFrame({{"grpc-status", "0"}, {"x-a", "b"}});
  const std::string block = "grpc-status: 0\r\nx-a: b\r\n";
  EXPECT_EQ(frame, "\x80\x00\x00\x00"s + static_cast<char>(block.size()) +
                       block);
}

TEST(FramesTest, DecodesExactlyOneUncompressedMessage) {
  EXPECT_EQ(*DecodeSingleMessageFrame("\x00\x00\x00\x00\x02hi"s), "hi");
  EXPECT_EQ(*DecodeSingleMessageFrame("\x00\x00\x00\x00\x00"s), "");
}

TEST(FramesTest, RejectsMalformedRequestBodies) {
  for (const std::string& body : {
           ""s,                                        // empty
           "\x00\x00\x00"s,                            // short header
           "\x00\x00\x00\x00\x05hi"s,                  // truncated
           "\x00\x00\x00\x00\x01hi"s,                  // trailing bytes
           "\x00\x00\x00\x00\x01h\x00\x00\x00\x00\x01i"s,  // two messages
           "\x01\x00\x00\x00\x02hi"s,                  // compressed
           "\x80\x00\x00\x00\x02hi"s,                  // trailers
       }) {
    absl::StatusOr<std::string> message = DecodeSingleMessageFrame(body);
    EXPECT_EQ(message.status().code(), absl::StatusCode::kInvalidArgument)
        << body.size();
  }
}

TEST(Base64Test, DecodesConcatenatedPaddedChunks) {
  EXPECT_EQ(*DecodeBase64Chunks("aGk="), "hi");
  EXPECT_EQ(*DecodeBase64Chunks("aGk=aGk=YWJj"), "hihiabc");
  EXPECT_EQ(*DecodeBase64Chunks("YQ==YWJjZA=="), "aabcd");
  EXPECT_EQ(*DecodeBase64Chunks(""), "");
  EXPECT_EQ(*DecodeBase64Chunks(EncodeBase64Chunk("\x00\xff\x80"s) +
                                EncodeBase64Chunk("z")),
            "\x00\xff\x80z"s);
}

TEST(Base64Test, RejectsMalformedText) {
  EXPECT_EQ(DecodeBase64Chunks("aGk").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeBase64Chunks("a!k=").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeBase64Chunks("a===").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GrpcTimeoutTest, ParsesEveryUnit) {
  EXPECT_EQ(*ParseGrpcTimeout("2H"), absl::Hours(2));
  EXPECT_EQ(*ParseGrpcTimeout("3M"), absl::Minutes(3));
  EXPECT_EQ(*ParseGrpcTimeout("10S"), absl::Seconds(10));
  EXPECT_EQ(*ParseGrpcTimeout("250m"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseGrpcTimeout("7u"), absl::Microseconds(7));
  EXPECT_EQ(*ParseGrpcTimeout("99999999n"), absl::Nanoseconds(99999999));
}

TEST(GrpcTimeoutTest, RejectsMalformedValues) {
  for (const char* value :
       {"", "S", "10", "10s", "-1S", "1.5S", "123456789S", " 1S", "1 S"}) {
    EXPECT_EQ(ParseGrpcTimeout(value).status().code(),
              absl::StatusCode::kInvalidArgument)
        << value;
  }
}

TEST(PercentEncodeTest, EncodesNonPrintableAndPercent) {
  EXPECT_EQ(PercentEncodeGrpcMessage("plain text ok"), "plain text ok");
  EXPECT_EQ(PercentEncodeGrpcMessage("100%"), "100%25");
  EXPECT_EQ(PercentEncodeGrpcMessage("a\r\nb"), "a%0D%0Ab");
  EXPECT_EQ(PercentEncodeGrpcMessage("\xc3\xa9"), "%C3%A9");
}

TEST(MethodPathTest, AcceptsServiceSlashMethodOnly) {
  EXPECT_TRUE(IsGrpcMethodPath("/im.auth.v1.AuthService/Login"));
  EXPECT_TRUE(IsGrpcMethodPath("/Svc/M_1"));
  EXPECT_FALSE(IsGrpcMethodPath("/"));
  EXPECT_FALSE(IsGrpcMethodPath("/index.html"));
  EXPECT_FALSE(IsGrpcMethodPath("/a/b/c"));
  EXPECT_FALSE(IsGrpcMethodPath("/a//"));
  EXPECT_FALSE(IsGrpcMethodPath("/a/b.c"));
  EXPECT_FALSE(IsGrpcMethodPath("/a b/c"));
  EXPECT_FALSE(IsGrpcMethodPath("/../x"));
}

}  // namespace
}  // namespace im::gateway
