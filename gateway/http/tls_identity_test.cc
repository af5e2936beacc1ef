#include "gateway/http/tls_identity.h"

#include <cstdio>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "openssl/evp.h"
#include "openssl/pem.h"
#include "openssl/x509v3.h"

namespace gateway::http {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Cert = std::unique_ptr<X509, X509Free>;

// A self-signed P-256 certificate with subject `cn` (and O=Example) and, unless empty, the
// subjectAltName `san` ("URI:spiffe://a/b,DNS:x").
Cert MakeCertificate(const std::string& cn, const std::string& san) {
  std::unique_ptr<EVP_PKEY, KeyFree> key(EVP_EC_gen("P-256"));
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!cn.empty()) {
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("Example"), -1, -1, 0);
  }
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  if (!san.empty()) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
    EXPECT_NE(ext, nullptr) << san;
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert.get(), key.get(), EVP_sha256());
  return cert;
}

TEST(CertificateIdentity, SpiffeIdWins) {
  Cert cert = MakeCertificate("svc", "DNS:svc.internal,URI:spiffe://prod/billing");
  EXPECT_EQ(CertificateIdentity(cert.get()), "spiffe://prod/billing");
}

TEST(CertificateIdentity, FirstUriSanWithoutASingleSpiffeId) {
  Cert cert = MakeCertificate("svc", "URI:https://a.example/x,URI:spiffe://prod/two");
  EXPECT_EQ(CertificateIdentity(cert.get()), "https://a.example/x");
}

TEST(CertificateIdentity, SubjectInRfc2253FormWithoutUriSans) {
  Cert cert = MakeCertificate("client one", "DNS:client.example");
  EXPECT_EQ(CertificateIdentity(cert.get()), "O=Example,CN=client one");
}

TEST(CertificateIdentity, NothingToNameIsEmpty) {
  Cert cert = MakeCertificate("", "");
  EXPECT_EQ(CertificateIdentity(cert.get()), "");
  EXPECT_EQ(CertificateIdentity(nullptr), "");
  EXPECT_EQ(PeerIdentity(nullptr), "");
}

TEST(RequireClientCertificates, NamesAFileThatIsMissingOrHoldsNoCertificate) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()),
                                                        &SSL_CTX_free);
  absl::Status missing = RequireClientCertificates(ctx.get(), "/nonexistent/ca.pem");
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(missing.message()).find("/nonexistent/ca.pem"), std::string::npos);

  const std::string empty = std::string(std::getenv("TEST_TMPDIR")) + "/empty.pem";
  FILE* f = std::fopen(empty.c_str(), "w");
  std::fputs("not a certificate\n", f);
  std::fclose(f);
  EXPECT_EQ(RequireClientCertificates(ctx.get(), empty).code(),
            absl::StatusCode::kInvalidArgument);

  const std::string good = std::string(std::getenv("TEST_TMPDIR")) + "/ca.pem";
  Cert ca = MakeCertificate("test ca", "");
  f = std::fopen(good.c_str(), "w");
  PEM_write_X509(f, ca.get());
  std::fclose(f);
  EXPECT_TRUE(RequireClientCertificates(ctx.get(), good).ok());
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx.get()),
            SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
}

}  // namespace
}  // namespace gateway::http
