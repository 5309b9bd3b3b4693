//! TLS to PostgreSQL, over rustls, with libpq's meanings of the database
//! URL's `sslmode`:
//!
//! - `disable`: no TLS.
//! - `prefer` (the default): TLS when the server offers it, else plain;
//!   the certificate is not checked.
//! - `require`: TLS or no connection; the certificate is not checked,
//!   unless a CA file is given, which makes it `verify-ca` (as libpq does
//!   when a root certificate file exists).
//! - `verify-ca`: TLS, and the server's certificate chain must lead to a
//!   trusted root; the host name is not checked.
//! - `verify-full`: `verify-ca`, and the certificate must name the host
//!   the URL connects to (for a `hostaddr`, the `host` beside it).
//!
//! The trusted roots are the CA file in the URL (`sslrootcert=PATH`), or
//! the one the caller gives (the setting `HYDRACORE_DATABASE_CA_FILE`), or
//! else the system's (`sslrootcert=system` asks for those explicitly and,
//! as in libpq 16, for `verify-full`). The URL and the caller naming two
//! different files is refused rather than one silently winning.
//!
//! tokio-postgres's URL parser knows `sslmode` only up to `require` and
//! refuses `sslrootcert`, so [`settings`] takes both out of the URL before
//! handing it the rest. The client certificate parameters (`sslcert`,
//! `sslkey`, ...) are refused with a sentence: none is sent. Unix-socket
//! hosts never use TLS, as with libpq.
//!
//! rustls uses the `ring` provider, given to each configuration: nothing is
//! installed process-wide, so building settings twice (or beside another
//! library that installs a default) cannot panic.
//!
//! Every message here leaves out the URL, which may hold a password.

use std::error::Error as _;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use rustls::{SignatureScheme, SupportedProtocolVersion};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config};
pub use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// libpq's `sslmode`, as [`settings`] applied it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// The word the URL uses for it.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = StoreError;

    fn from_str(value: &str) -> Result<Self, StoreError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(StoreError::Config(
                    "the database URL's sslmode=allow is not supported (it tries without TLS \
                     first): use sslmode=prefer, require, verify-ca or verify-full"
                        .to_owned(),
                ))
            }
            other => {
                // Named only when it looks like a mode, not a misplaced secret.
                let named = if !other.is_empty()
                    && other.len() <= 20
                    && other.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                {
                    format!(" \"{other}\"")
                } else {
                    String::new()
                };
                return Err(StoreError::Config(format!(
                    "the database URL's sslmode{named} is not one HydraCore knows: use disable, \
                     prefer, require, verify-ca or verify-full"
                )));
            }
        })
    }
}

/// What [`connect`] (or a pool's manager) needs to open a connection: the
/// URL read by tokio-postgres without the parameters this module handles,
/// and the TLS connector that applies them.
///
/// `Debug` leaves the password out (tokio-postgres's `Config` redacts it).
#[derive(Clone)]
pub struct PgConnectSettings {
    /// Its `ssl_mode` is tokio-postgres's: `disable`, `prefer`, or
    /// `require` for all three of `require`, `verify-ca` and `verify-full`
    /// (the connector does the checking).
    pub config: Config,
    /// Hands each connection its certificate check. Cheap to clone.
    pub tls: MakeRustlsConnect,
    /// The mode applied, which can differ from the URL's: `require` with a
    /// CA file is `verify-ca`, no `sslmode` is `prefer` (or `verify-full`
    /// with `sslrootcert=system`).
    pub ssl_mode: SslMode,
    /// The URL says `pooler=transaction`: statements must not outlive a
    /// transaction, nor a session be relied on (`statements`).
    pub transaction_pooler: bool,
    roots: Roots,
}

impl fmt::Debug for PgConnectSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnectSettings")
            .field("config", &self.config)
            .field("ssl_mode", &self.ssl_mode)
            .field("transaction_pooler", &self.transaction_pooler)
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

/// Where the trusted root certificates come from, for the messages.
#[derive(Debug, Clone)]
enum Roots {
    /// The mode checks no chain.
    Unchecked,
    File(PathBuf),
    System,
}

impl fmt::Display for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::Unchecked => f.write_str("a trusted certificate authority"),
            Roots::File(path) => write!(f, "the certificate authority in {}", path.display()),
            Roots::System => f.write_str("any of the system's root certificate authorities"),
        }
    }
}

/// Reads `url` (`postgres://`/`postgresql://`, or libpq's `key=value`
/// form), its `sslmode` and `sslrootcert` included; `ca_file` is the CA
/// file given beside the URL (`HYDRACORE_DATABASE_CA_FILE`). Reads the CA
/// file, or the system's roots, now, so that a bad one stops the start.
pub fn settings(url: &str, ca_file: Option<&Path>) -> Result<PgConnectSettings, StoreError> {
    let (rest, params) = take_tls_params(url)?;
    let mut mode = None;
    let mut root_cert = None;
    let mut pooler = false;
    for (key, value) in params {
        match key.as_str() {
            "pooler" => pooler = transaction_pooler(&value)?,
            "sslmode" => mode = Some(value.parse::<SslMode>()?),
            // libpq reads an empty value as none given.
            "sslrootcert" => root_cert = Some(value).filter(|v| !v.is_empty()),
            other => {
                return Err(StoreError::Config(format!(
                    "the database URL's {other} is not supported: HydraCore sends no client \
                     certificate and reads no certificate revocation list"
                )))
            }
        }
    }
    let mut config = Config::from_str(&rest)
        .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;

    let system = root_cert.as_deref() == Some("system");
    let file = match (root_cert.filter(|_| !system).map(PathBuf::from), ca_file) {
        (Some(url_file), Some(given)) if url_file != given => {
            return Err(StoreError::Config(format!(
                "the database URL's sslrootcert ({}) and the CA file given beside it ({}) \
                 differ: give one of them",
                url_file.display(),
                given.display()
            )))
        }
        (Some(file), _) => Some(file),
        (None, Some(given)) if system => {
            return Err(StoreError::Config(format!(
                "the database URL's sslrootcert=system and the CA file given beside it ({}) \
                 conflict: give one of them",
                given.display()
            )))
        }
        (None, given) => given.map(Path::to_path_buf),
    };
    let mode = match mode {
        Some(SslMode::VerifyFull) | None if system => SslMode::VerifyFull,
        Some(weak) if system => {
            return Err(StoreError::Config(format!(
                "the database URL's sslrootcert=system needs sslmode=verify-full, not {weak}"
            )))
        }
        Some(SslMode::Require) if file.is_some() => SslMode::VerifyCa,
        Some(mode) => mode,
        None => SslMode::Prefer,
    };
    if config.get_ssl_negotiation() == tokio_postgres::config::SslNegotiation::Direct
        && matches!(mode, SslMode::Disable | SslMode::Prefer)
    {
        return Err(StoreError::Config(format!(
            "the database URL's sslnegotiation=direct starts with TLS, which sslmode={mode} \
             does not insist on: use sslmode=verify-full or require"
        )));
    }
    if let (Some(file), false) = (&file, mode.verifies()) {
        tracing::warn!(
            ca_file = %file.display(),
            sslmode = %mode,
            "a PostgreSQL CA file is given but this sslmode does not check the server's \
             certificate: use sslmode=verify-full (or verify-ca)"
        );
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let (verifier, roots): (Arc<dyn ServerCertVerifier>, Roots) = if mode.verifies() {
        let roots = match file {
            Some(path) => Roots::File(path),
            None => Roots::System,
        };
        let store = Arc::new(root_store(&roots)?);
        let verifier: Arc<dyn ServerCertVerifier> = if mode == SslMode::VerifyFull {
            WebPkiServerVerifier::builder_with_provider(store, Arc::clone(&provider))
                .build()
                .map_err(|e| {
                    StoreError::Config(format!(
                        "cannot check PostgreSQL server certificates against {roots}: {e}"
                    ))
                })?
        } else {
            Arc::new(ChainOnly {
                roots: store,
                algorithms,
            })
        };
        (verifier, roots)
    } else {
        (Arc::new(Unchecked { algorithms }), Roots::Unchecked)
    };

    config.ssl_mode(match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    });
    // libpq never uses TLS on a Unix socket, whatever the sslmode; the
    // server would answer `require`'s request with a refusal.
    let hosts = config.get_hosts();
    if !hosts.is_empty()
        && config.get_hostaddrs().is_empty()
        && hosts.iter().all(|h| !matches!(h, Host::Tcp(_)))
    {
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
    }

    Ok(PgConnectSettings {
        config,
        tls: MakeRustlsConnect::new(client_config(provider, verifier)?),
        ssl_mode: mode,
        transaction_pooler: pooler,
        roots,
    })
}

/// The URL's `pooler`: `transaction` says that a transaction pooler
/// (PgBouncer's `pool_mode = transaction`) stands between the service and
/// the server; `none`, the default, that none does (a session pooler
/// needs nothing either).
fn transaction_pooler(value: &str) -> Result<bool, StoreError> {
    match value {
        "transaction" => Ok(true),
        "none" | "session" | "" => Ok(false),
        _ => Err(StoreError::Config(
            "the database URL's pooler must be transaction (PgBouncer's pool_mode = \
             transaction), session or none"
                .to_owned(),
        )),
    }
}

impl PgConnectSettings {
    /// `e`, a failure to open a connection with these settings, as a
    /// [`StoreError`]: a refused certificate, a server without TLS for a
    /// mode that needs it, or a refused login is [`StoreError::Config`],
    /// a sentence that says why; the rest as `From` maps it (a server that
    /// cannot be reached is [`StoreError::Unavailable`]). For a pool whose
    /// manager connects by itself.
    pub fn connect_error(&self, e: tokio_postgres::Error) -> StoreError {
        let mode = self.ssl_mode;
        if let Some(tls) = rustls_error(&e) {
            return StoreError::Config(match tls {
                rustls::Error::InvalidCertificate(cert) => self.certificate_refused(cert),
                other => format!(
                    "the TLS handshake with the PostgreSQL server failed (sslmode={mode}): {other}"
                ),
            });
        }
        if let Some(db) = e.as_db_error() {
            // Class 28: the server refused the login (no pg_hba.conf entry,
            // a wrong password): retrying will not help.
            if db.code().code().starts_with("28") {
                let hint = if mode == SslMode::Disable
                    && *db.code()
                        == tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                {
                    " (the URL says sslmode=disable; if the server accepts only TLS \
                     connections, hostssl in pg_hba.conf, use sslmode=verify-full or require)"
                } else {
                    ""
                };
                return StoreError::Config(format!(
                    "the PostgreSQL server refused the login: {}{hint}",
                    db.message()
                ));
            }
        }
        let cause = e.source().map(ToString::to_string).unwrap_or_default();
        if cause == "server does not support TLS" {
            return StoreError::Config(format!(
                "the PostgreSQL server does not offer TLS, and sslmode={mode} requires it: turn \
                 ssl on in the server's configuration, or use sslmode=prefer or disable"
            ));
        }
        if cause == "no hostname provided for TLS handshake" {
            return StoreError::Config(format!(
                "sslmode={mode} needs TLS, which a Unix socket does not carry: give the \
                 PostgreSQL server's host name, or use sslmode=prefer or disable"
            ));
        }
        StoreError::from(e)
    }

    fn certificate_refused(&self, e: &CertificateError) -> String {
        const BY_NAME: &str = ": connect by a host name the certificate lists, or use \
                               sslmode=verify-ca to check only who signed it";
        let (why, advice) = match e {
            CertificateError::UnknownIssuer => (format!("is not signed by {}", self.roots), ""),
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => {
                let names = if presented.is_empty() {
                    "names no host".to_owned()
                } else {
                    let names: Vec<&str> = presented.iter().map(|n| shown_name(n)).collect();
                    format!("is for {}", names.join(", "))
                };
                (
                    format!(
                        "is not valid for the host name \"{}\" (it {names})",
                        expected.to_str()
                    ),
                    BY_NAME,
                )
            }
            CertificateError::NotValidForName => (
                "is not valid for the host name connected to".to_owned(),
                BY_NAME,
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                ("has expired".to_owned(), "")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                "is not valid yet (or this machine's clock is behind)".to_owned(),
                "",
            ),
            CertificateError::BadSignature => {
                ("is not correctly signed by its issuer".to_owned(), "")
            }
            CertificateError::BadEncoding => {
                ("cannot be read (it is badly encoded)".to_owned(), "")
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => (
                "is not meant for a TLS server (see its extended key usage)".to_owned(),
                "",
            ),
            other => (format!("was refused ({other})"), ""),
        };
        format!(
            "the PostgreSQL server's TLS certificate {why}, so no connection was made \
             (sslmode={}){advice}",
            self.ssl_mode
        )
    }
}

/// A name webpki lists as `DnsName("db.example")` or `IpAddress(10.0.0.1)`,
/// as the operator wrote it.
fn shown_name(name: &str) -> &str {
    name.strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| {
            name.strip_prefix("IpAddress(")
                .and_then(|n| n.strip_suffix(')'))
        })
        .unwrap_or(name)
}

/// Opens a connection with `settings` and spawns the task that drives it,
/// which ends when the connection does. Errors as
/// [`PgConnectSettings::connect_error`] says.
pub async fn connect(settings: &PgConnectSettings) -> Result<Client, StoreError> {
    let (client, connection) = settings
        .config
        .connect(settings.tls.clone())
        .await
        .map_err(|e| settings.connect_error(e))?;
    tokio::spawn(async move {
        // Its calls fail with the same error, and are reported there.
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

fn client_config(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<ClientConfig, StoreError> {
    const VERSIONS: &[&SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(|e| StoreError::Config(format!("cannot set up TLS for PostgreSQL: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // What libpq 17 sends: PostgreSQL 17 requires it for
    // sslnegotiation=direct, older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// The trusted roots: every certificate of a PEM file, or the system's.
fn root_store(roots: &Roots) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let shown = path.display();
            let pem = std::fs::read(path).map_err(|e| {
                StoreError::Config(format!("cannot read the PostgreSQL CA file {shown}: {e}"))
            })?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    StoreError::Config(format!(
                        "the PostgreSQL CA file {shown} is not valid PEM: {e}"
                    ))
                })?;
                store.add(cert).map_err(|e| {
                    StoreError::Config(format!(
                        "the PostgreSQL CA file {shown} holds a certificate that cannot be a \
                         root: {e}"
                    ))
                })?;
            }
            if store.is_empty() {
                return Err(StoreError::Config(format!(
                    "the PostgreSQL CA file {shown} holds no certificate (PEM, \
                     -----BEGIN CERTIFICATE-----)"
                )));
            }
        }
        Roots::System | Roots::Unchecked => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                let errors = found
                    .errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(StoreError::Config(format!(
                    "found no system root certificates to check the PostgreSQL server's \
                     certificate{}{errors}: give a CA file (sslrootcert in the URL, or \
                     HYDRACORE_DATABASE_CA_FILE)",
                    if errors.is_empty() { "" } else { ": " }
                )));
            }
        }
    }
    Ok(store)
}

/// The rustls error behind a connection failure, if any: tokio-postgres
/// boxes the handshake's `io::Error`, which carries it.
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // `io::Error::source` skips the error it wraps.
        if let Some(tls) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        next = e.source();
    }
    None
}

/// `prefer` and `require`: any certificate, as libpq; the handshake's
/// signature is still checked against the certificate's key.
struct Unchecked {
    algorithms: WebPkiSupportedAlgorithms,
}

/// `verify-ca`: the chain must lead to a trusted root; any host name.
struct ChainOnly {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for Unchecked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Unchecked")
    }
}

impl fmt::Debug for ChainOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainOnly")
            .field("roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The parameters this module reads, as tokio-postgres would decode them:
/// libpq's TLS ones, and HydraCore's `pooler`.
const TLS_PARAMS: [&str; 9] = [
    "pooler",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslcertmode",
];

/// `url` without [`TLS_PARAMS`], and those (key, decoded value) in order.
/// The rest is left as written, so tokio-postgres reads it as before.
fn take_tls_params(url: &str) -> Result<(String, Vec<(String, String)>), StoreError> {
    let Some(after_scheme) = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
    else {
        return take_key_value_params(url);
    };
    // As tokio-postgres splits it: the credentials run to the first '@',
    // the parameters from the first '?' after them.
    let from = after_scheme.find('@').map_or(0, |at| at + 1);
    let Some(question) = after_scheme[from..].find('?') else {
        return Ok((url.to_owned(), Vec::new()));
    };
    let query_start = url.len() - after_scheme.len() + from + question;
    let (base, query) = (&url[..query_start], &url[query_start + 1..]);
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some((key, value)) if TLS_PARAMS.contains(&decode(key)?.as_str()) => {
                taken.push((decode(key)?, decode(value)?));
            }
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, taken))
}

fn decode(s: &str) -> Result<String, StoreError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            StoreError::Config(
                "the database URL has a parameter that is not UTF-8 once percent-decoded"
                    .to_owned(),
            )
        })
}

/// [`take_tls_params`] for libpq's `key=value key='quoted \' value'` form,
/// read as tokio-postgres reads it.
fn take_key_value_params(s: &str) -> Result<(String, Vec<(String, String)>), StoreError> {
    let malformed = || {
        StoreError::Config(
            "invalid PostgreSQL connection string: expected a postgres:// URL or key=value \
             pairs"
                .to_owned(),
        )
    };
    let bytes = s.as_bytes();
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while let Some(c) = s[i..].chars().next().filter(|c| c.is_whitespace()) {
            i += c.len_utf8();
        }
        i
    };
    let mut kept = String::new();
    let mut taken = Vec::new();
    loop {
        i = skip_ws(i);
        let start = i;
        while let Some(c) = s[i..]
            .chars()
            .next()
            .filter(|&c| !c.is_whitespace() && c != '=')
        {
            i += c.len_utf8();
        }
        let key = &s[start..i];
        if key.is_empty() {
            // Where tokio-postgres stops reading too.
            kept.push_str(&s[start..]);
            break;
        }
        i = skip_ws(i);
        if bytes.get(i) != Some(&b'=') {
            return Err(malformed());
        }
        i = skip_ws(i + 1);
        let quoted = bytes.get(i) == Some(&b'\'');
        if quoted {
            i += 1;
        }
        let mut value = String::new();
        let mut closed = false;
        let mut chars = s[i..].chars();
        while let Some(c) = chars.next() {
            if quoted && c == '\'' {
                i += 1;
                closed = true;
                break;
            }
            if !quoted && c.is_whitespace() {
                break;
            }
            i += c.len_utf8();
            if c == '\\' {
                if let Some(escaped) = chars.next() {
                    i += escaped.len_utf8();
                    value.push(escaped);
                }
            } else {
                value.push(c);
            }
        }
        if (quoted && !closed) || (!quoted && value.is_empty()) {
            return Err(malformed());
        }
        if TLS_PARAMS.contains(&key) {
            taken.push((key.to_owned(), value));
        } else {
            kept.push_str(&s[start..i]);
            kept.push(' ');
        }
    }
    Ok((kept, taken))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_error(result: Result<PgConnectSettings, StoreError>) -> String {
        match result {
            Err(StoreError::Config(message)) => message,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn the_pooler_parameter_is_read_and_never_reaches_the_server() {
        let behind = settings(
            "postgres://u@h:6432/db?pooler=transaction&sslmode=disable",
            None,
        )
        .unwrap();
        assert!(behind.transaction_pooler);
        assert_eq!(behind.config.get_dbname(), Some("db"));
        let direct = settings("postgres://u@h/db?sslmode=disable", None).unwrap();
        assert!(!direct.transaction_pooler);
        let session = settings("host=h dbname=db pooler=session sslmode=disable", None).unwrap();
        assert!(!session.transaction_pooler);
        let message = config_error(settings("postgres://h/db?pooler=statement", None));
        assert!(message.contains("pooler must be transaction"), "{message}");
    }

    #[test]
    fn the_url_loses_only_the_tls_parameters() {
        let (rest, taken) = take_tls_params(
            "postgres://u:p%3Fw@h:5433/db?application_name=a%20b&sslmode=verify-full\
             &sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p%3Fw@h:5433/db?application_name=a%20b&connect_timeout=5"
        );
        assert_eq!(
            taken,
            [
                ("sslmode".to_owned(), "verify-full".to_owned()),
                ("sslrootcert".to_owned(), "/tmp/ca.pem".to_owned())
            ]
        );
        // A '?' in the password belongs to the password.
        let (rest, taken) = take_tls_params("postgresql://u:a?b@h/db?sslmode=disable").unwrap();
        assert_eq!(rest, "postgresql://u:a?b@h/db");
        assert_eq!(taken, [("sslmode".to_owned(), "disable".to_owned())]);
        let (rest, taken) = take_tls_params("postgres://h/db").unwrap();
        assert_eq!((rest.as_str(), taken.len()), ("postgres://h/db", 0));
    }

    #[test]
    fn the_key_value_form_loses_only_the_tls_parameters() {
        let (rest, taken) = take_tls_params(
            "host=h  password = 'it\\'s' sslrootcert='/a dir/ca.pem' user=u sslmode=verify-ca",
        )
        .unwrap();
        assert_eq!(rest.trim_end(), "host=h password = 'it\\'s' user=u");
        assert_eq!(
            taken,
            [
                ("sslrootcert".to_owned(), "/a dir/ca.pem".to_owned()),
                ("sslmode".to_owned(), "verify-ca".to_owned())
            ]
        );
        let config = Config::from_str(&rest).unwrap();
        assert_eq!(config.get_password(), Some(&b"it's"[..]));
        assert!(take_tls_params("host=h sslmode").is_err());
        assert!(take_tls_params("host=h password='open").is_err());
    }

    #[test]
    fn modes_follow_libpq() {
        let mode = |url: &str| settings(url, None).unwrap().ssl_mode;
        assert_eq!(mode("postgres://h/db"), SslMode::Prefer);
        assert_eq!(mode("postgres://h/db?sslmode=disable"), SslMode::Disable);
        assert_eq!(mode("postgres://h/db?sslmode=require"), SslMode::Require);
        let s = settings("postgres://h/db?sslmode=require", None).unwrap();
        assert_eq!(
            s.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        // The system's roots, when this machine has any.
        for url in [
            "postgres://h/db?sslmode=verify-full",
            "postgres://h/db?sslrootcert=system",
        ] {
            match settings(url, None) {
                Ok(s) => assert_eq!(s.ssl_mode, SslMode::VerifyFull),
                Err(e) => assert!(e.to_string().contains("found no system root"), "{e}"),
            }
        }
        // A Unix socket never carries TLS.
        let s = settings("host=/run/postgresql sslmode=require", None).unwrap();
        assert_eq!(
            s.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
    }

    #[test]
    fn require_with_a_ca_file_checks_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        // The file is read for verify-ca, so a missing one says so.
        let message = config_error(settings("postgres://h/db?sslmode=require", Some(&missing)));
        assert!(
            message.contains("cannot read the PostgreSQL CA file"),
            "{message}"
        );
        assert!(message.contains("missing.pem"), "{message}");
    }

    #[test]
    fn bad_settings_are_sentences_without_the_url() {
        let secret = "s3cr3t";
        let message = config_error(settings(
            &format!("postgres://u:{secret}@h/db?sslmode=verify-everything"),
            None,
        ));
        assert!(
            message.contains("sslmode \"verify-everything\" is not one"),
            "{message}"
        );
        assert!(!message.contains(secret), "{message}");

        let message = config_error(settings(
            &format!("postgres://u:{secret}@h/db?sslmode={secret}%2Fx"),
            None,
        ));
        assert!(!message.contains(secret), "{message}");

        let message = config_error(settings("postgres://h/db?sslmode=allow", None));
        assert!(
            message.contains("sslmode=allow is not supported"),
            "{message}"
        );

        let message = config_error(settings("postgres://h/db?sslcert=/c.pem", None));
        assert!(message.contains("sslcert is not supported"), "{message}");

        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let message = config_error(settings(
            &format!("postgres://u:{secret}@h/db?sslmode=verify-full"),
            Some(&empty),
        ));
        assert!(message.contains("holds no certificate"), "{message}");
        assert!(!message.contains(secret), "{message}");

        let message = config_error(settings(
            "postgres://h/db?sslmode=verify-full&sslrootcert=/a.pem",
            Some(Path::new("/b.pem")),
        ));
        assert!(message.contains("differ"), "{message}");

        let message = config_error(settings(
            "postgres://h/db?sslmode=require&sslrootcert=system",
            None,
        ));
        assert!(message.contains("needs sslmode=verify-full"), "{message}");

        let message = config_error(settings("postgres://h/db?sslnegotiation=direct", None));
        assert!(message.contains("sslnegotiation=direct"), "{message}");
    }

    #[test]
    fn settings_can_be_made_again_and_again() {
        // No process-wide provider is installed, so nothing panics the
        // second time, nor beside one installed by someone else.
        for _ in 0..3 {
            settings("postgres://h/db?sslmode=require", None).unwrap();
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        settings("postgres://h/db?sslmode=require", None).unwrap();
    }
}
