//! Groups in the skeleton: create with members, read, the read-modify-write update with its
//! member operations, delete, list, and a group's members.

use async_trait::async_trait;
use uuid::Uuid;

use super::changes::{append, member_change_statement, write_logged};
use super::rows::{StoredResource, locked, write_order_key};
use super::{Arg, Conn, Dialect, RowOf, SqlDb, SqlStore, execute, fetch_all};
use crate::store::filter_sql::{GROUPS, Table};
use crate::store::{
    ChangeRequest, ChangeWrite, GroupRecord, GroupStore, GroupUpdateFn, GroupWrite,
    MEMBERSHIP_IDS_KEPT, MemberOp, MemberRef, Membership, MembershipQuery, Memberships, StoreError,
    StoreResult, conflict_as, doc_bytes, now_ms,
};

/// A group's columns, as every read of a group selects them.
macro_rules! group_columns {
    () => {
        "id, org_id, display_name, external_id, doc, created_at, modified_at, version"
    };
}
const GROUP_COLUMNS: &str = group_columns!();
/// The read of one group by id (`$1` its organization, `$2` its id).
const GROUP_BY_ID: &str = concat!(
    "select ",
    group_columns!(),
    " from groups where org_id = $1 and id = $2"
);

/// Member ids per statement when removing members: bound as one list, so the parameter limit
/// does not apply; the chunk keeps each statement's work (and, on SQLite, the time the writer
/// is held between two checks of the deadline) modest.
const MEMBER_CHUNK: usize = 5_000;

impl<D: Dialect> StoredResource<D> for GroupRecord {
    const TABLE: &'static str = "groups";
    const FILTER_TABLE: &'static Table = &GROUPS;
    const RESOURCE_TYPE: &'static str = "Group";
    const MEMBERSHIP_KEY: (&'static str, &'static str) = ("group_id", "user_id");
    fn columns() -> &'static str {
        GROUP_COLUMNS
    }
    const BY_ID: &'static str = GROUP_BY_ID;
    fn external_id(&self) -> Option<&str> {
        self.external_id.as_deref()
    }
    fn from_row(row: &RowOf<D>) -> StoreResult<GroupRecord> {
        group_from_row::<D>(row)
    }
    fn budget_bytes(&self) -> usize {
        doc_bytes(&self.doc)
    }
}

fn group_from_row<D: Dialect>(row: &RowOf<D>) -> StoreResult<GroupRecord> {
    Ok(GroupRecord {
        id: D::uuid(row, "id")?,
        org_id: D::uuid(row, "org_id")?,
        display_name: D::DB::text(row, "display_name")?,
        external_id: D::DB::opt_text(row, "external_id")?,
        doc: super::doc::<D>(row, "doc")?,
        created_at: D::DB::int(row, "created_at")?,
        modified_at: D::DB::int(row, "modified_at")?,
        version: D::DB::int(row, "version")?,
    })
}

/// Applies membership changes inside the group's transaction. Every user added must belong to
/// the org; otherwise the whole change is rejected (RFC 7644 §3.5.2: all or nothing). Returns
/// what was added and removed: a replace by the same list changes nothing (an IdP's retried
/// PUT makes no new version and no change-log entry), and members kept keep their place.
/// The ids held are bounded: added and listed removed ids come from the request (itself
/// capped); a replace or a remove of all counts what it removes and keeps the first ids the
/// entry lists, however large the group.
async fn apply_member_ops<D: Dialect>(
    conn: &mut Conn<D>,
    org_id: Uuid,
    group_id: Uuid,
    ops: &[MemberOp],
) -> StoreResult<Memberships> {
    let (mut added, mut removed) = (Vec::new(), Removed::default());
    for op in ops {
        match op {
            MemberOp::Replace(ids) => {
                let others = format!("not ({})", D::in_ids("user_id", "$3"));
                let args = [Arg::Uuid(group_id), Arg::Uuid(org_id), Arg::Ids(ids)];
                removed.add(remove_where::<D>(conn, &others, &args).await?);
                added.extend(D::add_members(conn, org_id, group_id, ids).await?);
            }
            MemberOp::Add(ids) if !ids.is_empty() => {
                added.extend(D::add_members(conn, org_id, group_id, ids).await?);
            }
            MemberOp::Add(_) => {}
            MemberOp::Remove(ids) => {
                let sql = format!(
                    "delete from group_members where org_id = $3 and group_id = $1 and {} \
                     returning user_id",
                    D::in_ids("user_id", "$2")
                );
                for chunk in ids.chunks(MEMBER_CHUNK) {
                    let args = [Arg::Uuid(group_id), Arg::Ids(chunk), Arg::Uuid(org_id)];
                    let ids = removed_ids::<D>(conn, &sql, &args).await?;
                    removed.add((ids.len() as u64, ids));
                }
            }
            MemberOp::RemoveAll => {
                let args = [Arg::Uuid(group_id), Arg::Uuid(org_id)];
                removed.add(remove_where::<D>(conn, "true", &args).await?);
            }
        }
    }
    let mut memberships = Memberships::from_ids(added, removed.ids);
    memberships.removed = removed.count;
    Ok(memberships)
}

/// Members removed: how many, and the first ids (as many as an entry lists).
#[derive(Default)]
struct Removed {
    count: u64,
    ids: Vec<Uuid>,
}

impl Removed {
    fn add(&mut self, (count, ids): (u64, Vec<Uuid>)) {
        self.count += count;
        let room = MEMBERSHIP_IDS_KEPT.saturating_sub(self.ids.len());
        self.ids.extend(ids.into_iter().take(room));
    }
}

/// Removes the members of group `$1` (organization `$2`) that match `condition`: how many,
/// and the first [`MEMBERSHIP_IDS_KEPT`] of them, read before the delete so that a group of
/// any size is emptied without its ids coming back (the transaction holds the group's lock).
async fn remove_where<D: Dialect>(
    conn: &mut Conn<D>,
    condition: &str,
    args: &[Arg<'_>],
) -> StoreResult<(u64, Vec<Uuid>)> {
    let scope = format!("org_id = $2 and group_id = $1 and {condition}");
    let first = format!(
        "select user_id, count(*) over () as n from group_members where {scope} \
         order by created_at limit {MEMBERSHIP_IDS_KEPT}"
    );
    let rows = fetch_all::<D>(conn, &first, args).await?;
    let count = match rows.first() {
        Some(row) => u64::try_from(D::DB::int(row, "n")?).unwrap_or_default(),
        None => return Ok((0, Vec::new())),
    };
    let ids = rows
        .iter()
        .map(|row| D::uuid(row, "user_id"))
        .collect::<StoreResult<_>>()?;
    execute::<D>(
        conn,
        &format!("delete from group_members where {scope}"),
        args,
    )
    .await?;
    Ok((count, ids))
}

/// The user ids a `delete … returning user_id` removed.
async fn removed_ids<D: Dialect>(
    conn: &mut Conn<D>,
    sql: &str,
    args: &[Arg<'_>],
) -> StoreResult<Vec<Uuid>> {
    fetch_all::<D>(conn, sql, args)
        .await?
        .iter()
        .map(|row| D::uuid(row, "user_id"))
        .collect()
}

#[async_trait]
impl<D: Dialect> GroupStore for SqlStore<D> {
    async fn create_group(
        &self,
        org_id: Uuid,
        group: &GroupWrite,
        members: &[Uuid],
        change: &ChangeRequest<'_>,
    ) -> StoreResult<GroupRecord> {
        let mut tx = self.dialect.writer().begin().await?;
        let sql = format!(
            "insert into groups (id, org_id, display_name, display_name_folded, external_id, \
             doc, created_at, modified_at, version, doc_folded) \
             values ($1, $2, $3, $4, $5, $6, $7, $7, 1, $8) returning {GROUP_COLUMNS}"
        );
        let args = [
            Arg::Uuid(Uuid::now_v7()),
            Arg::Uuid(org_id),
            Arg::Text(&group.display_name),
            Arg::Text(&group.display_name_folded),
            Arg::OptText(group.external_id.as_deref()),
            Arg::Doc(&group.doc),
            Arg::Int(now_ms()),
            Arg::JsonText(group.doc_folded.text()),
        ];
        let result = D::DB::fetch_optional(&mut tx, &sql, super::bind::<D>(&args)?).await;
        let row = super::settled::<D, _>(&mut tx, result)
            .await
            .map_err(conflict_as("displayName"))?
            .ok_or(StoreError::NotFound)?;
        let record = group_from_row::<D>(&row)?;
        let add = [MemberOp::Add(members.to_vec())];
        let memberships = apply_member_ops::<D>(&mut tx, org_id, record.id, &add).await?;
        let entry = ChangeWrite::group(change, record.id, None, group, memberships);
        append::<D>(&mut tx, org_id, std::slice::from_ref(&entry)).await?;
        tx.commit().await?;
        self.recorded(org_id, change.operation, 1);
        Ok(record)
    }

    async fn update_group(
        &self,
        org_id: Uuid,
        id: Uuid,
        update: &GroupUpdateFn<'_>,
        members: &[MemberOp],
        change: &ChangeRequest<'_>,
    ) -> StoreResult<GroupRecord> {
        let mut tx = self.dialect.writer().begin().await?;
        let current = locked::<D, GroupRecord>(&mut tx, org_id, id).await?;
        let next = update(&current)?;
        let memberships = apply_member_ops::<D>(&mut tx, org_id, id, members).await?;
        if memberships.is_empty() && next.same_as(&current) {
            tx.commit().await?;
            return Ok(current);
        }
        let sql = format!(
            "update groups set display_name = $3, display_name_folded = $4, external_id = $5, \
             doc = $6, modified_at = {}($7, modified_at), version = version + 1, \
             doc_folded = $8 where org_id = $1 and id = $2 returning {GROUP_COLUMNS}",
            D::GREATEST
        );
        let args = [
            Arg::Uuid(org_id),
            Arg::Uuid(id),
            Arg::Text(&next.display_name),
            Arg::Text(&next.display_name_folded),
            Arg::OptText(next.external_id.as_deref()),
            Arg::Doc(&next.doc),
            Arg::Int(now_ms()),
            Arg::JsonText(next.doc_folded.text()),
        ];
        let entry = ChangeWrite::group(change, id, Some(&current), &next, memberships);
        let conflict = conflict_as("displayName");
        let row = write_logged::<D>(&mut tx, &sql, &args, org_id, &entry, conflict)
            .await?
            .ok_or(StoreError::NotFound)?;
        let record = group_from_row::<D>(&row)?;
        tx.commit().await?;
        self.recorded(org_id, change.operation, 1);
        Ok(record)
    }

    async fn change_members(
        &self,
        org_id: Uuid,
        current: &GroupRecord,
        op: &MemberOp,
        change: &ChangeRequest<'_>,
    ) -> StoreResult<Option<GroupRecord>> {
        let (add, ids) = match op {
            MemberOp::Add(ids) if !ids.is_empty() => (true, ids),
            MemberOp::Remove(ids) if !ids.is_empty() => (false, ids),
            _ => return Ok(None),
        };
        let id = current.id;
        let next = GroupWrite::from_doc(current.doc.clone())?;
        // The statement computes the entry's version and memberships; these stand in for
        // them so that the entry names `members` among its attributes.
        let memberships = Memberships::from_ids(ids.clone(), Vec::new());
        let entry = ChangeWrite::group(change, id, Some(current), &next, memberships);
        let args = [
            Arg::Uuid(org_id),
            Arg::Uuid(id),
            Arg::Int(write_order_key(id)),
            Arg::Ids(ids),
            Arg::Int(now_ms()),
        ];
        let Some(statement) = member_change_statement::<D>(add, &args, org_id, &entry) else {
            return Ok(None);
        };
        let Some(row) = self
            .member_queues
            .write(self.dialect.writer(), org_id, id, statement)
            .await?
        else {
            return Ok(None);
        };
        if !D::DB::flag(&row, "found")? {
            return Err(StoreError::NotFound);
        }
        if let Some(stranger) = D::DB::opt_text(&row, "stranger")? {
            let stranger =
                Uuid::parse_str(&stranger).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            return Err(super::super::unknown_member(&stranger));
        }
        if D::opt_uuid(&row, "id")?.is_none() {
            return Ok(Some(current.clone()));
        }
        self.recorded(org_id, change.operation, 1);
        Ok(Some(group_from_row::<D>(&row)?))
    }

    async fn membership(
        &self,
        org_id: Uuid,
        group_id: Uuid,
        user_id: Uuid,
    ) -> StoreResult<Membership> {
        let sql = "select group_id, user_id, created_at from group_members \
                   where org_id = $1 and group_id = $2 and user_id = $3";
        let args = [Arg::Uuid(org_id), Arg::Uuid(group_id), Arg::Uuid(user_id)];
        let row = self
            .read_optional(sql, &args)
            .await?
            .ok_or(StoreError::NotFound)?;
        membership_from_row::<D>(&row)
    }

    async fn memberships(
        &self,
        org_id: Uuid,
        query: &MembershipQuery,
    ) -> StoreResult<(Vec<Membership>, i64)> {
        // Every condition is index-backed: the primary key (org, group, member) and
        // `group_members_user` (org, member, group), both in the page's order.
        let mut args = vec![Arg::Uuid(org_id)];
        let mut condition = "org_id = $1".to_string();
        for (column, id) in [("group_id", query.group), ("user_id", query.member)] {
            if let Some(id) = id {
                args.push(Arg::Uuid(id));
                condition.push_str(&format!(" and {column} = ${}", args.len()));
            }
        }
        let count_sql = format!("select count(*) as total from group_members where {condition}");
        let count_args = args.len();
        let mut page_condition = condition;
        // The keyset on what the index leaves free: with the group fixed, the member (the
        // primary key's next column); with the member fixed, the group; else both. A row
        // comparison under an equality would not start the index scan at the position.
        if let Some((group, member)) = query.after {
            let keyset = match (query.group, query.member) {
                (Some(_), _) => vec![("user_id", member)],
                (None, Some(_)) => vec![("group_id", group)],
                (None, None) => vec![("group_id", group), ("user_id", member)],
            };
            let (columns, values): (Vec<_>, Vec<_>) = keyset.into_iter().unzip();
            let mut placeholders = Vec::new();
            for value in values {
                args.push(Arg::Uuid(value));
                placeholders.push(format!("${}", args.len()));
            }
            page_condition.push_str(&format!(
                " and ({}) > ({})",
                columns.join(", "),
                placeholders.join(", ")
            ));
        }
        let offset = match query.after {
            Some(_) => 0,
            None => (query.start_index - 1).max(0),
        };
        let sql = format!(
            "select group_id, user_id, created_at from group_members where {page_condition} \
             order by group_id, user_id limit {} offset {offset}",
            query.count.max(0)
        );
        let rows = self.read_all(&sql, &args).await?;
        let page = rows
            .iter()
            .map(membership_from_row::<D>)
            .collect::<StoreResult<Vec<_>>>()?;
        let total = self.read_optional(&count_sql, &args[..count_args]).await?;
        let total = match total {
            Some(row) => D::DB::int(&row, "total")?,
            None => 0,
        };
        Ok((page, total))
    }

    async fn group_members(
        &self,
        org_id: Uuid,
        group_id: Uuid,
        limit: i64,
    ) -> StoreResult<Vec<MemberRef>> {
        // `display_name`: the user's displayName, a column computed from its document
        // (migration 0019).
        let sql = format!(
            "select u.id, coalesce(u.display_name, u.user_name) as display \
             from group_members m join users u on u.org_id = m.org_id and u.id = m.user_id \
             where m.org_id = $2 and m.group_id = $1 order by m.created_at, m.user_id limit {}",
            limit.max(0)
        );
        let rows = self
            .read_all(&sql, &[Arg::Uuid(group_id), Arg::Uuid(org_id)])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRef {
                    id: D::uuid(r, "id")?,
                    display: D::DB::text(r, "display")?,
                })
            })
            .collect()
    }
}

/// A membership row (`group_id`, `user_id`, `created_at`).
fn membership_from_row<D: Dialect>(row: &RowOf<D>) -> StoreResult<Membership> {
    Ok(Membership {
        group_id: D::uuid(row, "group_id")?,
        user_id: D::uuid(row, "user_id")?,
        created_at: D::DB::int(row, "created_at")?,
    })
}
