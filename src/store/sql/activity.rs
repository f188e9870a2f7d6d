//! The console's hourly activity in the skeleton: pending counts added to `org_activity`
//! (an upsert that adds, so every process's counts add up), and read back with the ones not
//! yet written.

use uuid::Uuid;

use super::{Arg, Dialect, SqlDb, SqlStore, execute, fetch_all};
use crate::store::StoreResult;
use crate::store::activity::{ActivityCount, ActivityKind, merge};

/// Rows per statement (five parameters each).
const ROWS_PER_STATEMENT: usize = 200;

impl<D: Dialect> SqlStore<D> {
    /// Adds the pending counts to the table in one transaction; they are put back when that
    /// fails, to go with the next ones. How many rows were written.
    pub(super) async fn flush_activity_counts(&self) -> StoreResult<usize> {
        let counts = self.activity.take();
        if counts.is_empty() {
            return Ok(0);
        }
        let written = self.write_activity(&counts).await;
        if written.is_err() {
            self.activity.restore(&counts);
        }
        written.map(|()| counts.len())
    }

    async fn write_activity(&self, counts: &[ActivityCount]) -> StoreResult<()> {
        let mut tx = self.dialect.writer().begin().await?;
        for chunk in counts.chunks(ROWS_PER_STATEMENT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = 5 * i;
                    format!(
                        "(${}, ${}, ${}, ${}, ${})",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5
                    )
                })
                .collect();
            // Counts of an organization deleted meanwhile are dropped: its data is gone.
            let sql = format!(
                "with counted (org_id, hour, kind, label, count) as (values {}) \
                 insert into org_activity (org_id, hour, kind, label, count) \
                 select org_id, hour, kind, label, count from counted c \
                 where exists (select 1 from organizations o \
                               where o.id = c.org_id and o.deleted_at is null) \
                 on conflict (org_id, hour, kind, label) \
                 do update set count = org_activity.count + excluded.count",
                rows.join(", ")
            );
            let args: Vec<Arg<'_>> = chunk
                .iter()
                .flat_map(|c| {
                    [
                        Arg::Uuid(c.org_id),
                        Arg::Int(c.hour),
                        Arg::Text(c.kind.as_str()),
                        Arg::Text(&c.label),
                        Arg::Int(c.count),
                    ]
                })
                .collect();
            execute::<D>(&mut tx, &sql, &args).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The counts from `since_hour` on, of `org_id` or of every organization, with the ones
    /// this process has not written yet.
    pub(super) async fn activity_counts(
        &self,
        org_id: Option<Uuid>,
        since_hour: i64,
    ) -> StoreResult<Vec<ActivityCount>> {
        let mut args = vec![Arg::Int(since_hour)];
        let mut sql = "select org_id, hour, kind, label, count from org_activity \
             where hour >= $1"
            .to_string();
        if let Some(org_id) = org_id {
            args.push(Arg::Uuid(org_id));
            sql.push_str(" and org_id = $2");
        }
        let mut conn = self.dialect.reader().acquire().await?;
        let rows = fetch_all::<D>(&mut conn, &sql, &args).await?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(kind) = ActivityKind::parse(&D::DB::text(row, "kind")?) else {
                continue;
            };
            counts.push(ActivityCount {
                org_id: D::uuid(row, "org_id")?,
                hour: D::DB::int(row, "hour")?,
                kind,
                label: D::DB::text(row, "label")?,
                count: D::DB::int(row, "count")?,
            });
        }
        merge(&mut counts, self.activity.pending(org_id, since_hour));
        Ok(counts)
    }
}
