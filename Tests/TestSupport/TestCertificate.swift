import NIOSSL

/// A throwaway self-signed certificate for 127.0.0.1 (its own CA, valid until 2126) and
/// its key, committed for the tests' TLS fakes: trusted only where a test names it as a
/// channel's `ca_file`, never by the system. Made with: openssl req -x509 -newkey ec
/// -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500 -subj /CN=127.0.0.1
/// -addext subjectAltName=IP:127.0.0.1
public enum TestCertificate {
    public static let certificatePEM = """
-----BEGIN CERTIFICATE-----
MIIBjzCCATagAwIBAgIUPuTPn9ua4DKKHpuRTRDsuISTw9EwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwMzE2MzczOVoYDzIxMjYxMTA5
MTYzNzM5WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQ9/XKO8ZsipFxRG8aC9cyT4b9IiCvhDHuT13IA9hEIRNjVBtZ3nbmY
TetkMdWKuUdUKvIDpPe31NHKvIAA7T+Mo2QwYjAdBgNVHQ4EFgQU5vTHSg5DoK3L
jzaH08+HvYRttt0wHwYDVR0jBBgwFoAU5vTHSg5DoK3LjzaH08+HvYRttt0wDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0cAMEQC
ID/U49hAkySVVZ14alF67KAhxSu7WiMgLgtueFNEhYh8AiA76hb02HZcfVyBZ/xA
SAiGse1BDFN6iJA8gOROLYh39w==
-----END CERTIFICATE-----
"""

    public static let privateKeyPEM = """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgsvBbBD32QnP3OL5C
J3Vp/KSwkGhnSEOb2gbFrXKTkGuhRANCAAQ9/XKO8ZsipFxRG8aC9cyT4b9IiCvh
DHuT13IA9hEIRNjVBtZ3nbmYTetkMdWKuUdUKvIDpPe31NHKvIAA7T+M
-----END PRIVATE KEY-----
"""

    /// A server context presenting the certificate. It offers HTTP/2 first by ALPN, as
    /// Google's servers do, though the fakes speak HTTP/1.1 only: a client that took the
    /// offer would fail every request (stockwatch must not, see HTTPTransport).
    public static func serverContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)))
        configuration.applicationProtocols = ["h2", "http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }
}
