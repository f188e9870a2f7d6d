//! Push delivery (RFC 8935): each process leases push streams (one statement takes or renews
//! all it may have), and one task per leased stream follows the change log from the stream's
//! acknowledged position, POSTs each SET and records the acknowledgements.
//!
//! - **At-least-once**: the position moves only after the receiver answered 2xx for every
//!   SET up to it; a crash resends at most one batch.
//! - **In order per resource**: a batch is split by resource; each resource's SETs go one
//!   after another, different resources' concurrently.
//! - **Failures** retry with exponential backoff and full jitter, up to
//!   `SCIMD_STREAM_RETRY_MAX_SECONDS`; after `SCIMD_STREAM_FAILING_AFTER_SECONDS` the stream is
//!   marked failing (listed, logged, counted) and is active again at its next acknowledgement.
//!   A receiver's `400` with an RFC 8935 §2.4 error is its final answer for that SET: counted
//!   as failed, not retried.
//! - **Two processes**: a stream is delivered by the holder of its lease; a process that stops
//!   renewing loses it after `SCIMD_STREAM_LEASE_SECONDS`, and another takes over from the
//!   acknowledged position.
//! - **A thread of its own for signing and sending**: every stream's SETs are signed and
//!   sent on one single-threaded runtime (the thread `scimd-push`), which owns the receivers'
//!   connections. On the server's multi-threaded runtime each exchange woke tasks across
//!   worker threads (the request's and its connection's), which about doubled its CPU, and a
//!   batch's signatures (about 15 µs each) held a request worker for milliseconds; the log
//!   reads and position writes stay on the server's runtime, with the database pool.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Url;
use uuid::Uuid;

use super::exchange::{Attempt, PushClient};
use super::set_claims;
use super::signing::EventSigner;
use crate::store::{
    AuditQuery, ChangeEntry, EventStream, Store, StreamProgress, StreamState, now_ms,
};

/// How push delivery behaves (`SCIMD_STREAM_*`).
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// The `iss` of every SET: the server's public URL.
    pub issuer: String,
    /// How long a lease holds without renewal.
    pub lease: Duration,
    /// Failing this long marks a stream failing.
    pub failing_after: Duration,
    /// Acknowledging nothing this long disables a stream.
    pub max_lag: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
}

/// Entries read (and acknowledged) at a time.
const BATCH: i64 = 256;
/// The lag metric counts a stream's backlog up to this many entries.
const LAG_COUNTED_UP_TO: i64 = 100_000;
/// Resources delivered to at once within a batch.
const CONCURRENCY: usize = 16;
/// How often an idle stream looks for new entries.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// After a batch that was not full, how long new entries gather before the next read: under
/// a steady load, batches of a few entries would each cost a read and a commit of the
/// stream's position, taken from the database the writes need.
const GATHER: Duration = Duration::from_millis(100);
/// The first retry's wait.
const RETRY_FIRST: Duration = Duration::from_millis(100);

/// The push side of this process.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    signer: Arc<EventSigner>,
    client: PushClient,
    /// This process, as lease owner.
    owner: Uuid,
    settings: PushSettings,
    /// Streams this process delivers now.
    running: Mutex<HashSet<Uuid>>,
    /// The runtime of the `scimd-push` thread, where every exchange runs.
    courier: tokio::runtime::Handle,
    /// Dropped with the dispatcher, which ends the `scimd-push` thread.
    _courier_stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts push delivery in the background, for as long as the runtime runs.
pub fn spawn(
    store: Arc<dyn Store>,
    signer: Arc<EventSigner>,
    settings: PushSettings,
) -> anyhow::Result<()> {
    let client = PushClient::new()?;
    let (courier, courier_stop) = courier()?;
    let dispatcher = Arc::new(Dispatcher {
        store,
        signer,
        client,
        owner: Uuid::now_v7(),
        settings,
        running: Mutex::new(HashSet::new()),
        courier,
        _courier_stop: courier_stop,
    });
    tokio::spawn(dispatcher.lease_loop());
    Ok(())
}

/// Starts the `scimd-push` thread: a single-threaded runtime that runs until the returned
/// sender is dropped.
fn courier() -> anyhow::Result<(tokio::runtime::Handle, tokio::sync::oneshot::Sender<()>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("scimd-push".into())
        .spawn(move || {
            let _ = runtime.block_on(stopped);
        })?;
    Ok((handle, stop))
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One SET ready to send.
struct Outgoing {
    position: i64,
    at: i64,
    token: Bytes,
}

impl Dispatcher {
    /// Takes and renews leases a few times per lease period, starts a task per new stream,
    /// disables silent streams and reloads the signing keys now and then.
    async fn lease_loop(self: Arc<Self>) {
        let mut last_housekeeping = 0;
        loop {
            let now = now_ms();
            let until = now + millis(self.settings.lease);
            match self.store.lease_push_streams(self.owner, now, until).await {
                Ok(streams) => {
                    for stream in streams {
                        let new = self.lock_running().insert(stream.id);
                        if new {
                            tokio::spawn(self.clone().deliver(stream));
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "event streams: leasing failed"),
            }
            if now - last_housekeeping > 60_000 {
                last_housekeeping = now;
                self.housekeeping(now).await;
            }
            // Often enough that a new stream starts within a second.
            tokio::time::sleep((self.settings.lease / 3).min(Duration::from_secs(1))).await;
        }
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn housekeeping(&self, now: i64) {
        let before = now - millis(self.settings.max_lag);
        match self.store.disable_silent_streams(before).await {
            Ok(disabled) => {
                for id in disabled {
                    tracing::warn!(stream = %id, "event stream disabled: nothing acknowledged \
                        for SCIMD_STREAM_MAX_LAG_DAYS; its backlog is left to retention");
                }
            }
            Err(e) => tracing::warn!(error = %e, "event streams: disabling silent ones failed"),
        }
        if let Err(e) = self.signer.reload(&*self.store).await {
            tracing::warn!(error = %e, "event signing keys could not be reloaded");
        }
    }

    /// Delivers one stream until its lease is lost, it is deleted or disabled.
    async fn deliver(self: Arc<Self>, stream: EventStream) {
        let id = stream.id;
        let label = id.to_string();
        tracing::info!(stream = %id, "event stream: delivering");
        let mut position = stream.position;
        let mut failing_since: Option<i64> = None;
        let mut lag_checked = 0;
        loop {
            let query = AuditQuery {
                after_position: Some(position),
                limit: BATCH,
                without_data: !stream.full,
                ..AuditQuery::default()
            };
            let entries = match self.store.changes(stream.org_id, &query).await {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::warn!(stream = %id, error = %e, "event stream: reading the log failed");
                    tokio::time::sleep(RETRY_FIRST * 10).await;
                    continue;
                }
            };
            let now = now_ms();
            if now - lag_checked > 5_000 {
                lag_checked = now;
                if !self.still_ours(id).await {
                    break;
                }
                let behind = self
                    .store
                    .entries_after(stream.org_id, position, LAG_COUNTED_UP_TO)
                    .await;
                let oldest = entries.first().map_or(0, |e| now - e.at);
                crate::metrics::stream_lag(&label, oldest as f64 / 1000.0, behind.unwrap_or(0));
            }
            let Some((last, last_at)) = entries.last().map(|e| (e.position, e.at)) else {
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            };
            let full_batch = entries.len() as i64 >= BATCH;
            let sending = self.courier.spawn(self.clone().send_batch(
                stream.clone(),
                entries,
                failing_since,
            ));
            // The sending is part of this task: when this task ends (its runtime shut down),
            // so does the sending, and with it the last hold on the dispatcher.
            let _abort = AbortOnDrop(sending.abort_handle());
            let sent = sending.await;
            let delivered = match sent {
                Ok((since, delivered)) => {
                    failing_since = since;
                    delivered
                }
                Err(e) => {
                    // Not acknowledged: the batch is read and sent again.
                    tracing::warn!(stream = %id, error = %e, "event stream: sending stopped");
                    tokio::time::sleep(RETRY_FIRST * 10).await;
                    continue;
                }
            };
            let progress = StreamProgress {
                position: last,
                acked_ahead: Vec::new(),
                delivered,
                at: now_ms(),
            };
            match self
                .store
                .advance_stream(id, Some(self.owner), &progress)
                .await
            {
                Ok(true) => position = last,
                Ok(false) => break, // another process holds the lease now
                Err(e) => {
                    tracing::warn!(stream = %id, error = %e, "event stream: recording progress failed");
                    tokio::time::sleep(RETRY_FIRST * 10).await;
                    continue;
                }
            }
            failing_since = None;
            let lag = now_ms() - last_at;
            crate::metrics::events_delivered(&label, delivered as u64);
            crate::metrics::stream_lag(&label, lag as f64 / 1000.0, 0);
            if !full_batch {
                tokio::time::sleep(GATHER).await;
            }
        }
        self.lock_running().remove(&id);
        tracing::info!(stream = %id, "event stream: no longer delivered by this process");
    }

    /// Whether this process still holds the stream's lease and the stream is deliverable.
    async fn still_ours(&self, id: Uuid) -> bool {
        match self.store.stream(id).await {
            Ok(s) => s.lease_owner == Some(self.owner) && s.state != StreamState::Disabled,
            Err(crate::store::StoreError::NotFound) => false,
            Err(_) => true, // the database is away: keep trying
        }
    }

    /// The SETs of `entries` the stream selects, signed.
    fn sign_all(
        &self,
        stream: &EventStream,
        entries: &[ChangeEntry],
    ) -> HashMap<Uuid, Vec<Outgoing>> {
        let aud = stream.endpoint.clone().unwrap_or_default();
        let mut by_resource: HashMap<Uuid, Vec<Outgoing>> = HashMap::new();
        for entry in entries {
            let Some(claims) = set_claims(entry, stream, &self.settings.issuer, &aud) else {
                continue;
            };
            match self.signer.sign(&claims) {
                Ok(token) => by_resource
                    .entry(entry.resource_id)
                    .or_default()
                    .push(Outgoing {
                        position: entry.position,
                        at: entry.at,
                        token: Bytes::from(token),
                    }),
                Err(e) => tracing::error!(error = %e, "event could not be signed"),
            }
        }
        by_resource
    }

    /// Signs and sends every SET of a batch (on the `scimd-push` thread): each resource's in
    /// order, resources concurrently; returns when all were acknowledged (or refused for
    /// good), with since when delivery has been failing and how many SETs were sent.
    async fn send_batch(
        self: Arc<Self>,
        stream: EventStream,
        entries: Vec<ChangeEntry>,
        failing_since: Option<i64>,
    ) -> (Option<i64>, i64) {
        let batch = self.sign_all(&stream, &entries);
        drop(entries);
        let sets = batch.values().map(|sets| sets.len() as i64).sum();
        // Since when delivery has been failing, and whether the stream was marked failing.
        let failing = Mutex::new((failing_since, false));
        // Parsed once per batch, not per request.
        let target = match stream.endpoint.as_deref().map(reqwest::Url::parse) {
            Some(Ok(url)) => Ok(url),
            Some(Err(e)) => Err(format!("the stream's endpoint is not a URL: {e}")),
            None => Err("a push stream without an endpoint".to_string()),
        };
        let (this, stream, target) = (&self, &stream, &target);
        let label = stream.id.to_string();
        let label = label.as_str();
        futures_util::stream::iter(batch.into_values())
            .for_each_concurrent(CONCURRENCY, |sets| {
                let failing = &failing;
                async move {
                    for set in sets {
                        this.send_until_done(stream, target, label, &set, failing)
                            .await;
                    }
                }
            })
            .await;
        (
            failing.into_inner().unwrap_or_else(|e| e.into_inner()).0,
            sets,
        )
    }

    /// One SET, retried with backoff until the receiver acknowledges or refuses it.
    async fn send_until_done(
        &self,
        stream: &EventStream,
        target: &Result<Url, String>,
        label: &str,
        set: &Outgoing,
        failing: &Mutex<(Option<i64>, bool)>,
    ) {
        let mut wait = RETRY_FIRST;
        loop {
            match self.attempt(stream, target, &set.token).await {
                Attempt::Acknowledged => {
                    crate::metrics::delivery_latency(now_ms() - set.at);
                    return;
                }
                Attempt::Refused(reason) => {
                    tracing::warn!(stream = %stream.id, position = set.position, reason,
                        "event refused by the receiver; not retried");
                    crate::metrics::events_failed(label, "refused");
                    return;
                }
                Attempt::Failed(reason) => {
                    crate::metrics::events_failed(label, "retried");
                    let now = now_ms();
                    let (since, newly_failing) = {
                        let mut failing = failing.lock().unwrap_or_else(|e| e.into_inner());
                        let since = *failing.0.get_or_insert(now);
                        let over = now - since >= millis(self.settings.failing_after);
                        let newly = over && !failing.1 && stream.state != StreamState::Failing;
                        failing.1 |= over;
                        (since, newly)
                    };
                    if newly_failing {
                        tracing::warn!(stream = %stream.id, reason, "event stream failing");
                        let _ = self
                            .store
                            .stream_failing(stream.id, self.owner, since, &reason)
                            .await;
                    }
                    // Full jitter (half to all of the wait), so many streams do not retry
                    // in step.
                    let jitter = 0.5 + rand_fraction() / 2.0;
                    tokio::time::sleep(wait.mul_f64(jitter)).await;
                    wait = (wait * 2).min(self.settings.retry_max);
                }
            }
        }
    }

    async fn attempt(
        &self,
        stream: &EventStream,
        target: &Result<Url, String>,
        token: &Bytes,
    ) -> Attempt {
        match target {
            Ok(endpoint) => {
                self.client
                    .send(endpoint, stream.auth_header.as_deref(), token.clone())
                    .await
            }
            Err(reason) => Attempt::Refused(reason.clone()),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A number in [0, 1) for jitter: not cryptographic, just different per call.
fn rand_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = u64::from(nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 11) as f64 / (1u64 << 53) as f64
}
