//! API keys: JWTs minted by the command line or the admin API, verified on every request.
//!
//! Verification pins HS256, requires `exp`, `iss` and `sub`, picks the secret the header's
//! `kid` names (`secrets.rs`), then looks the key id up so a key can be revoked (a short
//! cache keeps that lookup off most requests). Organization keys reach the SCIM endpoints,
//! admin keys the admin API, and each is refused (403) by the other's. A key's use is
//! recorded at most once a minute (`last_used`). Tokens and the `Authorization` header are
//! never logged.

mod secrets;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use secrets::{SecretRefusal, SecretSet};

use crate::store::{ApiKey, KeyKind, KeyUse, Store, StoreError, now_ms};

/// Issuer claim of every scimd key.
const ISSUER: &str = "scimd";
/// Settings row holding a generated secret (embedded SQLite default only).
const SECRET_SETTING: &str = "jwt_secret";
/// Shortest accepted signing secret (HS256 wants at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;
/// Keys minted without `--expires-in` last this long: effectively until revoked.
const DEFAULT_LIFETIME_MS: i64 = 100 * 365 * 24 * 3600 * 1000;
/// The longest duration accepted (a key's lifetime, an age to read the log from).
const MAX_DURATION_MS: i64 = 36_500 * 86_400_000;

/// The JWT claims of a scimd API key.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The key id (a row of `api_keys`).
    pub sub: String,
    /// The organization id the key is scoped to (none for an admin key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// "organization", "personal" or "admin".
    pub kind: String,
    pub iat: i64,
    pub exp: i64,
}

/// The operator behind an admin API request: set by the admin auth layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPrincipal {
    pub key_id: Uuid,
    pub key_name: Option<Arc<str>>,
}

/// Who is calling: set by the auth layer as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub org_id: Uuid,
    pub key_id: Uuid,
    /// The key's name, for the audit trail (e.g. "okta").
    pub key_name: Option<Arc<str>>,
}

/// Why a request was not authenticated. `Personal`, `AdminKey` and `NotAdmin` map to 403
/// (the key is genuine but not for this endpoint), `Unavailable` to 503, every other reason
/// to 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    InvalidToken,
    Expired,
    UnknownKey,
    Revoked,
    /// Its organization was deleted.
    OrgDeleted,
    /// Signed with a secret that has been retired.
    RetiredSecret,
    Personal,
    /// An admin key on a SCIM endpoint.
    AdminKey,
    /// An organization key or personal token on the admin API.
    NotAdmin,
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
            AuthFailure::OrgDeleted => "org_deleted",
            AuthFailure::RetiredSecret => "retired_secret",
            AuthFailure::Personal => "personal_token",
            AuthFailure::AdminKey => "admin_key",
            AuthFailure::NotAdmin => "not_admin",
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
        .filter(|ms| *ms > 0 && *ms <= MAX_DURATION_MS)
        .with_context(|| format!("duration {text:?} is out of range (at most 36500d)"))
}

/// Signs and verifies keys, and checks them against the store.
pub struct Authenticator {
    /// The initial secret (`SCIMD_JWT_SECRET`, or SQLite's generated one).
    initial: Arc<[u8]>,
    /// Every secret, as last read from the store (re-read when stale: `request_secrets`).
    secrets: Arc<RwLock<Arc<SecretSet>>>,
    /// When the secrets were last read (or a read last failed); none: never, or forgotten.
    secrets_read: Arc<Mutex<Option<Instant>>>,
    /// A re-read is running in the background.
    refreshing: Arc<std::sync::atomic::AtomicBool>,
    /// When a token with an unknown `kid` last made this process re-read the secrets.
    unknown_kid_read: Mutex<Option<Instant>>,
    validation: Validation,
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<Uuid, (Instant, ApiKey)>>,
    cache_ttl: Duration,
    /// Tokens whose signature and claims were already checked.
    /// Checking an HS256 JWT took about 7 % of a GET's CPU; a token is sent on every request.
    /// Keyed by the whole token, hashed with foldhash (seeded per process): SipHash over a
    /// token of some 250 bytes was about 1 % of a GET's instructions.
    verified: Mutex<HashMap<String, VerifiedToken, foldhash::quality::RandomState>>,
    /// When this process last recorded each key's use.
    uses_recorded: Mutex<HashMap<Uuid, Instant>>,
}

/// One re-read of the secrets, detached from the authenticator so it can run in the
/// background.
struct SecretsRefresher {
    store: Arc<dyn Store>,
    initial: Arc<[u8]>,
    secrets: Arc<RwLock<Arc<SecretSet>>>,
    secrets_read: Arc<Mutex<Option<Instant>>>,
}

impl SecretsRefresher {
    /// Reads the secrets and installs them; a failed read keeps the last set and counts as
    /// a read, so the next attempt waits for the interval.
    async fn run(self) {
        match self.store.signing_secrets().await {
            Ok(rows) => {
                let set = Arc::new(SecretSet::build(&self.initial, &rows));
                *self.secrets.write().unwrap_or_else(|e| e.into_inner()) = set;
            }
            Err(e) => tracing::warn!(error = %e, "could not read the signing secrets"),
        }
        *self.secrets_read.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }
}

#[derive(Debug, Clone)]
struct VerifiedToken {
    key_id: Uuid,
    org_id: Option<Uuid>,
    admin: bool,
    /// The secret that verified it: checked again on every use, so a retirement applies
    /// to tokens verified before it.
    secret_id: Arc<str>,
    exp: i64,
}

/// Most verified tokens remembered at once (one per API key in use, normally).
const MAX_VERIFIED_TOKENS: usize = 10_000;
/// A key's use is recorded at most this often by one process (and by all together: the
/// store skips a record within a minute of the last).
const KEY_USE_INTERVAL: Duration = Duration::from_secs(60);
/// The secrets are re-read at most this often even without a key cache: a query per request
/// would buy nothing (a change made in this process applies at once: `forget_cached`).
const MIN_SECRETS_REREAD: Duration = Duration::from_secs(1);
/// A token naming a secret this process does not know makes it read the secrets again at
/// most this often (another process may have rotated; a forged `kid` must not cost a query
/// per request).
const UNKNOWN_SECRET_REREAD: Duration = Duration::from_secs(1);

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Authenticator {
    /// `cache_ttl` bounds how long a key's row and the set of secrets are remembered: a
    /// revocation or a secret's rotation or retirement reaches this process within it.
    pub fn new(initial: &[u8], store: Arc<dyn Store>, cache_ttl: Duration) -> Authenticator {
        // Pinning the algorithm refuses `alg: none` and HS/RS confusion outright.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        // A key minted for the future is not valid yet.
        validation.validate_nbf = true;
        Authenticator {
            secrets: Arc::new(RwLock::new(Arc::new(SecretSet::build(initial, &[])))),
            initial: Arc::from(initial),
            secrets_read: Arc::new(Mutex::new(None)),
            refreshing: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            unknown_kid_read: Mutex::new(None),
            validation,
            store,
            cache: Mutex::new(HashMap::new()),
            cache_ttl,
            verified: Mutex::new(HashMap::default()),
            uses_recorded: Mutex::new(HashMap::new()),
        }
    }

    /// The secrets, read again from the store when older than the cache time (at least
    /// [`MIN_SECRETS_REREAD`]; with `unknown_kid`, at most once per
    /// [`UNKNOWN_SECRET_REREAD`]). A failed read keeps the last set.
    pub async fn secrets(&self, unknown_kid: bool) -> Arc<SecretSet> {
        let stale = if unknown_kid {
            let mut read = self
                .unknown_kid_read
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let due = read.is_none_or(|at| at.elapsed() >= UNKNOWN_SECRET_REREAD);
            if due {
                *read = Some(Instant::now());
            }
            due
        } else {
            let read = self.secrets_read.lock().unwrap_or_else(|e| e.into_inner());
            read.is_none_or(|at| at.elapsed() >= self.cache_ttl.max(MIN_SECRETS_REREAD))
        };
        if stale {
            self.refresher().run().await;
        }
        Arc::clone(&self.secrets.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The secrets for verifying a request: never waits for the database once they were
    /// read (a stale set is re-read in the background, so an outage does not add a wait to
    /// every request); the first use after start or after `forget_cached` waits for one read.
    pub async fn request_secrets(&self) -> Arc<SecretSet> {
        use std::sync::atomic::Ordering;
        let read = *self.secrets_read.lock().unwrap_or_else(|e| e.into_inner());
        match read {
            None => return self.secrets(false).await,
            Some(at)
                if at.elapsed() >= self.cache_ttl.max(MIN_SECRETS_REREAD)
                    && !self.refreshing.swap(true, Ordering::SeqCst) =>
            {
                let refresher = self.refresher();
                let refreshing = Arc::clone(&self.refreshing);
                tokio::spawn(async move {
                    refresher.run().await;
                    refreshing.store(false, Ordering::SeqCst);
                });
            }
            Some(_) => {}
        }
        Arc::clone(&self.secrets.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn refresher(&self) -> SecretsRefresher {
        SecretsRefresher {
            store: Arc::clone(&self.store),
            initial: Arc::clone(&self.initial),
            secrets: Arc::clone(&self.secrets),
            secrets_read: Arc::clone(&self.secrets_read),
        }
    }

    /// Creates a key (for `org_id`, or an admin key without one), signed with the newest
    /// active secret; stores its row and returns it with the token.
    pub async fn mint(
        &self,
        org_id: Option<Uuid>,
        kind: KeyKind,
        name: Option<String>,
        lifetime_ms: Option<i64>,
    ) -> anyhow::Result<(ApiKey, String)> {
        anyhow::ensure!(
            org_id.is_some() != (kind == KeyKind::Admin),
            "an admin key has no organization; every other key has one"
        );
        let secrets = self.secrets(false).await;
        let secret = secrets
            .signing()
            .context("every signing secret is retired: rotate one in first")?;
        let now = now_ms();
        let key = ApiKey {
            id: Uuid::now_v7(),
            org_id,
            name,
            kind,
            created_at: now,
            expires_at: lifetime_ms.map(|ms| now.saturating_add(ms)),
            revoked_at: None,
            secret_id: secret.id.clone(),
            last_used: None,
            org_deleted: false,
        };
        let claims = Claims {
            iss: ISSUER.to_string(),
            sub: key.id.to_string(),
            org: org_id.map(|id| id.to_string()),
            kind: kind.as_str().to_string(),
            iat: now / 1000,
            exp: now.saturating_add(lifetime_ms.unwrap_or(DEFAULT_LIFETIME_MS)) / 1000,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(secret.id.clone());
        let token = jsonwebtoken::encode(&header, &claims, &secret.encoding)?;
        match kind {
            KeyKind::Admin => self.store.create_admin_key(&key).await?,
            _ => self.store.create_api_key(&key).await?,
        }
        Ok((key, token))
    }

    /// Authenticates an `Authorization` header value for the SCIM endpoints: an
    /// organization key.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthFailure> {
        let key = self.key_of(header).await?;
        match (key.kind, key.org_id) {
            (KeyKind::Personal, _) => Err(AuthFailure::Personal),
            (KeyKind::Admin, _) => Err(AuthFailure::AdminKey),
            (KeyKind::Organization, Some(org_id)) => Ok(Principal {
                org_id,
                key_id: key.id,
                key_name: key.name.as_deref().map(Arc::from),
            }),
            (KeyKind::Organization, None) => Err(AuthFailure::InvalidToken),
        }
    }

    /// Authenticates an `Authorization` header value for the admin API: an admin key.
    pub async fn authenticate_admin(
        &self,
        header: Option<&str>,
    ) -> Result<AdminPrincipal, AuthFailure> {
        let key = self.key_of(header).await?;
        if key.kind != KeyKind::Admin {
            return Err(AuthFailure::NotAdmin);
        }
        Ok(AdminPrincipal {
            key_id: key.id,
            key_name: key.name.as_deref().map(Arc::from),
        })
    }

    /// The key a header's token names, verified and usable.
    async fn key_of(&self, header: Option<&str>) -> Result<ApiKey, AuthFailure> {
        let header = header.ok_or(AuthFailure::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthFailure::Malformed)?;
        let secrets = self.request_secrets().await;
        let verified = match self.already_verified(token, &secrets) {
            Some(verified) => verified,
            None => self.verify(token, secrets).await?,
        };
        // Revocation and kind come from the key's row (cached briefly), never from the token.
        // A signed token names a key this server issued: its refusals are counted per key.
        let key = self
            .lookup(verified.key_id, verified.admin)
            .await
            .inspect_err(|failure| {
                if *failure == AuthFailure::UnknownKey {
                    crate::metrics::refused_for_key(verified.key_id, 401);
                }
            })?;
        if key.org_id != verified.org_id || *key.secret_id != *verified.secret_id {
            return Err(AuthFailure::InvalidToken);
        }
        if key.revoked_at.is_some() || key.org_deleted {
            crate::metrics::refused_for_key(verified.key_id, 401);
            return Err(if key.org_deleted {
                AuthFailure::OrgDeleted
            } else {
                AuthFailure::Revoked
            });
        }
        Ok(key)
    }

    /// A token this process verified before, whose secret is still active and which has
    /// not expired since.
    fn already_verified(&self, token: &str, secrets: &SecretSet) -> Option<VerifiedToken> {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        let found = verified.get(token)?;
        // The same expiry rule as `Validation` (exp plus leeway); an expired token goes
        // through full verification again, which names the failure.
        let live = found.exp + self.validation.leeway as i64 > now_ms() / 1000;
        (live && secrets.is_active(&found.secret_id)).then(|| found.clone())
    }

    /// Full verification: the secret `kid` names, signature, algorithm, issuer, exp/nbf,
    /// then the ids in the claims.
    async fn verify(
        &self,
        token: &str,
        mut secrets: Arc<SecretSet>,
    ) -> Result<VerifiedToken, AuthFailure> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::InvalidToken)?;
        let kid = header.kid.as_deref();
        if secrets.verifying(kid).err() == Some(SecretRefusal::Unknown) {
            secrets = self.secrets(true).await;
        }
        let secret = secrets.verifying(kid).map_err(|refusal| match refusal {
            SecretRefusal::Unknown => AuthFailure::InvalidToken,
            SecretRefusal::Retired => AuthFailure::RetiredSecret,
        })?;
        let claims = jsonwebtoken::decode::<Claims>(token, &secret.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthFailure::Expired,
                _ => AuthFailure::InvalidToken,
            })?
            .claims;
        let org_id = claims
            .org
            .as_deref()
            .map(Uuid::parse_str)
            .transpose()
            .map_err(|_| AuthFailure::InvalidToken)?;
        let found = VerifiedToken {
            key_id: Uuid::parse_str(&claims.sub).map_err(|_| AuthFailure::InvalidToken)?,
            org_id,
            admin: claims.kind == KeyKind::Admin.as_str(),
            secret_id: Arc::from(secret.id.as_str()),
            exp: claims.exp,
        };
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= MAX_VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_string(), found.clone());
        Ok(found)
    }

    async fn lookup(&self, key_id: Uuid, admin: bool) -> Result<ApiKey, AuthFailure> {
        if !self.cache_ttl.is_zero() {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, key)) = cache.get(&key_id)
                && at.elapsed() < self.cache_ttl
            {
                return Ok(key.clone());
            }
        }
        let found = if admin {
            self.store.admin_key(key_id).await
        } else {
            self.store.api_key(key_id).await
        };
        let key = match found {
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

    /// Forgets what this process cached about keys and secrets, so a revocation, an
    /// organization's deletion or a secret's retirement made here applies to its very next
    /// request (other processes see it within the cache time).
    pub fn forget_cached(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
        *self.secrets_read.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Records that a key was used, unless this process did so within the last minute:
    /// `used` is called only then (the client's address is worked out only when needed).
    /// The write runs off the request path.
    pub fn note_use(&self, kind: KeyKind, key_id: Uuid, used: impl FnOnce() -> KeyUse) {
        {
            let mut recorded = self.uses_recorded.lock().unwrap_or_else(|e| e.into_inner());
            if recorded
                .get(&key_id)
                .is_some_and(|at| at.elapsed() < KEY_USE_INTERVAL)
            {
                return;
            }
            if recorded.len() >= MAX_VERIFIED_TOKENS {
                recorded.retain(|_, at| at.elapsed() < KEY_USE_INTERVAL);
            }
            recorded.insert(key_id, Instant::now());
        }
        let used = used();
        let store = Arc::clone(&self.store);
        tokio::spawn(async move {
            if let Err(e) = store.record_key_use(kind, key_id, &used).await {
                tracing::warn!(error = %e, %key_id, "could not record a key's use");
            }
        });
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
        for bad in [
            "",
            "10",
            "d",
            "10y",
            "-5d",
            "0s",
            "99999999999999999d",
            "106751991167d",
            "36501d",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad} should be refused");
        }
    }
}
