//! The keys that sign SETs: ES256 (ECDSA on P-256), kept in the database and published as a
//! JWKS at `GET /events/jwks.json`.
//!
//! Why ES256: receivers verify with a public key, so none of them can forge an event for
//! another (an HMAC secret shared with every receiver could); it is the asymmetric JOSE
//! algorithm every JWT library implements (RFC 7518 §3.4 lists it as recommended+); and
//! signing costs tens of microseconds, where RSA would cost a millisecond per event.
//!
//! The newest key signs. `scimd event-key rotate` adds a key and retires the others, which
//! stay in the JWKS for [`PUBLISHED_AFTER_RETIREMENT_MS`] so SETs signed before the rotation
//! still verify. Every process reloads the keys every minute.

use std::sync::{Arc, RwLock};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use serde_json::Value;

use crate::store::{SigningKeyRow, Store, now_ms};

/// How long a retired key stays published.
pub const PUBLISHED_AFTER_RETIREMENT_MS: i64 = 7 * 86_400_000;

/// The signing key in use and the published set.
struct Keys {
    kid: String,
    key: EncodingKey,
    jwks: Value,
}

/// Signs SETs with the current key; shared by the push workers and the poll endpoint.
pub struct EventSigner {
    keys: RwLock<Arc<Keys>>,
}

impl std::fmt::Debug for EventSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSigner").finish_non_exhaustive()
    }
}

/// A new P-256 key, as the store keeps it.
pub fn generate_key() -> anyhow::Result<SigningKeyRow> {
    let secret = p256::SecretKey::random(&mut argon2::password_hash::rand_core::OsRng);
    let der = secret
        .to_pkcs8_der()
        .map_err(|e| anyhow::anyhow!("encoding a signing key: {e}"))?;
    let created_at = now_ms();
    Ok(SigningKeyRow {
        kid: format!("scimd-{}", uuid::Uuid::now_v7().simple()),
        private_key: STANDARD.encode(der.as_bytes()),
        created_at,
        retired_at: None,
    })
}

/// Adds a new signing key and retires the others; its key id.
pub async fn rotate(store: &dyn Store) -> anyhow::Result<String> {
    let key = generate_key()?;
    store.rotate_signing_key(&key).await?;
    Ok(key.kid)
}

fn load(rows: &[SigningKeyRow]) -> anyhow::Result<Keys> {
    let now = now_ms();
    let current = rows
        .iter()
        .find(|r| r.retired_at.is_none())
        .context("no signing key in use")?;
    let encoding = |row: &SigningKeyRow| -> anyhow::Result<EncodingKey> {
        let der = STANDARD
            .decode(&row.private_key)
            .with_context(|| format!("signing key {} is not base64", row.kid))?;
        Ok(EncodingKey::from_ec_der(&der))
    };
    let mut published = Vec::new();
    for row in rows {
        let visible = row
            .retired_at
            .is_none_or(|at| at + PUBLISHED_AFTER_RETIREMENT_MS > now);
        if !visible {
            continue;
        }
        let mut jwk = Jwk::from_encoding_key(&encoding(row)?, Algorithm::ES256)?;
        jwk.common.key_id = Some(row.kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        published.push(jwk);
    }
    Ok(Keys {
        kid: current.kid.clone(),
        key: encoding(current)?,
        jwks: serde_json::to_value(JwkSet { keys: published })?,
    })
}

impl EventSigner {
    /// The keys in the store, after creating the first one when there is none.
    pub async fn open(store: &dyn Store) -> anyhow::Result<EventSigner> {
        let mut rows = store.signing_keys().await?;
        if !rows.iter().any(|r| r.retired_at.is_none()) {
            rotate(store).await?;
            rows = store.signing_keys().await?;
        }
        Ok(EventSigner {
            keys: RwLock::new(Arc::new(load(&rows)?)),
        })
    }

    /// Reads the keys again (another process may have rotated them).
    pub async fn reload(&self, store: &dyn Store) -> anyhow::Result<()> {
        let keys = load(&store.signing_keys().await?)?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
    }

    fn current(&self) -> Arc<Keys> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `claims` as a signed SET: `typ` `secevent+jwt` (RFC 8417 §2.3), ES256, the key's id.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let keys = self.current();
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("secevent+jwt".into());
        header.kid = Some(keys.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &keys.key)?)
    }

    /// The published keys (RFC 7517 JWK Set).
    pub fn jwks(&self) -> Value {
        self.current().jwks.clone()
    }
}
