//! TLS as libpq does it, on rustls (statically linked, ring for the cryptography): what each
//! `sslmode` verifies, where the root certificates come from (`sslrootcert` PATH or `system`,
//! `PGSSLROOTCERT`, `~/.postgresql/root.crt`), and the client certificate (`sslcert`/`sslkey`,
//! an encrypted PKCS#8 key opened with `sslpassword`, libpq's permission rule for the key).
//! Errors name the file and what is wrong with it, with libpq's words where it has them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use crate::connect::ClientCert;
use crate::Failure;

/// How the server's certificate is checked.
pub enum Verify<'a> {
    /// Not at all (`prefer`, `require` without a root certificate): encrypted, not authenticated.
    Nothing,
    /// The chain, against these roots (`verify-ca`, and `require` with a root certificate).
    Chain(&'a Option<PathBuf>),
    /// The chain and the host name (`verify-full`).
    Full(&'a Option<PathBuf>),
}

/// The client configuration for a connection.
pub fn config(verify: Verify<'_>, client: Option<&ClientCert>) -> Result<ClientConfig, Failure> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::connect(format!("cannot set up TLS: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::Nothing => Arc::new(Unverified(provider)),
        Verify::Chain(root) | Verify::Full(root) => {
            let roots = Arc::new(roots(root)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| Failure::connect(format!("cannot set up TLS: {e}")))?;
            match verify {
                Verify::Full(_) => webpki,
                _ => Arc::new(ChainOnly(webpki)),
            }
        }
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    match client {
        None => Ok(builder.with_no_client_auth()),
        Some(c) => {
            let (certs, key) = c.load()?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| Failure::connect(format!("sslkey {} is not the key of sslcert {} ({e})", c.key.display(), c.cert.display())))
        }
    }
}

/// The root certificates: a PEM file, `system` (the machine's store, as rustls-native-certs
/// finds it: `SSL_CERT_FILE` and `SSL_CERT_DIR`, then the distribution's bundle), or libpq's
/// default `~/.postgresql/root.crt`.
fn roots(root: &Option<PathBuf>) -> Result<RootCertStore, Failure> {
    let mut store = RootCertStore::empty();
    match root {
        Some(path) if path.as_os_str() == "system" => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found.errors.first().map(|e| format!(": {e}")).unwrap_or_default();
                return Err(Failure::connect(format!("sslrootcert=system: the machine's certificate store holds no certificate{why}")));
            }
        }
        Some(path) => add_pem(&mut store, path)?,
        None => {
            let default = home_root_cert();
            if !default.is_file() {
                return Err(Failure::connect(format!(
                    "sslmode=verify-ca/verify-full needs a root certificate: set sslrootcert=PATH in the URL \
                     (or `system`), PGSSLROOTCERT, or create {}",
                    default.display()
                )));
            }
            add_pem(&mut store, &default)?;
        }
    }
    Ok(store)
}

fn add_pem(store: &mut RootCertStore, path: &Path) -> Result<(), Failure> {
    let bad = |e: &dyn std::fmt::Display| Failure::connect(format!("cannot read sslrootcert {}: {e}", path.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))?.collect::<Result<_, _>>().map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(bad(&"no PEM certificate in it"));
    }
    for c in certs {
        store.add(c).map_err(|e| bad(&e))?;
    }
    Ok(())
}

/// libpq's default root certificate.
pub fn home_root_cert() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".postgresql/root.crt")
}

impl ClientCert {
    /// The certificate chain and its key, refusing a key that others can read (libpq's rule:
    /// u=rw (0600) or less, or u=rw,g=r (0640) for a key owned by root). An encrypted key is
    /// PKCS#8 (`ENCRYPTED PRIVATE KEY`), opened with `sslpassword`.
    pub(crate) fn load(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Failure> {
        use std::os::unix::fs::MetadataExt;
        let bad = |what: &str, path: &Path, e: &dyn std::fmt::Display| Failure::connect(format!("cannot read {what} {}: {e}", path.display()));
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| bad("sslcert", &self.cert, &e))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad("sslcert", &self.cert, &e))?;
        if certs.is_empty() {
            return Err(bad("sslcert", &self.cert, &"no PEM certificate in it"));
        }
        let meta = std::fs::metadata(&self.key).map_err(|e| bad("sslkey", &self.key, &e))?;
        let mode = meta.mode() & 0o777;
        let allowed = if meta.uid() == 0 { 0o640 } else { 0o600 };
        if mode & !allowed != 0 {
            return Err(Failure::connect(format!(
                "private key file {} has group or world access ({mode:o}); it must be u=rw (0600) or less, \
                 or u=rw,g=r (0640) when owned by root",
                self.key.display()
            )));
        }
        let pem = std::fs::read_to_string(&self.key).map_err(|e| bad("sslkey", &self.key, &e))?;
        let key = private_key(&pem, self.password.as_deref()).map_err(|why| bad("sslkey", &self.key, &why))?;
        Ok((certs, key))
    }
}

/// A PEM private key: PKCS#8 (plain or encrypted), PKCS#1 (RSA) or SEC1 (EC).
fn private_key(pem: &str, password: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    if pem.contains("Proc-Type: 4,ENCRYPTED") {
        return Err("a traditional encrypted PEM key (Proc-Type: 4,ENCRYPTED) is not read: convert it to PKCS#8 \
                    (`openssl pkcs8 -topk8 -in KEY -out KEY.p8`, which keeps a passphrase)"
            .into());
    }
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let Some(password) = password else { return Err("not a PEM private key, or encrypted (give sslpassword)".into()) };
        let (_, der) = pkcs8::der::pem::decode_vec(pem.trim().as_bytes()).map_err(|e| format!("not a PEM private key ({e})"))?;
        let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice()).map_err(|e| format!("not a PKCS#8 private key ({e})"))?;
        let document = encrypted.decrypt(password.as_bytes()).map_err(|_| "wrong sslpassword, or not a PEM private key".to_string())?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(document.as_bytes().to_vec())));
    }
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
        if password.is_some() { "wrong sslpassword, or not a PEM private key".into() } else { "not a PEM private key, or encrypted (give sslpassword)".into() }
    })
}

/// `verify-ca`: the chain must lead to a trusted root; the name on it does not count.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(&self, end: &CertificateDer<'_>, mid: &[CertificateDer<'_>], name: &ServerName<'_>, ocsp: &[u8], now: UnixTime) -> Result<ServerCertVerified, Error> {
        match self.0.verify_server_cert(end, mid, name, ocsp, now) {
            Err(Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a root certificate: any certificate (the handshake's
/// signatures are still checked, so the session is with whoever holds that certificate's key).
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(&self, _: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: &ServerName<'_>, _: &[u8], _: UnixTime) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A handshake's error as libpq words it (`certificate verify failed`), with rustls's reason.
pub fn explain(message: &str) -> String {
    match message.find("invalid peer certificate: ") {
        Some(at) => {
            let why = &message[at + "invalid peer certificate: ".len()..];
            let why = match why {
                w if w.starts_with("UnknownIssuer") => "unable to get local issuer certificate (no trusted root signed it)",
                w if w.starts_with("NotValidForName") => "the certificate does not name this host",
                w if w.starts_with("Expired") => "certificate has expired",
                w => w,
            };
            format!("{}certificate verify failed: {why}", &message[..at])
        }
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_handshake_error_says_what_libpq_says() {
        assert_eq!(
            super::explain("error performing TLS handshake: invalid peer certificate: UnknownIssuer"),
            "error performing TLS handshake: certificate verify failed: unable to get local issuer certificate (no trusted root signed it)"
        );
    }

    #[test]
    fn the_channel_binding_hash_follows_the_certificate_s_signature() {
        let cert = |alg: &'static rcgen::SignatureAlgorithm| {
            let key = rcgen::KeyPair::generate_for(alg).unwrap();
            let der = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap().der().to_vec();
            super::end_point(&super::CertificateDer::from(der)).map(|h| h.len())
        };
        assert_eq!(cert(&rcgen::PKCS_ECDSA_P256_SHA256), Some(32));
        assert_eq!(cert(&rcgen::PKCS_ECDSA_P384_SHA384), Some(48));
        assert_eq!(cert(&rcgen::PKCS_ED25519), None);
        assert_eq!(super::signature_algorithm(b"\x30\x01"), None);
    }

    #[test]
    fn keys_are_read_or_refused_by_name() {
        assert!(super::private_key("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", None).unwrap_err().contains("give sslpassword"));
        assert!(super::private_key("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n", Some("x")).unwrap_err().contains("openssl pkcs8 -topk8"));
        assert!(super::private_key("not a key", None).is_err());
    }
}

/// The driver's TLS adapter (what tokio-postgres calls `MakeTlsConnect`), on tokio-rustls, with
/// SCRAM's channel binding (`tls-server-end-point`: the hash of the server's certificate, with
/// the hash of its signature algorithm, as RFC 5929 says), as libpq offers it.
#[derive(Clone)]
pub struct MakeRustls(Arc<ClientConfig>);

impl MakeRustls {
    /// The adapter for connections made with `config`.
    pub fn new(config: ClientConfig) -> MakeRustls {
        MakeRustls(Arc::new(config))
    }
}

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for MakeRustls
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = Connect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Connect, Self::Error> {
        // A unix socket's directory is no host name: the server answers its TLS request with
        // "no" there (plain, as libpq does under `prefer`), so any name serves; a host name
        // TLS cannot carry fails verification by name (verify-full), as it should.
        let name = ServerName::try_from(domain.to_string()).or_else(|_| ServerName::try_from("localhost".to_string()))?;
        Ok(Connect { name, connector: tokio_rustls::TlsConnector::from(self.0.clone()) })
    }
}

/// [`MakeRustls`] for one host.
pub struct Connect {
    name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
}

impl<S> tokio_postgres::tls::TlsConnect<S> for Connect
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<TlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move { self.connector.connect(self.name, stream).await.map(TlsStream) })
    }
}

/// A TLS connection to the server.
pub struct TlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for TlsStream<S> {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        let (_, session) = self.0.get_ref();
        match session.peer_certificates().and_then(|c| c.first()).and_then(|c| end_point(c)) {
            Some(hash) => tokio_postgres::tls::ChannelBinding::tls_server_end_point(hash),
            None => tokio_postgres::tls::ChannelBinding::none(),
        }
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncRead for TlsStream<S> {
    fn poll_read(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for TlsStream<S> {
    fn poll_write(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// `tls-server-end-point` (RFC 5929): the certificate's hash, with the hash function of its
/// signature algorithm, SHA-256 for MD5 and SHA-1; `None` for an algorithm it cannot tell.
fn end_point(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    use ring::digest::{digest, SHA256, SHA384, SHA512};
    let oid = signature_algorithm(cert)?;
    // sha256/384/512WithRSAEncryption, ecdsa-with-SHA256/384/512, RSASSA-PSS (SHA-256 assumed
    // for its parameters, as PostgreSQL's own default certificates use), Ed25519 (none).
    const SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    const SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    let algorithm = match oid {
        SHA384_RSA | ECDSA_SHA384 => &SHA384,
        SHA512_RSA | ECDSA_SHA512 => &SHA512,
        ED25519 => return None,
        _ => &SHA256,
    };
    Some(digest(algorithm, cert.as_ref()).as_ref().to_vec())
}

/// The OID of a certificate's `signatureAlgorithm` (DER: `Certificate ::= SEQUENCE {
/// tbsCertificate, signatureAlgorithm AlgorithmIdentifier, signature }`), read by hand: three
/// length-prefixed values deep.
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    /// One DER value at the start of `b`: (tag, contents, the rest after it).
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = b.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            (rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize), &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }
    let (0x30, certificate, _) = tlv(cert)? else { return None };
    let (0x30, _, rest) = tlv(certificate)? else { return None };
    let (0x30, algorithm, _) = tlv(rest)? else { return None };
    let (0x06, oid, _) = tlv(algorithm)? else { return None };
    Some(oid)
}
