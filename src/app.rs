//! Start-up and the administrative operations behind the CLI: connect the store, resolve the
//! signing secret, bootstrap an empty database, mint and revoke keys.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use uuid::Uuid;

use crate::auth::{self, Authenticator};
use crate::config::{ServeConfig, StoreConfig};
use crate::http::AppState;
use crate::store::{self, ApiKey, KeyKind, Store, StoreError, StoreOptions, now_ms};

/// The organization created on the first start against an empty database.
pub const BOOTSTRAP_ORG: &str = "default";

/// An open store plus the key authority that signs for it.
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub auth: Arc<Authenticator>,
}

/// Connects (and migrates) the store and prepares the key authority.
pub async fn open(config: &StoreConfig, key_cache: Duration) -> anyhow::Result<Backend> {
    open_with(config, key_cache, &StoreOptions::default()).await
}

/// [`open`] with request-pool options (statement timeouts) for a serving process.
pub async fn open_with(
    config: &StoreConfig,
    key_cache: Duration,
    options: &StoreOptions,
) -> anyhow::Result<Backend> {
    let store = store::connect(&config.database_url, options)
        .await
        .with_context(|| {
            format!(
                "cannot open database {}",
                store::redact_url(&config.database_url)
            )
        })?;
    let secret = auth::resolve_secret(store.as_ref(), config.jwt_secret.as_deref()).await?;
    let auth = Arc::new(Authenticator::new(&secret, store.clone(), key_cache));
    Ok(Backend { store, auth })
}

/// Builds the HTTP state for `serve`, bootstrapping an empty database when allowed.
pub async fn serve_state(
    store_config: &StoreConfig,
    config: &ServeConfig,
) -> anyhow::Result<AppState> {
    let backend = open_with(
        store_config,
        Duration::from_secs(config.key_cache_seconds),
        &config.store_options(),
    )
    .await?;
    if config.bootstrap && backend.store.count_orgs().await? == 0 {
        bootstrap(&backend, &config.listen, config.bootstrap_key_hours).await?;
    } else {
        warn_long_lived_bootstrap_keys(&backend, config.bootstrap_key_hours).await;
    }
    Ok(AppState::new(
        backend.store,
        backend.auth,
        config.settings(),
    ))
}

/// First start: create org `default` and show one key with a ready-to-paste request. The key
/// expires after `hours` (`SCIMD_BOOTSTRAP_KEY_HOURS`): it is printed to stderr, which in a
/// container is the log, so it must not stay a way in for good.
async fn bootstrap(backend: &Backend, listen: &str, hours: u64) -> anyhow::Result<()> {
    let org = backend.store.create_org(BOOTSTRAP_ORG).await?;
    let (key, token) = backend
        .auth
        .mint(
            org.id,
            KeyKind::Organization,
            Some(BOOTSTRAP_KEY_NAME.into()),
            Some(bootstrap_lifetime_ms(hours)),
        )
        .await?;
    let expires = key
        .expires_at
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "-".to_string(),
            |at| at.format("%Y-%m-%d %H:%M UTC").to_string(),
        );
    eprintln!(
        "\nscimd: created organization {BOOTSTRAP_ORG:?} and an API key for it (shown once; it expires \
         {expires}, in {hours} h):\n\n  {token}\n\n\
         Try it:\n\n  curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/scim+json' \\\n    \
         -d '{{\"userName\":\"blob.ross@blobsrus.co\",\"displayName\":\"Blob Ross\"}}' http://{listen}/scim/v2/Users\n\n\
         For a lasting key: scimd key create --org {BOOTSTRAP_ORG} --name <name>\n"
    );
    Ok(())
}

/// Name of the key `bootstrap` mints.
pub const BOOTSTRAP_KEY_NAME: &str = "bootstrap";

fn bootstrap_lifetime_ms(hours: u64) -> i64 {
    i64::try_from(hours.max(1))
        .unwrap_or(i64::MAX)
        .saturating_mul(3_600_000)
}

/// Active bootstrap keys that outlive the bootstrap lifetime: minted by versions that made it
/// valid for 100 years (no recorded expiry), or with a longer `SCIMD_BOOTSTRAP_KEY_HOURS`.
pub fn long_lived_bootstrap_keys(keys: &[ApiKey], now_ms: i64, hours: u64) -> Vec<&ApiKey> {
    let latest = now_ms.saturating_add(bootstrap_lifetime_ms(hours));
    keys.iter()
        .filter(|k| k.name.as_deref() == Some(BOOTSTRAP_KEY_NAME) && k.revoked_at.is_none())
        .filter(|k| match k.expires_at {
            None => true,
            Some(at) => at > latest,
        })
        .collect()
}

/// Warns at start while such a key is active (its id only; the token was never stored).
async fn warn_long_lived_bootstrap_keys(backend: &Backend, hours: u64) {
    let Ok(org) = backend.store.org_by_slug(BOOTSTRAP_ORG).await else {
        return;
    };
    let keys = match backend.store.list_api_keys(org.id).await {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!(error = %e, "could not check for long-lived bootstrap keys");
            return;
        }
    };
    for key in long_lived_bootstrap_keys(&keys, now_ms(), hours) {
        tracing::warn!(
            key_id = %key.id,
            "the bootstrap API key printed at first start is still active and does not expire \
             within SCIMD_BOOTSTRAP_KEY_HOURS; it may be in old logs: revoke it \
             (scimd key revoke {}) once your IdP uses a key of its own",
            key.id
        );
    }
}

/// `scimd serve`: binds, serves, and drains on SIGTERM or Ctrl-C. With `SCIMD_METRICS_LISTEN`,
/// `/metrics` is served on that address alone (e.g. a port only the scraper can reach) and
/// the main listener answers it 404.
pub async fn serve(store_config: &StoreConfig, config: &ServeConfig) -> anyhow::Result<()> {
    let state = serve_state(store_config, config).await?;
    crate::audit::retention::spawn(state.store.clone(), state.settings.change_retention);
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        database = state.store.kind(),
        "scimd serving"
    );
    let Some(metrics_listen) = &config.metrics_listen else {
        crate::http::serve(listener, state, shutdown_signal()).await?;
        tracing::info!("scimd stopped");
        return Ok(());
    };
    let metrics_listener = tokio::net::TcpListener::bind(metrics_listen)
        .await
        .with_context(|| format!("cannot listen on {metrics_listen} (SCIMD_METRICS_LISTEN)"))?;
    tracing::info!(listen = %metrics_listener.local_addr()?, "metrics serving");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let transport = crate::http::Transport::from_settings(&state.settings);
    let metrics = tokio::spawn(crate::http::serve_router(
        metrics_listener,
        crate::http::metrics_router(state.clone()),
        transport,
        stopped(stop_rx.clone()),
    ));
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    crate::http::serve_router(
        listener,
        crate::http::router_without_metrics(state),
        transport,
        stopped(stop_rx),
    )
    .await?;
    metrics.await.context("metrics listener")??;
    tracing::info!("scimd stopped");
    Ok(())
}

/// Resolves on SIGTERM (how containers are stopped) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// `scimd healthcheck`: asks the server on `listen` for `/healthz` (used by the Docker
/// HEALTHCHECK, so the image needs no curl). A wildcard listen address is reached on loopback.
pub async fn healthcheck(listen: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = listen
        .replace("0.0.0.0:", "127.0.0.1:")
        .replace("[::]:", "[::1]:");
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(&target).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = vec![0u8; 64];
        let n = stream.read(&mut head).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..n]).into_owned())
    };
    let head = tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .with_context(|| format!("no answer from {target} within 5 s"))?
        .with_context(|| format!("cannot reach {target}"))?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200"),
        "{target}/healthz answered {:?}",
        head.lines().next().unwrap_or("")
    );
    Ok(())
}

/// One line per key for `scimd key list`: id, kind, state, name.
pub fn describe_key(key: &ApiKey) -> String {
    let state = if key.revoked_at.is_some() {
        "revoked"
    } else if key.expires_at.is_some_and(|at| at <= now_ms()) {
        "expired"
    } else {
        "active"
    };
    format!(
        "{}\t{}\t{}\t{}",
        key.id,
        key.kind.as_str(),
        state,
        key.name.as_deref().unwrap_or("-")
    )
}

/// `scimd org create SLUG`.
pub async fn create_org(backend: &Backend, slug: &str) -> anyhow::Result<Uuid> {
    anyhow::ensure!(
        valid_slug(slug),
        "organization slug {slug:?} must be 1-63 of a-z, 0-9 and -"
    );
    match backend.store.create_org(slug).await {
        Ok(org) => Ok(org.id),
        Err(StoreError::Conflict(_)) => anyhow::bail!("organization {slug:?} already exists"),
        Err(e) => Err(e.into()),
    }
}

fn valid_slug(slug: &str) -> bool {
    (1..=63).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

async fn org_id(backend: &Backend, slug: &str) -> anyhow::Result<Uuid> {
    match backend.store.org_by_slug(slug).await {
        Ok(org) => Ok(org.id),
        Err(StoreError::NotFound) => anyhow::bail!("no organization {slug:?}"),
        Err(e) => Err(e.into()),
    }
}

/// `scimd key create`: returns the token (the only thing printed on stdout).
pub async fn create_key(
    backend: &Backend,
    org: &str,
    personal: bool,
    name: Option<String>,
    expires_in: Option<&str>,
) -> anyhow::Result<String> {
    let org_id = org_id(backend, org).await?;
    let lifetime = expires_in.map(auth::parse_duration_ms).transpose()?;
    let kind = if personal {
        KeyKind::Personal
    } else {
        KeyKind::Organization
    };
    let (_, token) = backend.auth.mint(org_id, kind, name, lifetime).await?;
    Ok(token)
}

/// `scimd key list`.
pub async fn list_keys(backend: &Backend, org: &str) -> anyhow::Result<Vec<ApiKey>> {
    let org_id = org_id(backend, org).await?;
    Ok(backend.store.list_api_keys(org_id).await?)
}

/// `scimd key revoke`.
pub async fn revoke_key(backend: &Backend, key_id: &str) -> anyhow::Result<()> {
    let id = Uuid::parse_str(key_id).with_context(|| format!("{key_id:?} is not a key id"))?;
    match backend.store.revoke_api_key(id, now_ms()).await {
        Err(StoreError::NotFound) => anyhow::bail!("no key {key_id}"),
        other => Ok(other?),
    }
}

/// `scimd user-attribute create`.
pub async fn create_user_attribute(backend: &Backend, org: &str, key: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !key.is_empty()
            && key.len() <= 128
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "attribute key {key:?} must be 1-128 of A-Z, a-z, 0-9, _ and -"
    );
    let org_id = org_id(backend, org).await?;
    match backend.store.create_user_attribute(org_id, key).await {
        Err(StoreError::Conflict(_)) => anyhow::bail!("attribute {key:?} already exists"),
        other => Ok(other?),
    }
}

/// `scimd audit`: what to read and how to print it.
#[derive(Debug, Clone, Default)]
pub struct AuditRequest {
    pub org: String,
    /// A position, an RFC 3339 time or an age (`24h`).
    pub since: Option<String>,
    pub resource: Option<String>,
    pub key: Option<String>,
    /// Rejected writes instead of the change log.
    pub failed: bool,
    /// JSON lines instead of a table.
    pub json: bool,
    pub limit: i64,
}

/// `scimd audit`: an organization's change log (or its rejected writes), oldest first.
pub async fn audit(backend: &Backend, request: &AuditRequest) -> anyhow::Result<String> {
    use crate::audit::report;
    let org_id = org_id(backend, &request.org).await?;
    let id = |what: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| Uuid::parse_str(t).with_context(|| format!("{what} {t:?} is not an id")))
            .transpose()
    };
    let mut query = crate::store::AuditQuery {
        resource_id: id("--resource", &request.resource)?,
        key_id: id("--key", &request.key)?,
        limit: request.limit.max(1),
        ..Default::default()
    };
    if let Some(since) = &request.since {
        report::since(since, &mut query)?;
    }
    if request.failed {
        let writes = backend.store.rejected_writes(org_id, &query).await?;
        return if request.json {
            report::json_lines(&writes)
        } else {
            Ok(report::rejected_table(&writes))
        };
    }
    let entries = backend.store.changes(org_id, &query).await?;
    if request.json {
        report::json_lines(&entries)
    } else {
        Ok(report::changes_table(&entries))
    }
}

/// `scimd stream create`: what the new stream is.
#[derive(Debug, Clone, Default)]
pub struct StreamRequest {
    pub org: String,
    /// Push to this `http`/`https` URL; else poll.
    pub push: Option<String>,
    /// Event names, comma-separated (all when absent).
    pub events: Option<String>,
    pub full: bool,
    pub auth_header: Option<String>,
}

/// `scimd stream create`: the stream, and for a poll stream its token (shown once).
pub async fn create_stream(
    backend: &Backend,
    request: &StreamRequest,
) -> anyhow::Result<(crate::store::EventStream, Option<String>)> {
    use crate::scim::events::EVENT_NAMES;
    use crate::store::{NewStream, StreamKind};
    let org_id = org_id(backend, &request.org).await?;
    let events: Vec<String> = match &request.events {
        None => EVENT_NAMES.iter().map(|e| e.to_string()).collect(),
        Some(list) => list
            .split(',')
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect(),
    };
    if let Some(unknown) = events.iter().find(|e| !EVENT_NAMES.contains(&e.as_str())) {
        anyhow::bail!(
            "unknown event {unknown:?}: choose from {}",
            EVENT_NAMES.join(", ")
        );
    }
    anyhow::ensure!(!events.is_empty(), "--events names no event");
    let (kind, token) = match &request.push {
        Some(url) => {
            let parsed =
                reqwest::Url::parse(url).with_context(|| format!("--push {url:?} is not a URL"))?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some(),
                "--push {url:?} must be an http:// or https:// URL"
            );
            (StreamKind::Push, None)
        }
        None => {
            anyhow::ensure!(
                request.auth_header.is_none(),
                "--auth-header goes with --push: a poll stream has a token of its own"
            );
            let token = auth::random_hex(32);
            (StreamKind::Poll, Some(format!("scimd_poll_{token}")))
        }
    };
    let stream = NewStream {
        kind,
        endpoint: request.push.clone(),
        events,
        full: request.full,
        auth_header: request.auth_header.clone(),
        poll_token_hash: token.as_deref().map(crate::http::poll_token_hash),
    };
    let created = backend.store.create_stream(org_id, &stream).await?;
    Ok((created, token))
}

/// `scimd stream list`.
pub async fn list_streams(
    backend: &Backend,
    org: &str,
) -> anyhow::Result<Vec<crate::store::EventStream>> {
    let org_id = org_id(backend, org).await?;
    Ok(backend.store.streams(org_id).await?)
}

/// One line of `scimd stream list`.
pub fn describe_stream(stream: &crate::store::EventStream) -> String {
    let target = match (&stream.endpoint, stream.kind) {
        (Some(url), _) => url.clone(),
        (None, _) => format!("poll: /events/streams/{}/poll", stream.id),
    };
    let mut line = format!(
        "{}  {}  {}  {}  events={}{}  position={}  delivered={}",
        stream.id,
        stream.kind.as_str(),
        stream.state.as_str(),
        target,
        stream.events.join(","),
        if stream.full { " full" } else { "" },
        stream.position,
        stream.delivered,
    );
    if let Some(error) = &stream.last_error {
        line.push_str(&format!("  last error: {error}"));
    }
    line
}

/// `scimd stream delete`.
pub async fn delete_stream(backend: &Backend, id: &str) -> anyhow::Result<()> {
    let id = Uuid::parse_str(id).with_context(|| format!("{id:?} is not a stream id"))?;
    match backend.store.delete_stream(id).await {
        Err(StoreError::NotFound) => anyhow::bail!("no stream {id}"),
        other => Ok(other?),
    }
}

/// `scimd event-key rotate`: a new key signs from now on; the old ones stay published.
pub async fn rotate_event_key(backend: &Backend) -> anyhow::Result<String> {
    crate::events::signing::rotate(&*backend.store).await
}

/// `scimd user-attribute list`.
pub async fn list_user_attributes(backend: &Backend, org: &str) -> anyhow::Result<Vec<String>> {
    let org_id = org_id(backend, org).await?;
    Ok(backend.store.list_user_attributes(org_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_keys_without_expiry_or_beyond_the_lifetime_are_long_lived() {
        let now = 1_700_000_000_000;
        let hour = 3_600_000;
        let key = |name: &str, expires_at: Option<i64>, revoked_at: Option<i64>| ApiKey {
            id: Uuid::now_v7(),
            org_id: Uuid::nil(),
            name: Some(name.into()),
            kind: KeyKind::Organization,
            created_at: now - hour,
            expires_at,
            revoked_at,
        };
        let keys = [
            key("bootstrap", None, None),                  // old version: 100 years
            key("bootstrap", Some(now + 48 * hour), None), // longer than 24 h
            key("bootstrap", Some(now + 23 * hour), None), // a current one
            key("bootstrap", None, Some(now)),             // revoked
            key("bootstrap", Some(now - hour), None),      // expired
            key("okta", None, None),                       // an operator's own key
        ];
        let found = long_lived_bootstrap_keys(&keys, now, 24);
        let ids: Vec<_> = found.iter().map(|k| k.id).collect();
        assert_eq!(ids, [keys[0].id, keys[1].id]);
        assert_eq!(long_lived_bootstrap_keys(&keys, now, 72).len(), 1);
    }

    #[test]
    fn slugs_are_lowercase_words() {
        for ok in ["default", "acme", "acme-2"] {
            assert!(valid_slug(ok), "{ok}");
        }
        for bad in ["", "Acme", "a b", "a/b", &"x".repeat(64)] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }
}
