//! The secrets that sign keys: rotate (a new secret signs new keys; every active one still
//! verifies), list, retire (its keys stop working; refused while it signs live keys unless
//! forced, and refused for the last active secret).

use serde_json::json;

use super::Admin;
use super::views::SecretView;
use crate::auth::random_hex;
use crate::resources::ResourceResult;
use crate::scim::ScimError;
use crate::store::admin::{INITIAL_SECRET, SigningSecret};
use crate::store::{Actor, StoreError, now_ms};

impl Admin {
    /// Every secret, oldest first, with the live keys each signs.
    pub async fn secrets(&self) -> ResourceResult<Vec<SecretView>> {
        let rows = self.store.signing_secrets().await?;
        let set = self.auth.secrets(true).await;
        let signing = set.signing().map(|k| k.id.clone());
        let mut views = Vec::new();
        let initial = rows
            .iter()
            .find(|r| r.id == INITIAL_SECRET)
            .cloned()
            .unwrap_or(SigningSecret {
                id: INITIAL_SECRET.to_string(),
                secret: None,
                created_at: 0,
                retired_at: None,
            });
        let now = now_ms();
        for row in
            std::iter::once(initial).chain(rows.into_iter().filter(|r| r.id != INITIAL_SECRET))
        {
            views.push(SecretView {
                live_keys: self.store.live_keys_of_secret(&row.id, now).await?,
                signing: signing.as_deref() == Some(row.id.as_str()),
                id: row.id,
                created_at: row.created_at,
                retired_at: row.retired_at,
            });
        }
        Ok(views)
    }

    /// A new secret, which signs every key created from now on; keys signed before keep
    /// working until their secret is retired.
    pub async fn rotate_secret(&self, by: &Actor) -> ResourceResult<SecretView> {
        let secret = SigningSecret {
            id: format!("s{}", &random_hex(6)),
            secret: Some(random_hex(32)),
            created_at: now_ms(),
            retired_at: None,
        };
        self.store.add_signing_secret(&secret).await?;
        self.auth.forget_cached();
        self.record(by, "secret.rotate", None, Some(secret.id.clone()), None)
            .await?;
        Ok(SecretView {
            id: secret.id,
            created_at: secret.created_at,
            retired_at: None,
            signing: true,
            live_keys: 0,
        })
    }

    /// Retires a secret: every key it signed is refused from now on (here at once, in other
    /// processes within the key cache time). Refused (409) while it still signs live keys,
    /// unless `force`, and for the only active secret. How many live keys it invalidated.
    pub async fn retire_secret(&self, by: &Actor, id: &str, force: bool) -> ResourceResult<i64> {
        let views = self.secrets().await?;
        let Some(secret) = views.iter().find(|s| s.id == id) else {
            return Err(ScimError::not_found(format!("no signing secret {id:?}")).into());
        };
        if secret.retired_at.is_some() {
            return Ok(0);
        }
        if !views.iter().any(|s| s.id != id && s.retired_at.is_none()) {
            return Err(ScimError::conflict(format!(
                "secret {id:?} is the only active one: rotate first, so new keys can be signed"
            ))
            .into());
        }
        if secret.live_keys > 0 && !force {
            return Err(ScimError::conflict(format!(
                "secret {id:?} still signs {} live key(s), which retiring it would invalidate; \
                 retire it with force to do so",
                secret.live_keys
            ))
            .into());
        }
        match self.store.retire_signing_secret(id, now_ms()).await {
            Err(StoreError::NotFound) => {
                return Err(ScimError::not_found(format!("no signing secret {id:?}")).into());
            }
            other => other?,
        }
        self.auth.forget_cached();
        let detail = json!({"invalidatedKeys": secret.live_keys, "force": force});
        self.record(
            by,
            "secret.retire",
            None,
            Some(id.to_string()),
            Some(detail),
        )
        .await?;
        Ok(secret.live_keys)
    }
}
