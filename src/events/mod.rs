//! SCIM events (RFC 9967): each change-log entry becomes a signed Security Event Token (RFC
//! 8417) for every stream of its organization that selects its events, delivered by push
//! (RFC 8935, [`push`]) or poll (RFC 8936, [`poll`]), signed by [`signing`].
//!
//! Delivery follows the change log by position and records the receiver's acknowledgements
//! on the stream, so it is at-least-once and in log order (hence in order per resource); a
//! slow or dead receiver only makes its own stream lag: SCIM writes never wait on delivery.

mod exchange;
pub mod poll;
pub mod push;
pub mod signing;

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::config::Settings;
use crate::scim::etag::etag;
use crate::scim::events::{Change, events_claim, subject};
use crate::store::{ChangeEntry, EventStream, Store};

/// The event side of a process: the signer (opened, and the first key made, at first use) and
/// push delivery, started in the background.
pub struct Events {
    store: Arc<dyn Store>,
    signer: OnceCell<Arc<signing::EventSigner>>,
    /// The `iss` of every SET.
    pub issuer: String,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Events {
    /// Starts push delivery for `store` in the background (it waits for the signer).
    pub fn start(store: Arc<dyn Store>, settings: &Settings) -> Arc<Events> {
        let events = Arc::new(Events {
            store: store.clone(),
            signer: OnceCell::new(),
            issuer: settings.event_issuer(),
        });
        let push = push::PushSettings {
            issuer: events.issuer.clone(),
            lease: settings.stream_lease,
            failing_after: settings.stream_failing_after,
            max_lag: settings.stream_max_lag,
            retry_max: settings.stream_retry_max,
        };
        let starting = events.clone();
        tokio::spawn(async move {
            loop {
                match starting.signer().await {
                    Ok(signer) => {
                        if let Err(e) = push::spawn(store.clone(), signer, push.clone()) {
                            tracing::error!(error = %e, "push delivery could not start");
                        }
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "event signing keys unavailable; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    }
                }
            }
        });
        events
    }

    /// The signer, opened at first use.
    pub async fn signer(&self) -> anyhow::Result<Arc<signing::EventSigner>> {
        let signer = self
            .signer
            .get_or_try_init(|| async {
                signing::EventSigner::open(&*self.store).await.map(Arc::new)
            })
            .await?;
        Ok(signer.clone())
    }
}

/// The `jti` of the SET a stream gets for the entry at `position`: the same on every
/// retransmission (a receiver can drop duplicates by it), unique across streams.
pub fn jti(stream: Uuid, position: i64) -> String {
    format!("{}-{position}", stream.simple())
}

/// The position a `jti` of `stream` names, if it is one of that stream's.
pub fn position_of(stream: Uuid, jti: &str) -> Option<i64> {
    let (prefix, position) = jti.rsplit_once('-')?;
    (prefix == stream.simple().to_string())
        .then(|| position.parse().ok())
        .flatten()
}

/// The claims of the SET `stream` gets for `entry`, or `None` when the stream selects none of
/// its events. `iss` is the server's public URL; `aud` the stream's receiver.
pub fn set_claims(
    entry: &ChangeEntry,
    stream: &EventStream,
    iss: &str,
    aud: &str,
) -> Option<Value> {
    let version = etag(entry.version);
    let change = Change {
        operation: &entry.operation,
        activation: entry.activation.as_deref(),
        attributes: &entry.attributes,
        version: &version,
        data: entry.data.as_ref(),
    };
    let events = events_claim(&change, &stream.events, stream.full)?;
    let endpoint = match entry.resource_type.as_str() {
        "Group" => "/Groups",
        _ => "/Users",
    };
    Some(json!({
        "iss": iss,
        "aud": aud,
        "iat": crate::store::now_ms() / 1000,
        "jti": jti(stream.id, entry.position),
        // RFC 9967 §2.2: one transaction, one txn, whatever the stream or retransmission.
        "txn": entry.position.to_string(),
        // RFC 8417 §2.2: when the change happened (seconds, to the millisecond).
        "toe": entry.at as f64 / 1000.0,
        "sub_id": subject(endpoint, &entry.resource_id.to_string(), entry.external_id.as_deref()),
        "events": events,
    }))
}

/// The hex SHA-256 of a poll token, as the stream stores it.
pub fn poll_token_hash(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_names_its_stream_and_position() {
        let stream = Uuid::now_v7();
        let id = jti(stream, 42);
        assert_eq!(position_of(stream, &id), Some(42));
        assert_eq!(position_of(Uuid::now_v7(), &id), None);
        assert_eq!(position_of(stream, "nonsense"), None);
    }
}
