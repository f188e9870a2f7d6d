//! The keys that sign SETs: ES256 (ECDSA on P-256), kept in the database and published as a
//! JWKS at `GET /events/jwks.json`.
//!
//! Why ES256: receivers verify with a public key, so none of them can forge an event for
//! another (an HMAC secret shared with every receiver could); it is the asymmetric JOSE
//! algorithm every JWT library implements (RFC 7518 §3.4 lists it as recommended+); and
//! signing costs tens of microseconds, where RSA would cost a millisecond per event. Keys are
//! made and SETs signed with `ring` (already here for TLS, and several times faster at P-256
//! than a pure-Rust implementation: every change costs one signature per stream);
//! `jsonwebtoken` writes the public keys as JWKs.
//!
//! The newest key signs. `scimd event-key rotate` adds a key and retires the others, which
//! stay in the JWKS for [`PUBLISHED_AFTER_RETIREMENT_MS`] so SETs signed before the rotation
//! still verify. Every process reloads the keys every minute.

use std::sync::{Arc, RwLock};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

use crate::store::{SigningKeyRow, Store, now_ms};

/// How long a retired key stays published.
pub const PUBLISHED_AFTER_RETIREMENT_MS: i64 = 7 * 86_400_000;

/// The signing key in use and the published set.
struct Keys {
    key: EcdsaKeyPair,
    /// The JOSE header of every SET, base64url-encoded once.
    header: String,
    jwks: Value,
}

/// Signs SETs with the current key; shared by the push workers and the poll endpoint.
pub struct EventSigner {
    keys: RwLock<Arc<Keys>>,
    random: SystemRandom,
}

impl std::fmt::Debug for EventSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSigner").finish_non_exhaustive()
    }
}

/// A new P-256 key, as the store keeps it.
pub fn generate_key() -> anyhow::Result<SigningKeyRow> {
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("a signing key could not be generated"))?;
    let created_at = now_ms();
    Ok(SigningKeyRow {
        kid: format!("scimd-{}", uuid::Uuid::now_v7().simple()),
        private_key: STANDARD.encode(der.as_ref()),
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
    let der = |row: &SigningKeyRow| -> anyhow::Result<Vec<u8>> {
        STANDARD
            .decode(&row.private_key)
            .with_context(|| format!("signing key {} is not base64", row.kid))
    };
    let mut published = Vec::new();
    for row in rows {
        let visible = row
            .retired_at
            .is_none_or(|at| at + PUBLISHED_AFTER_RETIREMENT_MS > now);
        if !visible {
            continue;
        }
        let key = EncodingKey::from_ec_der(&der(row)?);
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)?;
        jwk.common.key_id = Some(row.kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        published.push(jwk);
    }
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &der(current)?,
        &SystemRandom::new(),
    )
    .map_err(|e| anyhow::anyhow!("signing key {} is unusable: {e}", current.kid))?;
    // RFC 8417 §2.3: `typ` `secevent+jwt`.
    let header = json!({"alg": "ES256", "typ": "secevent+jwt", "kid": current.kid});
    Ok(Keys {
        key,
        header: URL_SAFE_NO_PAD.encode(header.to_string()),
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
            random: SystemRandom::new(),
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

    /// `claims` as a signed SET: a compact JWS (RFC 7515 §7.1) with `typ` `secevent+jwt`
    /// (RFC 8417 §2.3), ES256 (the signature as R ‖ S, RFC 7518 §3.4) and the key's id.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let keys = self.current();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
        let mut token = format!("{}.{payload}", keys.header);
        let signature = keys
            .key
            .sign(&self.random, token.as_bytes())
            .map_err(|_| anyhow::anyhow!("signing a SET failed"))?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        Ok(token)
    }

    /// The published keys (RFC 7517 JWK Set).
    pub fn jwks(&self) -> Value {
        self.current().jwks.clone()
    }
}
