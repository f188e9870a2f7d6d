//! Start-up and the command line's operations: connect the store, resolve the initial
//! signing secret, bootstrap an empty database; every administrative command calls the same
//! function of [`crate::admin`] as the admin API, as the operator "command line".

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use uuid::Uuid;

use crate::admin::{self, Admin, KeyView, NewKey, OrgView, SecretView, command_line};
use crate::auth::{self, Authenticator};
use crate::config::{ServeConfig, StoreConfig};
use crate::http::AppState;
use crate::store::{self, ApiKey, KeyKind, Store, StoreOptions, now_ms};

/// The organization created on the first start against an empty database.
pub const BOOTSTRAP_ORG: &str = "default";

/// An open store plus the key authority that signs for it.
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub auth: Arc<Authenticator>,
}

impl Backend {
    /// The administrative operations over this store.
    pub fn admin(&self) -> Admin {
        Admin::new(self.store.clone(), self.auth.clone())
    }
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
    let settings = config.settings();
    backend.store.adopt_profile(settings.profile).await?;
    if config.bootstrap && backend.store.count_orgs().await? == 0 {
        bootstrap(&backend, &config.listen, config.bootstrap_key_hours).await?;
    } else {
        warn_long_lived_bootstrap_keys(&backend, config.bootstrap_key_hours).await;
    }
    Ok(AppState::new(backend.store, backend.auth, settings))
}

/// First start: create org `default` and show one key with a ready-to-paste request. The key
/// expires after `hours` (`SCIMD_BOOTSTRAP_KEY_HOURS`): it is printed to stderr, which in a
/// container is the log, so it must not stay a way in for good.
async fn bootstrap(backend: &Backend, listen: &str, hours: u64) -> anyhow::Result<()> {
    let org = backend.store.create_org(BOOTSTRAP_ORG).await?;
    let (key, token) = backend
        .auth
        .mint(
            Some(org.id),
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
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(crate::http::tls::acceptor(cert, key)?),
        _ => None,
    };
    let state = serve_state(store_config, config).await?;
    crate::audit::retention::spawn(state.store.clone(), state.settings.change_retention);
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        database = state.store.kind(),
        tls = tls.is_some(),
        profile = state.settings.profile.as_str(),
        "scimd serving"
    );
    let Some(metrics_listen) = &config.metrics_listen else {
        crate::http::serve_tls(listener, state, tls, shutdown_signal()).await?;
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
        None,
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
        tls,
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
    let target = loopback(listen);
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

/// [`healthcheck`] of a server that terminates TLS (`SCIMD_TLS_CERT` set). The certificate
/// is not verified: it names the public host, not the loopback address asked, and the check
/// is of liveness only.
pub async fn healthcheck_tls(listen: &str) -> anyhow::Result<()> {
    let target = loopback(listen);
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(5))
        .build()?;
    let status = client
        .get(format!("https://{target}/healthz"))
        .send()
        .await
        .with_context(|| format!("cannot reach https://{target}"))?
        .status();
    anyhow::ensure!(status == 200, "https://{target}/healthz answered {status}");
    Ok(())
}

/// A listen address as a client on this host reaches it (a wildcard → loopback).
fn loopback(listen: &str) -> String {
    listen
        .replace("0.0.0.0:", "127.0.0.1:")
        .replace("[::]:", "[::1]:")
}

/// One line per key for `scimd key list`: id, kind, state, name, secret, last use.
pub fn describe_key(key: &KeyView) -> String {
    let last_used = key.last_used.as_ref().map_or_else(
        || "never used".to_string(),
        |used| {
            format!(
                "last used {} from {} by {}",
                time(used.at),
                used.client_addr.as_deref().unwrap_or("-"),
                used.user_agent.as_deref().unwrap_or("-")
            )
        },
    );
    format!(
        "{}\t{}\t{}\t{}\tsecret={}\t{last_used}",
        key.id,
        key.kind,
        key.state,
        key.name.as_deref().unwrap_or("-"),
        key.secret,
    )
}

/// Milliseconds since the epoch as an RFC 3339 UTC time.
fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// One line per organization for `scimd org list` / `org get`.
pub fn describe_org(org: &OrgView) -> String {
    let mut line = format!(
        "{}\t{}\t{}\tusers={}\tgroups={}\tkeys={}\tcreated {}",
        org.slug,
        org.id,
        org.state,
        org.users,
        org.groups,
        org.keys,
        time(org.created_at)
    );
    if let Some(deletion) = &org.deletion {
        line.push_str(&format!("\trows removed={}", deletion.rows_removed));
    }
    line
}

/// One line per secret for `scimd secret list`.
pub fn describe_secret(secret: &SecretView) -> String {
    let state = match (secret.retired_at, secret.signing) {
        (Some(at), _) => format!("retired {}", time(at)),
        (None, true) => "active, signs new keys".to_string(),
        (None, false) => "active".to_string(),
    };
    format!("{}\t{state}\tlive keys={}", secret.id, secret.live_keys)
}

/// `scimd org create SLUG`.
pub async fn create_org(backend: &Backend, slug: &str) -> anyhow::Result<Uuid> {
    Ok(backend.admin().create_org(&command_line(), slug).await?.id)
}

/// `scimd org list`.
pub async fn list_orgs(backend: &Backend) -> anyhow::Result<Vec<OrgView>> {
    Ok(backend.admin().orgs().await?)
}

/// `scimd org get SLUG`.
pub async fn get_org(backend: &Backend, slug: &str) -> anyhow::Result<OrgView> {
    Ok(backend.admin().org(slug).await?)
}

/// `scimd org rename SLUG NEW`.
pub async fn rename_org(backend: &Backend, slug: &str, new_slug: &str) -> anyhow::Result<()> {
    backend
        .admin()
        .rename_org(&command_line(), slug, new_slug)
        .await?;
    Ok(())
}

/// `scimd org delete SLUG`: disables the organization, then (unless `background`) removes
/// its data here, batch by batch, printing progress to stderr; with `background`, a running
/// server removes it.
pub async fn delete_org(backend: &Backend, slug: &str, background: bool) -> anyhow::Result<()> {
    let admin = backend.admin();
    let deletion = admin.delete_org(&command_line(), slug).await?;
    if background {
        eprintln!("scimd: organization {slug:?} deleted; a running server removes its data");
        return Ok(());
    }
    let mut last_report = std::time::Instant::now();
    admin
        .run_deletion(&deletion, admin::DELETE_BATCH, |removed| {
            if last_report.elapsed() >= Duration::from_secs(2) {
                eprintln!("scimd: {removed} rows removed");
                last_report = std::time::Instant::now();
            }
        })
        .await?;
    eprintln!("scimd: organization {slug:?} and all its data deleted");
    Ok(())
}

/// `scimd key create`: returns the token (the only thing printed on stdout).
pub async fn create_key(
    backend: &Backend,
    org: &str,
    personal: bool,
    name: Option<String>,
    expires_in: Option<&str>,
) -> anyhow::Result<String> {
    let new = NewKey {
        name,
        personal,
        lifetime_ms: expires_in.map(auth::parse_duration_ms).transpose()?,
    };
    let (_, token) = backend
        .admin()
        .create_key(&command_line(), org, &new)
        .await?;
    Ok(token)
}

/// `scimd key list`.
pub async fn list_keys(backend: &Backend, org: &str) -> anyhow::Result<Vec<KeyView>> {
    Ok(backend.admin().keys(org).await?)
}

/// `scimd key revoke`.
pub async fn revoke_key(backend: &Backend, key_id: &str) -> anyhow::Result<()> {
    let id = Uuid::parse_str(key_id).with_context(|| format!("{key_id:?} is not a key id"))?;
    Ok(backend
        .admin()
        .revoke_key(&command_line(), None, id)
        .await?)
}

/// `scimd admin-key create`: returns the token.
pub async fn create_admin_key(
    backend: &Backend,
    name: Option<String>,
    expires_in: Option<&str>,
) -> anyhow::Result<String> {
    let new = NewKey {
        name,
        personal: false,
        lifetime_ms: expires_in.map(auth::parse_duration_ms).transpose()?,
    };
    let (_, token) = backend
        .admin()
        .create_admin_key(&command_line(), &new)
        .await?;
    Ok(token)
}

/// `scimd admin-key list`.
pub async fn list_admin_keys(backend: &Backend) -> anyhow::Result<Vec<KeyView>> {
    Ok(backend.admin().admin_keys().await?)
}

/// `scimd admin-key revoke`.
pub async fn revoke_admin_key(backend: &Backend, key_id: &str) -> anyhow::Result<()> {
    let id = Uuid::parse_str(key_id).with_context(|| format!("{key_id:?} is not a key id"))?;
    Ok(backend
        .admin()
        .revoke_admin_key(&command_line(), id)
        .await?)
}

/// `scimd secret rotate`: the new secret's id.
pub async fn rotate_secret(backend: &Backend) -> anyhow::Result<String> {
    Ok(backend.admin().rotate_secret(&command_line()).await?.id)
}

/// `scimd secret list`.
pub async fn list_secrets(backend: &Backend) -> anyhow::Result<Vec<SecretView>> {
    Ok(backend.admin().secrets().await?)
}

/// `scimd secret retire`: how many live keys it invalidated.
pub async fn retire_secret(backend: &Backend, id: &str, force: bool) -> anyhow::Result<i64> {
    Ok(backend
        .admin()
        .retire_secret(&command_line(), id, force)
        .await?)
}

/// `scimd admin-log`: the operators' audit trail as JSON lines.
pub async fn admin_log(backend: &Backend, limit: i64) -> anyhow::Result<String> {
    let actions = backend.admin().actions(None, limit).await?;
    crate::audit::report::json_lines(&actions)
}

/// `scimd user-attribute create`.
pub async fn create_user_attribute(backend: &Backend, org: &str, key: &str) -> anyhow::Result<()> {
    Ok(backend
        .admin()
        .create_user_attribute(&command_line(), org, key)
        .await?)
}

/// `scimd user-attribute delete`.
pub async fn delete_user_attribute(backend: &Backend, org: &str, key: &str) -> anyhow::Result<()> {
    Ok(backend
        .admin()
        .delete_user_attribute(&command_line(), org, key)
        .await?)
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
    let admin = backend.admin();
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
        let writes = admin.rejected(&request.org, &query).await?;
        return if request.json {
            report::json_lines(&writes)
        } else {
            Ok(report::rejected_table(&writes))
        };
    }
    let entries = admin.changes(&request.org, &query).await?;
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
    let stream = admin::StreamRequest {
        push: request.push.clone(),
        events: request
            .events
            .as_ref()
            .map(|list| list.split(',').map(str::to_string).collect()),
        full: request.full,
        auth_header: request.auth_header.clone(),
    };
    Ok(backend
        .admin()
        .create_stream(&command_line(), &request.org, &stream)
        .await?)
}

/// `scimd stream list`.
pub async fn list_streams(
    backend: &Backend,
    org: &str,
) -> anyhow::Result<Vec<crate::store::EventStream>> {
    Ok(backend.admin().streams(org).await?)
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
    Ok(backend
        .admin()
        .delete_stream(&command_line(), None, id)
        .await?)
}

/// `scimd event-key rotate`: a new key signs from now on; the old ones stay published.
pub async fn rotate_event_key(backend: &Backend) -> anyhow::Result<String> {
    crate::events::signing::rotate(&*backend.store).await
}

/// `scimd user-attribute list`.
pub async fn list_user_attributes(backend: &Backend, org: &str) -> anyhow::Result<Vec<String>> {
    Ok(backend.admin().user_attributes(org).await?)
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
            org_id: Some(Uuid::nil()),
            name: Some(name.into()),
            kind: KeyKind::Organization,
            created_at: now - hour,
            expires_at,
            revoked_at,
            secret_id: crate::store::admin::INITIAL_SECRET.into(),
            last_used: None,
            org_deleted: false,
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
}
