//! What an organization holds besides its users and groups, as operators manage it: the
//! user-attribute definitions, the event streams, and its audit trail (the change log and
//! the rejected writes).

use serde_json::json;
use uuid::Uuid;

use super::{Admin, bad_field};
use crate::resources::ResourceResult;
use crate::scim::ScimError;
use crate::store::{
    Actor, AuditQuery, ChangeEntry, EventStream, NewStream, RejectedWrite, StoreError,
};

/// What a new event stream is (RFC 9967): as `scimd stream create` and the admin API take it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamRequest {
    /// Push to this `http`/`https` URL; else poll.
    pub push: Option<String>,
    /// Event names (all when absent).
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub full: bool,
    /// An `Authorization` header value sent with every push.
    pub auth_header: Option<String>,
}

impl StreamRequest {
    /// The stream to store and, for a poll stream, its token (shown once).
    fn check(&self) -> ResourceResult<(NewStream, Option<String>)> {
        use crate::scim::events::EVENT_NAMES;
        use crate::store::StreamKind;
        let events: Vec<String> = match &self.events {
            None => EVENT_NAMES.iter().map(|e| e.to_string()).collect(),
            Some(list) => list
                .iter()
                .map(|e| e.trim().to_ascii_lowercase())
                .filter(|e| !e.is_empty())
                .collect(),
        };
        if let Some(unknown) = events.iter().find(|e| !EVENT_NAMES.contains(&e.as_str())) {
            return Err(bad_field(
                "events",
                format!(
                    "unknown event {unknown:?}: choose from {}",
                    EVENT_NAMES.join(", ")
                ),
            ));
        }
        if events.is_empty() {
            return Err(bad_field("events", "names no event"));
        }
        let (kind, token) = match &self.push {
            Some(url) => {
                let parsed = reqwest::Url::parse(url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if parsed.is_none() {
                    return Err(bad_field(
                        "push",
                        format!("{url:?} must be an http:// or https:// URL"),
                    ));
                }
                (StreamKind::Push, None)
            }
            None => {
                if self.auth_header.is_some() {
                    return Err(bad_field(
                        "authHeader",
                        "goes with push: a poll stream has a token of its own",
                    ));
                }
                let token = crate::auth::random_hex(32);
                (StreamKind::Poll, Some(format!("scimd_poll_{token}")))
            }
        };
        if let Some(header) = &self.auth_header
            && (header.is_empty() || header.len() > 4096 || header.chars().any(char::is_control))
        {
            return Err(bad_field(
                "authHeader",
                "must be 1-4096 bytes without control characters",
            ));
        }
        let stream = NewStream {
            kind,
            endpoint: self.push.clone(),
            events,
            full: self.full,
            auth_header: self.auth_header.clone(),
            poll_token_hash: token.as_deref().map(crate::events::poll_token_hash),
        };
        Ok((stream, token))
    }
}

/// Longest user-attribute key.
const MAX_ATTRIBUTE_KEY: usize = 128;

/// A user-attribute key: 1-128 of A-Z, a-z, 0-9, `_` and `-`.
fn check_attribute_key(key: &str) -> ResourceResult<()> {
    let valid = !key.is_empty()
        && key.len() <= MAX_ATTRIBUTE_KEY
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(bad_field(
            "key",
            format!("{key:?} must be 1-{MAX_ATTRIBUTE_KEY} of A-Z, a-z, 0-9, _ and -"),
        ))
    }
}

impl Admin {
    pub async fn create_user_attribute(
        &self,
        by: &Actor,
        slug: &str,
        key: &str,
    ) -> ResourceResult<()> {
        check_attribute_key(key)?;
        let org = self.live_org(slug).await?;
        match self.store.create_user_attribute(org.id, key).await {
            Err(StoreError::Conflict(_)) => {
                return Err(ScimError::uniqueness(format!(
                    "key: attribute {key:?} already exists"
                ))
                .into());
            }
            other => other?,
        }
        self.record(
            by,
            "user-attribute.create",
            Some(slug),
            Some(key.to_string()),
            None,
        )
        .await
    }

    pub async fn user_attributes(&self, slug: &str) -> ResourceResult<Vec<String>> {
        let org = self.live_org(slug).await?;
        Ok(self.store.list_user_attributes(org.id).await?)
    }

    /// Deletes a definition no user carries (409 naming how many do).
    pub async fn delete_user_attribute(
        &self,
        by: &Actor,
        slug: &str,
        key: &str,
    ) -> ResourceResult<()> {
        let org = self.live_org(slug).await?;
        match self.store.delete_user_attribute(org.id, key).await {
            Err(StoreError::NotFound) => {
                return Err(ScimError::not_found(format!("no user attribute {key:?}")).into());
            }
            other => other?,
        }
        self.record(
            by,
            "user-attribute.delete",
            Some(slug),
            Some(key.to_string()),
            None,
        )
        .await
    }

    /// The organization's change log, oldest first (`query` as `scimd audit` takes it).
    pub async fn changes(
        &self,
        slug: &str,
        query: &AuditQuery,
    ) -> ResourceResult<Vec<ChangeEntry>> {
        let org = self.live_org(slug).await?;
        Ok(self.store.changes(org.id, query).await?)
    }

    /// The organization's rejected writes, oldest first.
    pub async fn rejected(
        &self,
        slug: &str,
        query: &AuditQuery,
    ) -> ResourceResult<Vec<RejectedWrite>> {
        let org = self.live_org(slug).await?;
        Ok(self.store.rejected_writes(org.id, query).await?)
    }

    /// Creates an event stream; a poll stream's token is returned once.
    pub async fn create_stream(
        &self,
        by: &Actor,
        slug: &str,
        request: &StreamRequest,
    ) -> ResourceResult<(EventStream, Option<String>)> {
        let (stream, token) = request.check()?;
        let org = self.live_org(slug).await?;
        let created = self.store.create_stream(org.id, &stream).await?;
        let detail = json!({"kind": created.kind.as_str(), "endpoint": created.endpoint});
        self.record(
            by,
            "stream.create",
            Some(slug),
            Some(created.id.to_string()),
            Some(detail),
        )
        .await?;
        Ok((created, token))
    }

    pub async fn streams(&self, slug: &str) -> ResourceResult<Vec<EventStream>> {
        let org = self.live_org(slug).await?;
        Ok(self.store.streams(org.id).await?)
    }

    /// One stream of the organization `slug`; another organization's is not found.
    pub async fn stream(&self, slug: &str, id: Uuid) -> ResourceResult<EventStream> {
        let org = self.live_org(slug).await?;
        match self.store.stream(id).await {
            Ok(stream) if stream.org_id == org.id => Ok(stream),
            Ok(_) | Err(StoreError::NotFound) => Err(no_stream(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a stream of the organization `slug` (the command line passes `None`).
    pub async fn delete_stream(
        &self,
        by: &Actor,
        slug: Option<&str>,
        id: Uuid,
    ) -> ResourceResult<()> {
        let stream = match self.store.stream(id).await {
            Err(StoreError::NotFound) => return Err(no_stream(id)),
            other => other?,
        };
        if let Some(slug) = slug {
            let org = self.live_org(slug).await?;
            if stream.org_id != org.id {
                return Err(no_stream(id));
            }
        }
        match self.store.delete_stream(id).await {
            Err(StoreError::NotFound) => return Err(no_stream(id)),
            other => other?,
        }
        self.record(by, "stream.delete", slug, Some(id.to_string()), None)
            .await
    }
}

fn no_stream(id: Uuid) -> crate::resources::ResourceError {
    ScimError::not_found(format!("no stream {id}")).into()
}
