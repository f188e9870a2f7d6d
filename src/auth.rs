//! Organization API keys: JWTs minted by the CLI, verified on every SCIM request.
//!
//! Verification pins HS256, requires `exp`, `iss` and `sub`, then looks the key id up so a key
//! can be revoked (a short cache keeps that lookup off most requests). Tokens and the
//! `Authorization` header are never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::{ApiKey, KeyKind, Store, StoreError, now_ms};

/// Issuer claim of every scimd key.
const ISSUER: &str = "scimd";
/// Settings row holding a generated secret (embedded SQLite default only).
const SECRET_SETTING: &str = "jwt_secret";
/// Shortest accepted signing secret (HS256 wants at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;
/// Keys minted without `--expires-in` last this long: effectively until revoked.
const DEFAULT_LIFETIME_MS: i64 = 100 * 365 * 24 * 3600 * 1000;

/// The JWT claims of a scimd API key.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The key id (a row of `api_keys`).
    pub sub: String,
    /// The organization id the key is scoped to.
    pub org: String,
    /// "organization" or "personal".
    pub kind: String,
    pub iat: i64,
    pub exp: i64,
}

/// Who is calling: set by the auth layer as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub org_id: Uuid,
    pub key_id: Uuid,
    /// The key's name, for the audit trail (e.g. "okta").
    pub key_name: Option<Arc<str>>,
}

/// Why a request was not authenticated. `Personal` maps to 403, every other reason to 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    InvalidToken,
    Expired,
    UnknownKey,
    Revoked,
    Personal,
    /// The key could not be looked up (database unreachable): 503, not the caller's fault.
    Unavailable,
}

impl AuthFailure {
    /// A short label for logs and metrics (never the token).
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::InvalidToken => "invalid_token",
            AuthFailure::Expired => "expired",
            AuthFailure::UnknownKey => "unknown_key",
            AuthFailure::Revoked => "revoked",
            AuthFailure::Personal => "personal_token",
            AuthFailure::Unavailable => "unavailable",
        }
    }
}

/// Resolves the signing secret: the configured one, or on SQLite a generated one kept in the
/// database so keys survive restarts. Postgres deployments must configure it explicitly,
/// because several processes must share it.
pub async fn resolve_secret(
    store: &dyn Store,
    configured: Option<&str>,
) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        anyhow::ensure!(
            secret.len() >= MIN_SECRET_BYTES,
            "SCIMD_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long"
        );
        return Ok(secret.as_bytes().to_vec());
    }
    anyhow::ensure!(
        store.kind() == "sqlite",
        "SCIMD_JWT_SECRET is not set: it is required with Postgres (at least {MIN_SECRET_BYTES} bytes)"
    );
    if let Some(existing) = store.setting(SECRET_SETTING).await? {
        return Ok(existing.into_bytes());
    }
    let generated = random_hex(32);
    let secret = store.init_setting(SECRET_SETTING, &generated).await?;
    tracing::warn!(
        "SCIMD_JWT_SECRET is not set: generated a signing secret and stored it in the SQLite database"
    );
    Ok(secret.into_bytes())
}

/// `n` random bytes from the operating system, as lowercase hex (secrets and tokens).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a lifetime such as `90d`, `12h`, `30m` or `3600s` into milliseconds.
pub fn parse_duration_ms(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .with_context(|| format!("duration {text:?} needs a unit: s, m, h or d"))?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .with_context(|| format!("duration {text:?} must start with a whole number"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => anyhow::bail!("duration {text:?} has unknown unit {unit:?}: use s, m, h or d"),
    };
    n.checked_mul(unit_ms)
        .filter(|ms| *ms > 0)
        .with_context(|| format!("duration {text:?} is out of range"))
}

/// Signs and verifies keys, and checks them against the store.
pub struct Authenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<Uuid, (Instant, ApiKey)>>,
    cache_ttl: Duration,
    /// Tokens whose signature and claims were already checked: (key id, org id, `exp`).
    /// Checking an HS256 JWT took about 7 % of a GET's CPU; a token is sent on every request.
    verified: Mutex<HashMap<String, VerifiedToken>>,
}

#[derive(Debug, Clone, Copy)]
struct VerifiedToken {
    key_id: Uuid,
    org_id: Uuid,
    exp: i64,
}

/// Most verified tokens remembered at once (one per API key in use, normally).
const MAX_VERIFIED_TOKENS: usize = 10_000;

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(secret: &[u8], store: Arc<dyn Store>, cache_ttl: Duration) -> Authenticator {
        // Pinning the algorithm refuses `alg: none` and HS/RS confusion outright.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        // A key minted for the future is not valid yet.
        validation.validate_nbf = true;
        Authenticator {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            store,
            cache: Mutex::new(HashMap::new()),
            cache_ttl,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Creates a key for `org_id`, stores its id and returns the row and the signed token.
    pub async fn mint(
        &self,
        org_id: Uuid,
        kind: KeyKind,
        name: Option<String>,
        lifetime_ms: Option<i64>,
    ) -> anyhow::Result<(ApiKey, String)> {
        let now = now_ms();
        let key = ApiKey {
            id: Uuid::now_v7(),
            org_id,
            name,
            kind,
            created_at: now,
            expires_at: lifetime_ms.map(|ms| now + ms),
            revoked_at: None,
        };
        let claims = Claims {
            iss: ISSUER.to_string(),
            sub: key.id.to_string(),
            org: org_id.to_string(),
            kind: kind.as_str().to_string(),
            iat: now / 1000,
            exp: (now + lifetime_ms.unwrap_or(DEFAULT_LIFETIME_MS)) / 1000,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        self.store.create_api_key(&key).await?;
        Ok((key, token))
    }

    /// Authenticates an `Authorization` header value.
    #[tracing::instrument(skip_all)]
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthFailure> {
        let header = header.ok_or(AuthFailure::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthFailure::Malformed)?;
        let VerifiedToken { key_id, org_id, .. } = match self.already_verified(token) {
            Some(verified) => verified,
            None => self.verify(token)?,
        };
        // Revocation and kind come from the key's row (cached briefly), never from the token.
        // A signed token names a key this server issued: its refusals are counted per key.
        let key = self.lookup(key_id).await.inspect_err(|failure| {
            if *failure == AuthFailure::UnknownKey {
                crate::metrics::refused_for_key(key_id, 401);
            }
        })?;
        if key.org_id != org_id {
            return Err(AuthFailure::InvalidToken);
        }
        if key.revoked_at.is_some() {
            crate::metrics::refused_for_key(key_id, 401);
            return Err(AuthFailure::Revoked);
        }
        if key.kind == KeyKind::Personal {
            return Err(AuthFailure::Personal);
        }
        Ok(Principal {
            org_id,
            key_id,
            key_name: key.name.as_deref().map(Arc::from),
        })
    }

    /// A token this process verified before and that has not expired since.
    fn already_verified(&self, token: &str) -> Option<VerifiedToken> {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        let found = *verified.get(token)?;
        // The same expiry rule as `Validation` (exp plus leeway); an expired token goes
        // through full verification again, which names the failure.
        (found.exp + self.validation.leeway as i64 > now_ms() / 1000).then_some(found)
    }

    /// Full verification: signature, algorithm, issuer, exp/nbf, then the ids in the claims.
    fn verify(&self, token: &str) -> Result<VerifiedToken, AuthFailure> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthFailure::Expired,
                _ => AuthFailure::InvalidToken,
            })?
            .claims;
        let found = VerifiedToken {
            key_id: Uuid::parse_str(&claims.sub).map_err(|_| AuthFailure::InvalidToken)?,
            org_id: Uuid::parse_str(&claims.org).map_err(|_| AuthFailure::InvalidToken)?,
            exp: claims.exp,
        };
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= MAX_VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_string(), found);
        Ok(found)
    }

    async fn lookup(&self, key_id: Uuid) -> Result<ApiKey, AuthFailure> {
        if !self.cache_ttl.is_zero() {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, key)) = cache.get(&key_id)
                && at.elapsed() < self.cache_ttl
            {
                return Ok(key.clone());
            }
        }
        let key = match self.store.api_key(key_id).await {
            Ok(key) => key,
            Err(StoreError::NotFound) => return Err(AuthFailure::UnknownKey),
            Err(e) => {
                tracing::error!(error = %e, "api key lookup failed");
                return Err(AuthFailure::Unavailable);
            }
        };
        if !self.cache_ttl.is_zero() {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(key_id, (Instant::now(), key.clone()));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_reject_nonsense() {
        let ok = [
            ("30s", 30_000),
            ("15m", 900_000),
            ("2h", 7_200_000),
            ("90d", 7_776_000_000),
        ];
        for (text, ms) in ok {
            assert_eq!(parse_duration_ms(text).unwrap(), ms, "{text}");
        }
        for bad in ["", "10", "d", "10y", "-5d", "0s", "99999999999999999d"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad} should be refused");
        }
    }
}
