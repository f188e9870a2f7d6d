//! TLS termination (`SCIMD_TLS_CERT`, `SCIMD_TLS_KEY`): rustls with the `ring` provider,
//! TLS 1.3 and 1.2, HTTP/1.1 announced by ALPN. The SCIM interoperability profile requires
//! TLS 1.3 ("Transport Security"; 1.2 MAY be offered), and RFC 7644 §7.1 requires TLS for
//! every SCIM exchange; a proxy in front of scimd may terminate it instead.
//!
//! The handshake runs in the connection's task under the header-read timeout, so a client
//! that opens a connection and never finishes its handshake is cut off like a slow header.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// The acceptor for the PEM certificate chain at `cert` and its private key at `key`.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain = read_certificates(cert)?;
    let key = read_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not form a usable pair")?;
    // Only HTTP/1.1 is served (see `server.rs`).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read SCIMD_TLS_CERT {} as PEM", path.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "SCIMD_TLS_CERT {} holds no certificate",
        path.display()
    );
    Ok(chain)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).with_context(|| {
        format!(
            "cannot read a private key from SCIMD_TLS_KEY {}",
            path.display()
        )
    })
}
