// The identity of a TLS client that presented a verified certificate (mutual TLS), as the
// auth rules' `identities` match it, the same for the HTTP front end as gRPC reports it for
// the gRPC front end: the certificate's SPIFFE id (its only URI SAN, when that starts with
// "spiffe://"), else its first URI SAN, else its subject in RFC 2253 form
// ("CN=client,O=Example").
//
// Also the server TLS settings for client certificates.
//
// Thread-safety: functions of their arguments only.
//
// Example:
//   RETURN_IF_ERROR(RequireClientCertificates(ssl_ctx, "/etc/gatewayd/clients-ca.pem"));
//   ... after the handshake:
//   std::string identity = PeerIdentity(ssl);  // "spiffe://prod/billing"

#ifndef GATEWAY_HTTP_TLS_IDENTITY_H_
#define GATEWAY_HTTP_TLS_IDENTITY_H_

#include <string>

#include "absl/status/status.h"
#include "openssl/ssl.h"
#include "openssl/x509.h"

namespace gateway::http {

// The identity of `certificate` (see above); empty when it has neither a URI SAN nor a
// subject.
std::string CertificateIdentity(X509* certificate);

// The identity of the peer of an established connection; empty unless it presented a
// certificate that verified.
std::string PeerIdentity(SSL* ssl);

// Makes `ctx` require a client certificate signed by a CA of `ca_file` (PEM bundle): a
// client without one, or with one that does not verify, fails the handshake.
// INVALID_ARGUMENT naming the file when it cannot be read or holds no certificate.
absl::Status RequireClientCertificates(SSL_CTX* ctx, const std::string& ca_file);

}  // namespace gateway::http

#endif  // GATEWAY_HTTP_TLS_IDENTITY_H_
