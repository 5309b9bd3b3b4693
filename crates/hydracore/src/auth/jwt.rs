//! Dashboard JWTs: verification with a key and algorithm fixed by
//! configuration, and minting for development.

use std::path::PathBuf;

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An HS256 secret shorter than this is refused: RFC 7518 §3.2 asks for a
/// key at least as long as the hash output (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: u64 = 30;

/// How dashboard tokens are verified. One of `secret` or `public_key_file`.
#[derive(Debug, Clone, Default)]
pub struct JwtSettings {
    pub secret: Option<String>,
    /// PEM public key, for `RS256`, `ES256` or `EdDSA` (named by `algorithm`).
    pub public_key_file: Option<PathBuf>,
    pub algorithm: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// When set, a token must carry `iat` and be at most this old.
    pub max_age: Option<std::time::Duration>,
}

/// The claims minted by `hydracore token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant_id: Uuid,
    pub role: String,
    pub exp: i64,
    pub iat: i64,
}

/// What a verified token says about its bearer, before the role check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub sub: String,
    pub tenant_id: Uuid,
    pub role: String,
}

/// Claims as they arrive: every one optional, so that a missing claim is
/// our refusal with a reason rather than a generic decode error.
#[derive(Debug, Deserialize)]
struct RawClaims {
    sub: Option<String>,
    tenant_id: Option<String>,
    role: Option<String>,
    iat: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtConfigError {
    #[error("HYDRACORE_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long (it is {0})")]
    ShortSecret(usize),
    #[error("HYDRACORE_JWT_ALGORITHM must be one of HS256, RS256, ES256, EdDSA (got {0:?})")]
    UnknownAlgorithm(String),
    #[error("HYDRACORE_JWT_ALGORITHM {0} needs HYDRACORE_JWT_PUBLIC_KEY_FILE")]
    MissingPublicKey(&'static str),
    #[error("HYDRACORE_JWT_ALGORITHM HS256 needs HYDRACORE_JWT_SECRET")]
    MissingSecret,
    #[error("set only one of HYDRACORE_JWT_SECRET and HYDRACORE_JWT_PUBLIC_KEY_FILE")]
    BothKeys,
    #[error("cannot read HYDRACORE_JWT_PUBLIC_KEY_FILE {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error(
        "a public key (HYDRACORE_JWT_PUBLIC_KEY_FILE) usually belongs to an identity provider \
         that also mints tokens for other services: set HYDRACORE_JWT_ISSUER and \
         HYDRACORE_JWT_AUDIENCE so that only tokens minted for HydraCore are accepted"
    )]
    PublicKeyWithoutIssuerAndAudience,
}

pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    max_age: Option<std::time::Duration>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused: logged at debug; the client hears only 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("claim {0} is missing or malformed")]
    Claim(&'static str),
    #[error("the token is older than the maximum token age")]
    TooOld,
}

impl JwtVerifier {
    /// The verifier the settings describe; `None` when JWTs are not
    /// configured (the dashboard then takes API keys only).
    pub fn from_settings(settings: &JwtSettings) -> Result<Option<Self>, JwtConfigError> {
        let algorithm = match settings.algorithm.as_deref() {
            None => None,
            Some("HS256") => Some(Algorithm::HS256),
            Some("RS256") => Some(Algorithm::RS256),
            Some("ES256") => Some(Algorithm::ES256),
            Some("EdDSA") => Some(Algorithm::EdDSA),
            Some(other) => return Err(JwtConfigError::UnknownAlgorithm(other.to_owned())),
        };
        let (key, algorithm) = match (&settings.secret, &settings.public_key_file, algorithm) {
            (Some(_), Some(_), _) => return Err(JwtConfigError::BothKeys),
            (None, None, None) => return Ok(None),
            (None, None, Some(Algorithm::HS256)) => return Err(JwtConfigError::MissingSecret),
            (None, None, Some(alg)) => return Err(JwtConfigError::MissingPublicKey(name(alg))),
            (Some(secret), None, None | Some(Algorithm::HS256)) => {
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(JwtConfigError::ShortSecret(secret.len()));
                }
                (
                    DecodingKey::from_secret(secret.as_bytes()),
                    Algorithm::HS256,
                )
            }
            (Some(_), None, Some(alg)) => return Err(JwtConfigError::MissingPublicKey(name(alg))),
            (None, Some(_), None | Some(Algorithm::HS256)) => {
                return Err(JwtConfigError::UnknownAlgorithm(
                    "(set RS256, ES256 or EdDSA for a public key)".into(),
                ))
            }
            (None, Some(path), Some(alg)) => {
                if settings.issuer.is_none() || settings.audience.is_none() {
                    return Err(JwtConfigError::PublicKeyWithoutIssuerAndAudience);
                }
                (public_key(path, alg)?, alg)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_aud = false;
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".into());
        }
        if let Some(audience) = &settings.audience {
            validation.set_audience(&[audience]);
            validation.validate_aud = true;
            validation.required_spec_claims.insert("aud".into());
        }
        Ok(Some(Self {
            key,
            validation,
            max_age: settings.max_age,
        }))
    }

    pub fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let claims = decode::<RawClaims>(token, &self.key, &self.validation)?.claims;
        if let Some(max_age) = self.max_age {
            let issued = claims.iat.ok_or(TokenError::Claim("iat"))?;
            let age = chrono::Utc::now().timestamp().saturating_sub(issued);
            let allowed = max_age.as_secs().saturating_add(LEEWAY_SECONDS);
            // A token issued in the future (beyond the leeway) is as wrong
            // as one too old.
            if age.unsigned_abs() > allowed || age < -(LEEWAY_SECONDS as i64) {
                return Err(TokenError::TooOld);
            }
        }
        let tenant_id = claims
            .tenant_id
            .as_deref()
            .and_then(|t| Uuid::parse_str(t).ok())
            .ok_or(TokenError::Claim("tenant_id"))?;
        Ok(VerifiedToken {
            sub: claims
                .sub
                .filter(|s| !s.is_empty())
                .ok_or(TokenError::Claim("sub"))?,
            tenant_id,
            role: claims.role.ok_or(TokenError::Claim("role"))?,
        })
    }
}

fn name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        _ => "HS256",
    }
}

fn public_key(path: &PathBuf, alg: Algorithm) -> Result<DecodingKey, JwtConfigError> {
    let key_error = |reason: String| JwtConfigError::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| key_error(e.to_string()))?;
    let key = match alg {
        Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => DecodingKey::from_ec_pem(&pem),
        _ => DecodingKey::from_ed_pem(&pem),
    };
    key.map_err(|e| key_error(e.to_string()))
}

/// Mints an HS256 token, as `hydracore token` and `serve --demo` do.
pub fn mint_hs256(
    secret: &str,
    tenant_id: Uuid,
    role: &str,
    sub: &str,
    ttl: std::time::Duration,
) -> anyhow::Result<(String, Claims)> {
    if secret.len() < MIN_SECRET_BYTES {
        anyhow::bail!(JwtConfigError::ShortSecret(secret.len()));
    }
    let now = chrono::Utc::now().timestamp();
    let ttl = i64::try_from(ttl.as_secs())?;
    let claims = Claims {
        sub: sub.to_owned(),
        tenant_id,
        role: role.to_owned(),
        iat: now,
        exp: now.saturating_add(ttl),
    };
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?;
    Ok((token, claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn hs256() -> JwtVerifier {
        let settings = JwtSettings {
            secret: Some(SECRET.into()),
            ..JwtSettings::default()
        };
        JwtVerifier::from_settings(&settings)
            .ok()
            .flatten()
            .expect("configured")
    }

    #[test]
    fn a_short_secret_is_refused() {
        let settings = JwtSettings {
            secret: Some("short".into()),
            ..JwtSettings::default()
        };
        assert!(matches!(
            JwtVerifier::from_settings(&settings),
            Err(JwtConfigError::ShortSecret(5))
        ));
    }

    #[test]
    fn no_key_means_no_jwt_verification() {
        assert!(matches!(
            JwtVerifier::from_settings(&JwtSettings::default()),
            Ok(None)
        ));
    }

    #[test]
    fn a_minted_token_verifies() {
        let tenant = Uuid::new_v4();
        let (token, _) = mint_hs256(
            SECRET,
            tenant,
            "admin",
            "alice",
            std::time::Duration::from_secs(60),
        )
        .expect("mint");
        let verified = hs256().verify(&token).expect("valid");
        assert_eq!(
            verified,
            VerifiedToken {
                sub: "alice".into(),
                tenant_id: tenant,
                role: "admin".into()
            }
        );
    }

    fn signed(claims: serde_json::Value) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("sign")
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn claims(extra: serde_json::Value) -> serde_json::Value {
        let mut c = serde_json::json!({"sub": "a", "tenant_id": Uuid::new_v4(), "role": "admin", "exp": now() + 600});
        for (k, v) in extra.as_object().expect("object") {
            c[k] = v.clone();
        }
        c
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let later = signed(claims(serde_json::json!({"nbf": now() + 300})));
        assert!(hs256().verify(&later).is_err());
        let within_leeway = signed(claims(serde_json::json!({"nbf": now() + 5})));
        assert!(hs256().verify(&within_leeway).is_ok());
    }

    #[test]
    fn with_a_maximum_age_an_old_or_undated_token_is_refused() {
        let settings = JwtSettings {
            secret: Some(SECRET.into()),
            max_age: Some(std::time::Duration::from_secs(3600)),
            ..JwtSettings::default()
        };
        let verifier = JwtVerifier::from_settings(&settings)
            .ok()
            .flatten()
            .expect("configured");
        let fresh = signed(claims(serde_json::json!({"iat": now() - 60})));
        assert!(verifier.verify(&fresh).is_ok());
        let old = signed(claims(serde_json::json!({"iat": now() - 7200})));
        assert!(matches!(verifier.verify(&old), Err(TokenError::TooOld)));
        let undated = signed(claims(serde_json::json!({})));
        assert!(matches!(
            verifier.verify(&undated),
            Err(TokenError::Claim("iat"))
        ));
        let future = signed(claims(serde_json::json!({"iat": now() + 3600})));
        assert!(verifier.verify(&future).is_err());
    }

    #[test]
    fn an_unknown_algorithm_name_is_a_configuration_error() {
        let settings = JwtSettings {
            secret: Some(SECRET.into()),
            algorithm: Some("none".into()),
            ..JwtSettings::default()
        };
        assert!(matches!(
            JwtVerifier::from_settings(&settings),
            Err(JwtConfigError::UnknownAlgorithm(_))
        ));
    }
}

#[cfg(test)]
mod public_key_tests {
    use base64::Engine;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    use super::*;

    /// An Ed25519 key pair: the private key for signing, and the public
    /// key written as a PEM file the way operators would configure it.
    fn ed25519() -> (EncodingKey, Vec<u8>, tempfile::NamedTempFile) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair");
        // SubjectPublicKeyInfo for Ed25519: a fixed prefix, then the key.
        let mut spki = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        spki.extend_from_slice(pair.public_key().as_ref());
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&spki)
        );
        let file = tempfile::NamedTempFile::new().expect("file");
        std::fs::write(file.path(), &pem).expect("write");
        (
            EncodingKey::from_ed_der(pkcs8.as_ref()),
            pem.into_bytes(),
            file,
        )
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({"sub": "bob", "tenant_id": Uuid::new_v4(), "role": "admin", "exp": chrono::Utc::now().timestamp() + 60, "iss": "https://idp.example", "aud": "hydracore"})
    }

    #[test]
    fn a_public_key_without_issuer_and_audience_is_refused_at_start() {
        let (_, _, file) = ed25519();
        for (issuer, audience) in [(None, None), (Some("i"), None), (None, Some("a"))] {
            let settings = JwtSettings {
                public_key_file: Some(file.path().to_path_buf()),
                algorithm: Some("EdDSA".into()),
                issuer: issuer.map(str::to_owned),
                audience: audience.map(str::to_owned),
                ..JwtSettings::default()
            };
            assert!(matches!(
                JwtVerifier::from_settings(&settings),
                Err(JwtConfigError::PublicKeyWithoutIssuerAndAudience)
            ));
        }
    }

    #[test]
    fn an_eddsa_public_key_verifies_tokens_and_refuses_hs256_signed_with_it() {
        let (signing, pem, file) = ed25519();
        let settings = JwtSettings {
            public_key_file: Some(file.path().to_path_buf()),
            algorithm: Some("EdDSA".into()),
            issuer: Some("https://idp.example".into()),
            audience: Some("hydracore".into()),
            ..JwtSettings::default()
        };
        let verifier = JwtVerifier::from_settings(&settings)
            .expect("config")
            .expect("configured");
        let good = encode(&Header::new(Algorithm::EdDSA), &claims(), &signing).expect("sign");
        assert!(verifier.verify(&good).is_ok());
        // The classic confusion attack: HMAC keyed with the public key.
        let forged = encode(
            &Header::default(),
            &claims(),
            &EncodingKey::from_secret(&pem),
        )
        .expect("sign");
        assert!(verifier.verify(&forged).is_err());
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let secret = "0123456789abcdef0123456789abcdef";
        let settings = JwtSettings {
            secret: Some(secret.into()),
            issuer: Some("https://idp.example".into()),
            audience: Some("hydracore".into()),
            ..JwtSettings::default()
        };
        let verifier = JwtVerifier::from_settings(&settings)
            .expect("config")
            .expect("configured");
        let key = EncodingKey::from_secret(secret.as_bytes());
        let with = |extra: serde_json::Value| {
            let mut c = claims();
            let fields = c.as_object_mut().expect("object");
            fields.remove("iss");
            fields.remove("aud");
            for (k, v) in extra.as_object().expect("object") {
                c[k] = v.clone();
            }
            encode(&Header::default(), &c, &key).expect("sign")
        };
        assert!(verifier
            .verify(&with(
                serde_json::json!({"iss": "https://idp.example", "aud": "hydracore"})
            ))
            .is_ok());
        assert!(verifier
            .verify(&with(
                serde_json::json!({"iss": "https://evil.example", "aud": "hydracore"})
            ))
            .is_err());
        assert!(verifier
            .verify(&with(
                serde_json::json!({"iss": "https://idp.example", "aud": "other"})
            ))
            .is_err());
        assert!(verifier.verify(&with(serde_json::json!({}))).is_err());
    }
}
