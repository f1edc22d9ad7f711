//! PKCS#10 requests, PEM or DER, as `POST /api/v1/certificates` (`csr`) and the CLI take them.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = keyinfra_pki::csr::parse_csr(data);
    });
}
