//! The change log and the rejected writes in the skeleton: an entry appended inside the
//! transaction of its change, the reads behind `scimd audit` (only entries no later commit
//! can precede), the batch insert of rejected writes and the retention prune.

use std::net::IpAddr;

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::member_queue::MemberChange;
use super::{Arg, Conn, Dialect, OwnedArg, RowOf, SqlDb, SqlStore, bind, execute, settled};
use crate::store::activity::{Activity, ActivityCount, HOUR_MS};
use crate::store::{
    AuditQuery, AuditStore, ChangeEntry, ChangeWrite, RejectedWrite, StoreError, StoreResult,
    now_ms,
};

const CHANGE_COLUMNS: &str = "org_id, position, at, resource_type, resource_id, external_id, \
     operation, activation, attributes, version, key_id, key_name, request_id, client_addr, \
     user_agent, memberships, data";

const REJECTED_COLUMNS: &str = "org_id, id, at, key_id, key_name, request_id, client_addr, \
     user_agent, method, path, status, scim_type, detail";

/// What an entry binds that it does not hold as such: computed once, borrowed by the args.
struct EntryValues {
    at: i64,
    attributes: Value,
    memberships: Option<Value>,
    client_addr: Option<String>,
}

impl EntryValues {
    fn of(entry: &ChangeWrite<'_>) -> EntryValues {
        EntryValues {
            at: now_ms(),
            attributes: Value::from(entry.attributes.clone()),
            memberships: entry.memberships.as_ref().map(|m| m.to_json()),
            client_addr: entry.request.actor.client_addr.map(addr_text),
        }
    }

    /// The entry's arguments, in the order of [`entry_values`].
    fn args<'a>(&'a self, org_id: Uuid, entry: &'a ChangeWrite<'a>) -> [Arg<'a>; 16] {
        let request = entry.request;
        let actor = request.actor;
        [
            Arg::Uuid(org_id),
            Arg::Int(self.at),
            Arg::Text(entry.resource_type),
            Arg::Uuid(entry.resource_id),
            Arg::OptText(entry.external_id),
            Arg::Text(request.operation.as_str()),
            Arg::OptText(entry.activation),
            Arg::Json(&self.attributes),
            Arg::Int(entry.version),
            Arg::OptUuid(actor.key_id),
            Arg::OptText(actor.key_name.as_deref()),
            Arg::OptText(actor.request_id.as_deref()),
            Arg::OptText(self.client_addr.as_deref()),
            Arg::OptText(actor.user_agent.as_deref()),
            Arg::OptJson(self.memberships.as_ref()),
            Arg::OptJson(request.data.as_ref()),
        ]
    }
}

/// A client address as the entry stores it (`Display`'s form). An IPv4 address is written
/// digit by digit: through `Display` it cost about 1,300 instructions of every write.
fn addr_text(addr: IpAddr) -> String {
    let IpAddr::V4(v4) = addr else {
        return addr.to_string();
    };
    let mut text = String::with_capacity(15);
    let mut digits = itoa::Buffer::new();
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        text.push_str(digits.format(octet));
    }
    text
}

/// The values of [`CHANGE_COLUMNS`] for the `ordinal`th of `count` entries inserted by one
/// statement: the position computed and the rest bound from `$first` on (16 parameters).
fn entry_values<D: Dialect>(first: usize, ordinal: usize, count: usize) -> String {
    entry_values_with(first, &D::change_position(ordinal, count), &[])
}

/// The entry's version and memberships, where the statement that writes the entry computes
/// them: (place among the 16 bound values, SQL expression).
const COMPUTED_VERSION: usize = 8;
const COMPUTED_MEMBERSHIPS: usize = 14;

/// [`entry_values`] with the entry's `position` expression given, and some of the 16 values
/// given as SQL expressions (`computed`: place, expression) instead of bound; the others are
/// bound from `$first` on, in order.
fn entry_values_with(first: usize, position: &str, computed: &[(usize, &str)]) -> String {
    // Pushed into one string: every write builds this, and a `format!` per value was 4 % of
    // a PATCH's instructions.
    let mut values = String::with_capacity(200);
    let mut digits = itoa::Buffer::new();
    let mut next = first;
    for i in 0..16 {
        if i > 0 {
            values.push_str(", ");
        }
        match computed.iter().find(|(at, _)| *at == i) {
            Some((_, expression)) => values.push_str(expression),
            None => {
                values.push('$');
                values.push_str(digits.format(next));
                next += 1;
            }
        }
        if i == 0 {
            values.push_str(", ");
            values.push_str(position);
        }
    }
    values
}

/// A group's member change as the one statement the dialect builds
/// ([`Dialect::member_change_sql`]), the entry's version and memberships computed by it, ready
/// to run on another task: `args` are the statement's own (`$1`–`$5`), the entry's place among
/// its transaction's entries is bound next ([`MemberChange::ordinal_at`]: 0 when the change
/// runs alone), then the entry's values. `None` where the dialect has no such statement.
pub(super) fn member_change_statement<D: Dialect>(
    add: bool,
    args: &[Arg<'_>],
    org_id: Uuid,
    entry: &ChangeWrite<'_>,
) -> Option<MemberChange> {
    let ordinal_at = args.len();
    let position = D::change_position_bound(ordinal_at + 1)?;
    let values = entry_values_with(
        ordinal_at + 2,
        &position,
        &[
            (COMPUTED_VERSION, "version"),
            (COMPUTED_MEMBERSHIPS, D::member_change_memberships(add)),
        ],
    );
    let sql = D::member_change_sql(
        add,
        &format!("insert into changes ({CHANGE_COLUMNS}) select {values} from written"),
    )?;
    let entry_values = EntryValues::of(entry);
    let mut all: Vec<OwnedArg> = args.iter().map(|arg| OwnedArg::of(*arg)).collect();
    all.push(OwnedArg::Int(0));
    all.extend(
        entry_values
            .args(org_id, entry)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != COMPUTED_VERSION && *i != COMPUTED_MEMBERSHIPS)
            .map(|(_, arg)| OwnedArg::of(arg)),
    );
    Some(MemberChange {
        sql,
        args: all,
        ordinal_at,
    })
}

/// Appends `entries` for `org_id` on `conn` in one statement, inside the transaction of the
/// changes they record (its only entries): all commit, or none does.
pub(super) async fn append<D: Dialect>(
    conn: &mut Conn<D>,
    org_id: Uuid,
    entries: &[ChangeWrite<'_>],
) -> StoreResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let count = entries.len();
    // The callers' batches are far smaller (`resources::bulk::CREATE_BATCH`).
    debug_assert!(count <= D::MAX_ENTRIES_PER_TRANSACTION);
    if let Some(bump) = D::change_position_bump(count) {
        execute::<D>(conn, &bump, &[]).await?;
    }
    let rows: Vec<String> = (0..count)
        .map(|i| format!("({})", entry_values::<D>(i * 16 + 1, i, count)))
        .collect();
    let sql = format!(
        "insert into changes ({CHANGE_COLUMNS}) values {}",
        rows.join(", ")
    );
    let values: Vec<EntryValues> = entries.iter().map(EntryValues::of).collect();
    let args: Vec<Arg<'_>> = values
        .iter()
        .zip(entries)
        .flat_map(|(values, entry)| values.args(org_id, entry))
        .collect();
    execute::<D>(conn, &sql, &args).await?;
    Ok(())
}

/// Runs `write` (one `insert`, `update` or `delete … returning` the row) and appends `entry`
/// for it, inside the caller's transaction; returns the written row, or none when `write`
/// matched nothing (and then appends nothing). Where the dialect allows, both go in one
/// statement (Postgres: the entry's insert as a data-modifying `with`), which saves a
/// round trip on every write. `conflict` maps the write's own errors.
pub(super) async fn write_logged<D: Dialect>(
    conn: &mut Conn<D>,
    write: &str,
    write_args: &[Arg<'_>],
    org_id: Uuid,
    entry: &ChangeWrite<'_>,
    conflict: impl Fn(sqlx::Error) -> StoreError,
) -> StoreResult<Option<RowOf<D>>> {
    if !D::LOG_IN_WRITE {
        let result = D::DB::fetch_optional(conn, write, bind::<D>(write_args)?).await;
        let row = settled::<D, _>(conn, result).await.map_err(conflict)?;
        if row.is_some() {
            append::<D>(conn, org_id, std::slice::from_ref(entry)).await?;
        }
        return Ok(row);
    }
    let sql = logged_write_sql::<D>(write, write_args.len());
    run_logged_write::<D>(conn, &sql, write_args, org_id, entry, conflict).await
}

/// Where the dialect writes a change and its entry in one statement (`D::LOG_IN_WRITE`): that
/// statement, for `write` taking `write_arg_count` parameters (the entry's values are bound
/// after them). A caller that runs the same write on every request builds it once and runs it
/// with [`run_logged_write`].
pub(super) fn logged_write_sql<D: Dialect>(write: &str, write_arg_count: usize) -> String {
    format!(
        "with written as ({write}), logged as (insert into changes ({CHANGE_COLUMNS}) \
         select {} from written) select * from written",
        entry_values::<D>(write_arg_count + 1, 0, 1)
    )
}

/// Runs `sql`, a statement [`logged_write_sql`] built, with the write's arguments and
/// `entry`'s values, as [`write_logged`] does.
pub(super) async fn run_logged_write<D: Dialect>(
    conn: &mut Conn<D>,
    sql: &str,
    write_args: &[Arg<'_>],
    org_id: Uuid,
    entry: &ChangeWrite<'_>,
    conflict: impl Fn(sqlx::Error) -> StoreError,
) -> StoreResult<Option<RowOf<D>>> {
    let values = EntryValues::of(entry);
    let mut args = write_args.to_vec();
    args.extend(values.args(org_id, entry));
    let result = D::DB::fetch_optional(conn, sql, bind::<D>(&args)?).await;
    settled::<D, _>(conn, result).await.map_err(conflict)
}

fn change_from_row<D: Dialect>(row: &RowOf<D>) -> StoreResult<ChangeEntry> {
    let attributes = D::DB::opt_json(row, "attributes")?.unwrap_or_default();
    Ok(ChangeEntry {
        position: D::DB::int(row, "position")?,
        org_id: D::uuid(row, "org_id")?,
        at: D::DB::int(row, "at")?,
        resource_type: D::DB::text(row, "resource_type")?,
        resource_id: D::uuid(row, "resource_id")?,
        external_id: D::DB::opt_text(row, "external_id")?,
        operation: D::DB::text(row, "operation")?,
        activation: D::DB::opt_text(row, "activation")?,
        attributes: serde_json::from_value(attributes).unwrap_or_default(),
        version: D::DB::int(row, "version")?,
        key_id: D::opt_uuid(row, "key_id")?,
        key_name: D::DB::opt_text(row, "key_name")?,
        request_id: D::DB::opt_text(row, "request_id")?,
        client_addr: D::DB::opt_text(row, "client_addr")?,
        user_agent: D::DB::opt_text(row, "user_agent")?,
        memberships: D::DB::opt_json(row, "memberships")?,
        data: D::DB::opt_json(row, "data")?,
    })
}

fn rejected_from_row<D: Dialect>(row: &RowOf<D>) -> StoreResult<RejectedWrite> {
    Ok(RejectedWrite {
        org_id: D::uuid(row, "org_id")?,
        id: D::uuid(row, "id")?,
        at: D::DB::int(row, "at")?,
        key_id: D::opt_uuid(row, "key_id")?,
        key_name: D::DB::opt_text(row, "key_name")?,
        request_id: D::DB::opt_text(row, "request_id")?,
        client_addr: D::DB::opt_text(row, "client_addr")?,
        user_agent: D::DB::opt_text(row, "user_agent")?,
        method: D::DB::text(row, "method")?,
        path: D::DB::text(row, "path")?,
        status: u16::try_from(D::DB::int(row, "status")?).unwrap_or_default(),
        scim_type: D::DB::opt_text(row, "scim_type")?,
        detail: D::DB::opt_text(row, "detail")?,
    })
}

/// The `where` clause and arguments of an audit query over `org_id`, the limit last; `order`
/// names the column that orders the table.
fn audit_conditions<'q>(
    org_id: Uuid,
    query: &'q AuditQuery,
    order: &str,
) -> (String, Vec<Arg<'q>>) {
    let mut conditions = vec!["org_id = $1".to_string()];
    let mut args = vec![Arg::Uuid(org_id)];
    let mut add = |condition: &str, arg: Arg<'q>| {
        args.push(arg);
        conditions.push(condition.replace('?', &format!("${}", args.len())));
    };
    if let Some(position) = query.after_position {
        add(&format!("{order} > ?"), Arg::Int(position));
    }
    if let Some(since) = query.since_ms {
        add("at >= ?", Arg::Int(since));
    }
    if let Some(id) = query.resource_id {
        add("resource_id = ?", Arg::Uuid(id));
    }
    if let Some(key) = query.key_id {
        add("key_id = ?", Arg::Uuid(key));
    }
    if let Some(position) = query.before_position {
        add("position < ?", Arg::Int(position));
    }
    if let Some(id) = query.before_id {
        add("id < ?", Arg::Uuid(id));
    }
    if let Some(operation) = &query.operation {
        add("operation = ?", Arg::Text(operation));
    }
    // The limit is the last argument: the caller's `limit ${args.len()}`.
    args.push(Arg::Int(query.limit.max(0)));
    (conditions.join(" and "), args)
}

#[async_trait]
impl<D: Dialect> AuditStore for SqlStore<D> {
    async fn changes(&self, org_id: Uuid, query: &AuditQuery) -> StoreResult<Vec<ChangeEntry>> {
        let query = &AuditQuery {
            before_id: None,
            ..query.clone()
        };
        let (conditions, args) = audit_conditions(org_id, query, "position");
        let columns = if query.without_data {
            CHANGE_COLUMNS.replace(", data", ", cast(null as jsonb) as data")
        } else {
            CHANGE_COLUMNS.to_string()
        };
        let sql = format!(
            "select {columns} from changes where {conditions} and {} \
             order by position{} limit ${}",
            D::CHANGES_VISIBLE,
            if query.newest_first { " desc" } else { "" },
            args.len()
        );
        let rows = self.read_all(&sql, &args).await?;
        rows.iter().map(change_from_row::<D>).collect()
    }

    async fn record_rejected(&self, writes: &[RejectedWrite]) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut tx = self.dialect.writer().begin().await?;
        let sql = format!(
            "insert into rejected_writes ({REJECTED_COLUMNS}) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        for write in writes {
            let args = [
                Arg::Uuid(write.org_id),
                Arg::Uuid(write.id),
                Arg::Int(write.at),
                Arg::OptUuid(write.key_id),
                Arg::OptText(write.key_name.as_deref()),
                Arg::OptText(write.request_id.as_deref()),
                Arg::OptText(write.client_addr.as_deref()),
                Arg::OptText(write.user_agent.as_deref()),
                Arg::Text(&write.method),
                Arg::Text(&write.path),
                Arg::Int(i64::from(write.status)),
                Arg::OptText(write.scim_type.as_deref()),
                Arg::OptText(write.detail.as_deref()),
            ];
            execute::<D>(&mut tx, &sql, &args).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rejected_writes(
        &self,
        org_id: Uuid,
        query: &AuditQuery,
    ) -> StoreResult<Vec<RejectedWrite>> {
        let query = AuditQuery {
            after_position: None,
            before_position: None,
            resource_id: None,
            operation: None,
            ..query.clone()
        };
        let (conditions, args) = audit_conditions(org_id, &query, "id");
        // Newest first pages by id (`before_id`; ids are time-ordered UUIDv7), which the
        // primary key serves.
        let order = if query.newest_first {
            "id desc"
        } else {
            "at, id"
        };
        let sql = format!(
            "select {REJECTED_COLUMNS} from rejected_writes where {conditions} \
             order by {order} limit ${}",
            args.len()
        );
        let rows = self.read_all(&sql, &args).await?;
        rows.iter().map(rejected_from_row::<D>).collect()
    }

    /// An entry a stream that is not disabled has yet to deliver is kept (a disabled
    /// stream's backlog is released).
    async fn prune_audit(&self, before_ms: i64, batch: i64) -> StoreResult<u64> {
        let mut pruned = 0;
        let undelivered = "exists (select 1 from event_streams s where s.org_id = t.org_id \
             and s.state <> 'disabled' and s.position < t.position)";
        for (table, key, keep) in [
            ("changes", "position", undelivered),
            ("rejected_writes", "id", "false"),
        ] {
            let sql = format!(
                "delete from {table} where (org_id, {key}) in \
                 (select org_id, {key} from {table} t where at < $1 and not {keep} limit $2)"
            );
            pruned += self
                .write(&sql, &[Arg::Int(before_ms), Arg::Int(batch)])
                .await?;
        }
        let before_hour = (now_ms() - ACTIVITY_KEPT_MS).div_euclid(HOUR_MS);
        let sql = "delete from org_activity where (org_id, hour, kind, label) in \
             (select org_id, hour, kind, label from org_activity where hour < $1 limit $2)";
        pruned += self
            .write(sql, &[Arg::Int(before_hour), Arg::Int(batch)])
            .await?;
        Ok(pruned)
    }

    fn activity(&self) -> &Activity {
        &self.activity
    }

    async fn flush_activity(&self) -> StoreResult<usize> {
        self.flush_activity_counts().await
    }

    async fn activity_since(
        &self,
        org_id: Option<Uuid>,
        since_hour: i64,
    ) -> StoreResult<Vec<ActivityCount>> {
        self.activity_counts(org_id, since_hour).await
    }
}

/// How long hourly counts are kept: the console's longest chart is 30 days.
const ACTIVITY_KEPT_MS: i64 = 32 * 24 * HOUR_MS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_address_is_stored_as_display_writes_it() {
        for addr in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "192.168.0.9",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:10.0.0.1",
        ] {
            let addr: IpAddr = addr.parse().unwrap();
            assert_eq!(addr_text(addr), addr.to_string(), "{addr:?}");
        }
    }
}
