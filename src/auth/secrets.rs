//! The HMAC secrets that sign API keys. Several can be active at once: a key's JWT names its
//! secret in the header's `kid` (a token without one belongs to the initial secret,
//! `SCIMD_JWT_SECRET`), new keys are signed with the newest active secret, and a retired
//! secret's keys are refused. Rotating therefore never invalidates a key by itself; retiring
//! does, for that secret's keys only.

use jsonwebtoken::{DecodingKey, EncodingKey};

use crate::store::admin::{INITIAL_SECRET, SigningSecret};

/// One secret, ready to sign and verify.
pub struct SecretKey {
    pub id: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    pub created_at: i64,
    pub retired: bool,
}

/// Why a token's `kid` cannot verify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretRefusal {
    /// No secret of that name (perhaps created since this process last read them).
    Unknown,
    Retired,
}

/// Every secret a process knows: the initial one plus those rotated in, as stored.
pub struct SecretSet {
    keys: Vec<SecretKey>,
}

impl SecretSet {
    /// The initial secret (configured; its stored row, if any, says only whether it is
    /// retired) and the rotated ones from the store.
    pub fn build(initial: &[u8], rows: &[SigningSecret]) -> SecretSet {
        let key = |id: &str, secret: &[u8], created_at: i64, retired: bool| SecretKey {
            id: id.to_string(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            created_at,
            retired,
        };
        let initial_row = rows.iter().find(|r| r.id == INITIAL_SECRET);
        let mut keys = vec![key(
            INITIAL_SECRET,
            initial,
            0,
            initial_row.is_some_and(|r| r.retired_at.is_some()),
        )];
        for row in rows.iter().filter(|r| r.id != INITIAL_SECRET) {
            if let Some(secret) = &row.secret {
                keys.push(key(
                    &row.id,
                    secret.as_bytes(),
                    row.created_at,
                    row.retired_at.is_some(),
                ));
            }
        }
        SecretSet { keys }
    }

    /// The secret new keys are signed with: the newest active one.
    pub fn signing(&self) -> Option<&SecretKey> {
        self.keys
            .iter()
            .filter(|k| !k.retired)
            .max_by_key(|k| (k.created_at, k.id.clone()))
    }

    /// The secret named by a token's `kid` (none: the initial secret), if it may verify.
    pub fn verifying(&self, kid: Option<&str>) -> Result<&SecretKey, SecretRefusal> {
        let id = kid.unwrap_or(INITIAL_SECRET);
        match self.keys.iter().find(|k| k.id == id) {
            None => Err(SecretRefusal::Unknown),
            Some(key) if key.retired => Err(SecretRefusal::Retired),
            Some(key) => Ok(key),
        }
    }

    /// Whether `id` names an active secret.
    pub fn is_active(&self, id: &str) -> bool {
        self.verifying(Some(id)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, created_at: i64, retired: bool) -> SigningSecret {
        SigningSecret {
            id: id.into(),
            secret: (id != INITIAL_SECRET).then(|| format!("{id}-secret-secret-secret-secret")),
            created_at,
            retired_at: retired.then_some(created_at + 1),
        }
    }

    #[test]
    fn the_initial_secret_signs_until_a_rotation_and_verifies_tokens_without_kid() {
        let set = SecretSet::build(b"initial-secret-initial-secret-0123", &[]);
        assert_eq!(set.signing().unwrap().id, INITIAL_SECRET);
        assert_eq!(set.verifying(None).unwrap().id, INITIAL_SECRET);
        assert_eq!(
            set.verifying(Some("s2")).err(),
            Some(SecretRefusal::Unknown)
        );
    }

    #[test]
    fn the_newest_active_secret_signs_and_older_active_ones_still_verify() {
        let rows = [row("s1", 10, false), row("s2", 20, false)];
        let set = SecretSet::build(b"initial-secret-initial-secret-0123", &rows);
        assert_eq!(set.signing().unwrap().id, "s2");
        for kid in [None, Some("s1"), Some("s2")] {
            assert!(set.verifying(kid).is_ok(), "{kid:?}");
        }
    }

    #[test]
    fn a_retired_secret_neither_signs_nor_verifies() {
        let rows = [
            row(INITIAL_SECRET, 0, true),
            row("s1", 10, false),
            row("s2", 20, true),
        ];
        let set = SecretSet::build(b"initial-secret-initial-secret-0123", &rows);
        assert_eq!(set.signing().unwrap().id, "s1");
        assert_eq!(set.verifying(None).err(), Some(SecretRefusal::Retired));
        assert_eq!(
            set.verifying(Some("s2")).err(),
            Some(SecretRefusal::Retired)
        );
        assert!(set.is_active("s1"));
    }
}
