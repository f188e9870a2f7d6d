//! Event streams and signing keys in the skeleton: create at the head of the log, list, the
//! push leases (one statement takes or renews them all), acknowledged progress guarded by
//! the lease, failing and disabled states, and the signing keys.

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::{Arg, Dialect, RowOf, SqlDb, SqlStore, first_int};
use crate::store::{
    EventStream, NewStream, SigningKeyRow, StoreError, StoreResult, StreamKind, StreamProgress,
    StreamState, StreamStore, now_ms,
};

const STREAM_COLUMNS: &str = "org_id, id, kind, endpoint, events, full_data, auth_header, \
     poll_token_hash, position, acked_ahead, state, failing_since, last_error, last_ack_at, \
     delivered, created_at, lease_owner, lease_until";

fn decode_error(what: &str) -> StoreError {
    StoreError::Backend(sqlx::Error::Decode(what.to_string().into()))
}

fn stream_from_row<D: Dialect>(row: &RowOf<D>) -> StoreResult<EventStream> {
    let strings = |value: Option<Value>| -> Vec<String> {
        value
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    };
    let positions: Vec<i64> = D::DB::opt_json(row, "acked_ahead")?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    Ok(EventStream {
        org_id: D::uuid(row, "org_id")?,
        id: D::uuid(row, "id")?,
        kind: StreamKind::parse(&D::DB::text(row, "kind")?)
            .ok_or_else(|| decode_error("stream kind"))?,
        endpoint: D::DB::opt_text(row, "endpoint")?,
        events: strings(D::DB::opt_json(row, "events")?),
        full: D::DB::flag(row, "full_data")?,
        auth_header: D::DB::opt_text(row, "auth_header")?,
        poll_token_hash: D::DB::opt_text(row, "poll_token_hash")?,
        position: D::DB::int(row, "position")?,
        acked_ahead: positions,
        state: StreamState::parse(&D::DB::text(row, "state")?)
            .ok_or_else(|| decode_error("stream state"))?,
        failing_since: D::DB::opt_int(row, "failing_since")?,
        last_error: D::DB::opt_text(row, "last_error")?,
        last_ack_at: D::DB::int(row, "last_ack_at")?,
        delivered: D::DB::int(row, "delivered")?,
        created_at: D::DB::int(row, "created_at")?,
        lease_owner: D::opt_uuid(row, "lease_owner")?,
        lease_until: D::DB::opt_int(row, "lease_until")?,
    })
}

#[async_trait]
impl<D: Dialect> StreamStore for SqlStore<D> {
    async fn create_stream(&self, org_id: Uuid, stream: &NewStream) -> StoreResult<EventStream> {
        let sql = format!(
            "insert into event_streams ({STREAM_COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, \
             $8, {}, null, 'active', null, null, $9, 0, $9, null, null) \
             returning {STREAM_COLUMNS}",
            D::CHANGES_HEAD
        );
        let events = Value::from(stream.events.clone());
        let args = [
            Arg::Uuid(org_id),
            Arg::Uuid(Uuid::now_v7()),
            Arg::Text(stream.kind.as_str()),
            Arg::OptText(stream.endpoint.as_deref()),
            Arg::Json(&events),
            Arg::Bool(stream.full),
            Arg::OptText(stream.auth_header.as_deref()),
            Arg::OptText(stream.poll_token_hash.as_deref()),
            Arg::Int(now_ms()),
        ];
        let mut conn = self.dialect.writer().acquire().await?;
        let row = super::fetch_optional::<D>(&mut conn, &sql, &args)
            .await?
            .ok_or(StoreError::NotFound)?;
        stream_from_row::<D>(&row)
    }

    async fn streams(&self, org_id: Uuid) -> StoreResult<Vec<EventStream>> {
        let sql = format!(
            "select {STREAM_COLUMNS} from event_streams where org_id = $1 order by created_at, id"
        );
        let rows = self.read_all(&sql, &[Arg::Uuid(org_id)]).await?;
        rows.iter().map(stream_from_row::<D>).collect()
    }

    async fn stream(&self, id: Uuid) -> StoreResult<EventStream> {
        let sql = format!("select {STREAM_COLUMNS} from event_streams where id = $1");
        let row = self
            .read_optional(&sql, &[Arg::Uuid(id)])
            .await?
            .ok_or(StoreError::NotFound)?;
        stream_from_row::<D>(&row)
    }

    async fn delete_stream(&self, id: Uuid) -> StoreResult<()> {
        let deleted = self
            .write("delete from event_streams where id = $1", &[Arg::Uuid(id)])
            .await?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn lease_push_streams(
        &self,
        owner: Uuid,
        now: i64,
        until: i64,
    ) -> StoreResult<Vec<EventStream>> {
        let sql = format!(
            "update event_streams set lease_owner = $1, lease_until = $3 \
             where kind = 'push' and state <> 'disabled' \
             and (lease_owner is null or lease_owner = $1 or lease_until < $2) \
             returning {STREAM_COLUMNS}"
        );
        let mut conn = self.dialect.writer().acquire().await?;
        let args = [Arg::Uuid(owner), Arg::Int(now), Arg::Int(until)];
        let rows = super::fetch_all::<D>(&mut conn, &sql, &args).await?;
        rows.iter().map(stream_from_row::<D>).collect()
    }

    async fn advance_stream(
        &self,
        id: Uuid,
        owner: Option<Uuid>,
        progress: &StreamProgress,
    ) -> StoreResult<bool> {
        let ahead = Value::from(progress.acked_ahead.clone());
        let lease = if owner.is_some() {
            " and lease_owner = $6"
        } else {
            ""
        };
        let sql = format!(
            "update event_streams set position = {}(position, $2), acked_ahead = $3, \
             delivered = delivered + $4, last_ack_at = $5, state = 'active', \
             failing_since = null, last_error = null where id = $1 and state <> 'disabled'{lease}",
            D::GREATEST
        );
        let mut args = vec![
            Arg::Uuid(id),
            Arg::Int(progress.position),
            Arg::Json(&ahead),
            Arg::Int(progress.delivered),
            Arg::Int(progress.at),
        ];
        if let Some(owner) = owner {
            args.push(Arg::Uuid(owner));
        }
        Ok(self.write(&sql, &args).await? > 0)
    }

    async fn stream_failing(
        &self,
        id: Uuid,
        owner: Uuid,
        since: i64,
        error: &str,
    ) -> StoreResult<()> {
        let sql = "update event_streams set state = 'failing', failing_since = $3, \
             last_error = $4 where id = $1 and lease_owner = $2 and state = 'active'";
        let args = [
            Arg::Uuid(id),
            Arg::Uuid(owner),
            Arg::Int(since),
            Arg::Text(error),
        ];
        self.write(sql, &args).await?;
        Ok(())
    }

    async fn disable_silent_streams(&self, before: i64) -> StoreResult<Vec<Uuid>> {
        let sql = "update event_streams set state = 'disabled', lease_owner = null, \
             lease_until = null where state <> 'disabled' and last_ack_at < $1 returning id";
        let mut conn = self.dialect.writer().acquire().await?;
        let rows = super::fetch_all::<D>(&mut conn, sql, &[Arg::Int(before)]).await?;
        rows.iter().map(|row| D::uuid(row, "id")).collect()
    }

    async fn entries_after(&self, org_id: Uuid, position: i64, cap: i64) -> StoreResult<i64> {
        let sql = format!(
            "select count(*) from (select 1 from changes where org_id = $1 and position > $2 \
             and {} limit $3) behind",
            D::CHANGES_VISIBLE
        );
        let args = [Arg::Uuid(org_id), Arg::Int(position), Arg::Int(cap)];
        let row = self
            .read_optional(&sql, &args)
            .await?
            .ok_or(StoreError::NotFound)?;
        first_int::<D>(&row)
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRow>> {
        let sql = "select kid, private_key, created_at, retired_at from event_signing_keys \
             order by created_at desc";
        let rows = self.read_all(sql, &[]).await?;
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRow {
                    kid: D::DB::text(row, "kid")?,
                    private_key: D::DB::text(row, "private_key")?,
                    created_at: D::DB::int(row, "created_at")?,
                    retired_at: D::DB::opt_int(row, "retired_at")?,
                })
            })
            .collect()
    }

    async fn rotate_signing_key(&self, key: &SigningKeyRow) -> StoreResult<()> {
        let mut tx = self.dialect.writer().begin().await?;
        super::execute::<D>(
            &mut tx,
            "update event_signing_keys set retired_at = $1 where retired_at is null",
            &[Arg::Int(key.created_at)],
        )
        .await?;
        super::execute::<D>(
            &mut tx,
            "insert into event_signing_keys (kid, private_key, created_at) values ($1, $2, $3)",
            &[
                Arg::Text(&key.kid),
                Arg::Text(&key.private_key),
                Arg::Int(key.created_at),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
