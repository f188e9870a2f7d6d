//! What every resource table offers (`ResourceRows`: read by id, list, delete under a lock),
//! written once for any table the skeleton knows how to read ([`StoredResource`]).

use async_trait::async_trait;
use uuid::Uuid;

use super::changes::write_logged;
use super::{Arg, Conn, Dialect, RowOf, SqlDb, SqlStore, fetch_all, fetch_optional};
use crate::store::filter_sql::Table;
use crate::store::{
    ChangeRequest, ChangeWrite, CheckFn, ListQuery, MEMBERSHIP_IDS_KEPT, Memberships, Page,
    ResourceRows, StoreError, StoreResult, Versioned,
};

/// A resource table as the skeleton reads it.
pub(super) trait StoredResource<D: Dialect>:
    Versioned + Sized + Send + Sync + 'static
{
    /// The table's name.
    const TABLE: &'static str;
    /// Its columns for filters and sorting.
    const FILTER_TABLE: &'static Table;
    /// The SCIM resource type, as the change log names it.
    const RESOURCE_TYPE: &'static str;
    /// In `group_members`: the column naming this resource, and the one naming the other.
    const MEMBERSHIP_KEY: (&'static str, &'static str);
    /// The columns a read selects (a dialect may add some, e.g. a user's groups).
    fn columns() -> &'static str;
    /// The read of one row by id (`$1` its organization, `$2` its id), a constant: every read
    /// by id sends it (a test checks it selects [`StoredResource::columns`] from the table).
    const BY_ID: &'static str;
    /// The columns a page of `query` selects.
    fn page_columns(_query: &ListQuery) -> &'static str {
        Self::columns()
    }
    fn external_id(&self) -> Option<&str>;
    fn from_row(row: &RowOf<D>) -> StoreResult<Self>;
    /// What the stored document weighs against a list's byte budget.
    fn budget_bytes(&self) -> usize;
}

/// Reads the row `id` of `org_id` in a transaction, locked for the write that follows.
pub(super) async fn locked<D: Dialect, R: StoredResource<D>>(
    conn: &mut Conn<D>,
    org_id: Uuid,
    id: Uuid,
) -> StoreResult<R> {
    let sql = format!(
        "select {} from {} where org_id = $1 and id = $2{}{}",
        R::columns(),
        R::TABLE,
        D::WRITE_ORDER_LOCK.unwrap_or_default(),
        D::FOR_UPDATE
    );
    let mut args = vec![Arg::Uuid(org_id), Arg::Uuid(id)];
    if D::WRITE_ORDER_LOCK.is_some() {
        args.push(Arg::Int(write_order_key(id)));
    }
    let row = fetch_optional::<D>(conn, &sql, &args)
        .await?
        .ok_or(StoreError::NotFound)?;
    R::from_row(&row)
}

/// The key of a resource's write-order lock: the random half of its id (two resources that
/// share a key only queue behind each other, which costs time, never correctness).
pub(super) fn write_order_key(id: Uuid) -> i64 {
    let (_, random) = id.as_u64_pair();
    random as i64
}

#[async_trait]
impl<D: Dialect, R: StoredResource<D>> ResourceRows<R> for SqlStore<D> {
    async fn get(&self, org_id: Uuid, id: Uuid) -> StoreResult<R> {
        let row = self
            .read_optional(R::BY_ID, &[Arg::Uuid(org_id), Arg::Uuid(id)])
            .await?
            .ok_or(StoreError::NotFound)?;
        R::from_row(&row)
    }

    async fn list(&self, org_id: Uuid, query: &ListQuery) -> StoreResult<Page<R>> {
        let (rows, total, truncated) = self
            .list(
                org_id,
                query,
                R::FILTER_TABLE,
                R::TABLE,
                R::page_columns(query),
                R::from_row,
                R::budget_bytes,
            )
            .await?;
        Ok(Page {
            rows,
            total,
            truncated,
        })
    }

    /// Memberships go with the row (`on delete cascade`), in the same transaction; the
    /// entry names them (a user's groups, a group's members).
    async fn delete(
        &self,
        org_id: Uuid,
        id: Uuid,
        check: &CheckFn<'_, R>,
        change: &ChangeRequest<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.dialect.writer().begin().await?;
        let current = locked::<D, R>(&mut tx, org_id, id).await?;
        check(&current)?;
        let ended = ended_memberships::<D, R>(&mut tx, org_id, id).await?;
        let delete = format!(
            "delete from {} where org_id = $1 and id = $2 returning id",
            R::TABLE
        );
        let entry = ChangeWrite {
            resource_type: R::RESOURCE_TYPE,
            resource_id: id,
            external_id: current.external_id(),
            activation: None,
            attributes: Vec::new(),
            version: current.version(),
            memberships: (!ended.is_empty()).then_some(ended),
            request: change,
        };
        let args = [Arg::Uuid(org_id), Arg::Uuid(id)];
        write_logged::<D>(&mut tx, &delete, &args, org_id, &entry, StoreError::Backend).await?;
        tx.commit().await?;
        self.recorded(org_id, change.operation, 1);
        Ok(())
    }
}

/// The memberships that deleting resource `id` ends: their count and the first ids.
async fn ended_memberships<D: Dialect, R: StoredResource<D>>(
    conn: &mut Conn<D>,
    org_id: Uuid,
    id: Uuid,
) -> StoreResult<Memberships> {
    let (key, other) = R::MEMBERSHIP_KEY;
    let sql = format!(
        "select {other} as id, count(*) over () as n from group_members \
         where org_id = $2 and {key} = $1 order by created_at limit {MEMBERSHIP_IDS_KEPT}"
    );
    let rows = fetch_all::<D>(conn, &sql, &[Arg::Uuid(id), Arg::Uuid(org_id)]).await?;
    let removed = match rows.first() {
        Some(row) => u64::try_from(D::DB::int(row, "n")?).unwrap_or_default(),
        None => 0,
    };
    let removed_ids = rows
        .iter()
        .map(|row| D::uuid(row, "id"))
        .collect::<StoreResult<_>>()?;
    Ok(Memberships {
        added: 0,
        removed,
        added_ids: Vec::new(),
        removed_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::{PgDialect, USER_BY_ID};
    use crate::store::{GroupRecord, UserRecord};

    /// The statement of a read of one resource by id, from its parts.
    fn by_id_sql<D: Dialect, R: StoredResource<D>>() -> String {
        [
            "select ",
            R::columns(),
            " from ",
            R::TABLE,
            " where org_id = $1 and id = $2",
        ]
        .concat()
    }

    #[test]
    fn the_floor_reads_a_user_with_the_statement_a_read_by_id_sends() {
        assert_eq!(USER_BY_ID, by_id_sql::<PgDialect, UserRecord>());
    }

    #[test]
    fn a_read_by_id_selects_the_columns_of_its_table() {
        assert_eq!(
            <UserRecord as StoredResource<PgDialect>>::BY_ID,
            by_id_sql::<PgDialect, UserRecord>()
        );
        assert_eq!(
            <GroupRecord as StoredResource<PgDialect>>::BY_ID,
            by_id_sql::<PgDialect, GroupRecord>()
        );
    }
}
