//! What every resource table offers (`ResourceRows`: read by id, list, delete under a lock),
//! written once for any table the skeleton knows how to read ([`StoredResource`]).

use async_trait::async_trait;
use uuid::Uuid;

use super::{Arg, Conn, Dialect, RowOf, SqlStore, execute, fetch_optional};
use crate::store::filter_sql::Table;
use crate::store::{
    CheckFn, Doc, ListQuery, Page, ResourceRows, StoreError, StoreResult, doc_bytes,
};

/// A resource table as the skeleton reads it.
pub(super) trait StoredResource<D: Dialect>: Sized + Send + Sync + 'static {
    /// The table's name.
    const TABLE: &'static str;
    /// Its columns for filters and sorting.
    const FILTER_TABLE: &'static Table;
    /// The columns a read selects (a dialect may add some, e.g. a user's groups).
    fn columns() -> &'static str;
    fn from_row(row: &RowOf<D>) -> StoreResult<Self>;
    /// The stored document, measured against a list's byte budget.
    fn doc(&self) -> &Doc;
}

/// Reads the row `id` of `org_id` in a transaction, locked for the write that follows.
pub(super) async fn locked<D: Dialect, R: StoredResource<D>>(
    conn: &mut Conn<D>,
    org_id: Uuid,
    id: Uuid,
) -> StoreResult<R> {
    let sql = format!(
        "select {} from {} where org_id = $1 and id = $2{}",
        R::columns(),
        R::TABLE,
        D::FOR_UPDATE
    );
    let row = fetch_optional::<D>(conn, &sql, &[Arg::Uuid(org_id), Arg::Uuid(id)])
        .await?
        .ok_or(StoreError::NotFound)?;
    R::from_row(&row)
}

#[async_trait]
impl<D: Dialect, R: StoredResource<D>> ResourceRows<R> for SqlStore<D> {
    async fn get(&self, org_id: Uuid, id: Uuid) -> StoreResult<R> {
        let sql = format!(
            "select {} from {} where org_id = $1 and id = $2",
            R::columns(),
            R::TABLE
        );
        let row = self
            .read_optional(&sql, &[Arg::Uuid(org_id), Arg::Uuid(id)])
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
                R::columns(),
                R::from_row,
                |r| doc_bytes(r.doc()),
            )
            .await?;
        Ok(Page {
            rows,
            total,
            truncated,
        })
    }

    /// Memberships go with the row (`on delete cascade`), in the same transaction.
    async fn delete(&self, org_id: Uuid, id: Uuid, check: &CheckFn<'_, R>) -> StoreResult<()> {
        let mut tx = self.dialect.writer().begin().await?;
        check(&locked::<D, R>(&mut tx, org_id, id).await?)?;
        let delete = format!("delete from {} where org_id = $1 and id = $2", R::TABLE);
        execute::<D>(&mut tx, &delete, &[Arg::Uuid(org_id), Arg::Uuid(id)]).await?;
        tx.commit().await?;
        Ok(())
    }
}
