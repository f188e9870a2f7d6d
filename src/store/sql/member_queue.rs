//! A group's member changes, run together: the changes of one group that arrive while one is
//! being written wait in a queue and are then written in one transaction, one statement each,
//! with one commit.
//!
//! Why: a member change locks its group's row until its commit, and the commit waits for its
//! WAL flush. The changes of one group therefore run one after another, each paying a flush
//! and the wake-ups of the connections queued behind it: an IdP that adds members to one large
//! group from several connections gets about one change per flush, however many cores the
//! database has. Written together, *k* queued changes pay one flush. Each change keeps what it
//! had alone: its own statement, version and change-log entry (its place in the transaction
//! bound as its position's ordinal), its own outcome (a stranger to add, a group gone), and
//! its answer only once its transaction has committed. A change that arrives when nothing is
//! queued for its group runs alone, as one auto-committed statement.
//!
//! The queue is drained by a task of its own, so a request that gives up (its client went
//! away) cannot strand the changes queued behind it; a change whose request has given up
//! before its turn is not written. A statement that fails inside a transaction of several
//! changes (a database error, not an outcome) rolls the transaction back, and each change is
//! then run alone, so it fails only the request it belongs to. A commit that fails fails
//! every change of its transaction: whether it took effect is unknown, as for one alone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::conns::Conns;
use super::{Arg, Dialect, OwnedArg, RowOf, SqlDb, bind, settled};
use crate::store::{StoreError, StoreResult};

/// The most changes one transaction writes: it bounds how long the group's row stays locked
/// for the changes of other processes, and stays far below the change log's positions per
/// transaction.
pub const MAX_CHANGES_PER_TRANSACTION: usize = 32;

/// One member change's statement and its arguments, owned (it runs on the queue's task).
#[derive(Debug)]
pub struct MemberChange {
    pub sql: String,
    pub args: Vec<OwnedArg>,
    /// Where in `args` the entry's place among its transaction's entries is bound.
    pub ordinal_at: usize,
}

/// What a change's statement answered (its one row), or why it did not run.
type Outcome<D> = StoreResult<Option<RowOf<D>>>;

struct Queued<D: Dialect> {
    change: MemberChange,
    answer: oneshot::Sender<Outcome<D>>,
}

/// A group: its organization's id and its own.
type GroupKey = (Uuid, Uuid);
/// Each group being written, with the changes waiting behind it.
type Queues<D> = HashMap<GroupKey, VecDeque<Queued<D>>>;

/// The groups whose member changes are being written, with the changes waiting behind them;
/// a group is here exactly while a task drains its queue.
pub struct MemberQueues<D: Dialect> {
    groups: Mutex<Queues<D>>,
}

impl<D: Dialect> Default for MemberQueues<D> {
    fn default() -> Self {
        MemberQueues {
            groups: Mutex::new(HashMap::new()),
        }
    }
}

impl<D: Dialect> std::fmt::Debug for MemberQueues<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberQueues")
            .field("groups", &self.lock().len())
            .finish()
    }
}

impl<D: Dialect> MemberQueues<D> {
    fn lock(&self) -> MutexGuard<'_, Queues<D>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `change` of group `group_id` (organization `org_id`) on `conns`, with the
    /// group's other changes queued meanwhile; the statement's row once its transaction
    /// has committed.
    pub async fn write(
        self: &Arc<Self>,
        conns: &Conns<D::DB>,
        org_id: Uuid,
        group_id: Uuid,
        change: MemberChange,
    ) -> Outcome<D> {
        let (answer, answered) = oneshot::channel();
        let key = (org_id, group_id);
        let start = {
            let mut groups = self.lock();
            let queued = Queued { change, answer };
            match groups.get_mut(&key) {
                Some(queue) => {
                    queue.push_back(queued);
                    false
                }
                None => {
                    groups.insert(key, VecDeque::from([queued]));
                    true
                }
            }
        };
        if start {
            tokio::spawn(drain(Arc::clone(self), conns.clone(), key));
        }
        answered.await.unwrap_or_else(|_| {
            Err(StoreError::Backend(sqlx::Error::Protocol(
                "the group's member changes stopped before this one was written".into(),
            )))
        })
    }
}

/// Removes the group's queue if its task ends before it has emptied it (a panic): the group
/// must not look busy forever (the changes still queued are dropped, and their requests
/// answered with an error). A task that ends normally has removed the queue itself, under
/// the same lock that saw it empty, and a later change may have started a new one since.
struct Draining<'a, D: Dialect> {
    queues: &'a MemberQueues<D>,
    key: GroupKey,
    finished: bool,
}

impl<D: Dialect> Drop for Draining<'_, D> {
    fn drop(&mut self) {
        if !self.finished {
            self.queues.lock().remove(&self.key);
        }
    }
}

/// Writes the group's queued changes, a transaction at a time, until none is left.
async fn drain<D: Dialect>(queues: Arc<MemberQueues<D>>, conns: Conns<D::DB>, key: GroupKey) {
    let mut draining = Draining {
        queues: &queues,
        key,
        finished: false,
    };
    loop {
        let batch: Vec<Queued<D>> = {
            let mut groups = queues.lock();
            match groups.get_mut(&key) {
                Some(queue) if !queue.is_empty() => {
                    let n = queue.len().min(MAX_CHANGES_PER_TRANSACTION);
                    queue.drain(..n).collect()
                }
                _ => {
                    groups.remove(&key);
                    draining.finished = true;
                    return;
                }
            }
        };
        // A request that gave up before its turn is not written.
        let batch: Vec<Queued<D>> = batch
            .into_iter()
            .filter(|queued| !queued.answer.is_closed())
            .collect();
        write_batch(&conns, batch).await;
    }
}

async fn write_batch<D: Dialect>(conns: &Conns<D::DB>, batch: Vec<Queued<D>>) {
    if batch.len() <= 1 {
        return each_alone(conns, batch).await;
    }
    match together::<D>(conns, &batch).await {
        Ok(rows) => {
            for (queued, row) in batch.into_iter().zip(rows) {
                let _ = queued.answer.send(Ok(row));
            }
        }
        // A statement failed: the transaction wrote nothing; each change on its own.
        Err(Failed::Statement) => each_alone(conns, batch).await,
        Err(Failed::Transaction(error)) => {
            for queued in batch {
                let _ = queued.answer.send(Err(shared(&error)));
            }
        }
    }
}

/// Each change as a statement of its own, answered as it is written.
async fn each_alone<D: Dialect>(conns: &Conns<D::DB>, batch: Vec<Queued<D>>) {
    for queued in batch {
        let outcome = alone::<D>(conns, &queued.change).await;
        let _ = queued.answer.send(outcome);
    }
}

/// Why changes written together were not.
enum Failed {
    /// A statement failed (the changes may succeed alone).
    Statement,
    /// The connection, the transaction's start or its commit failed.
    Transaction(sqlx::Error),
}

/// One change as one auto-committed statement (its entry the only one of its transaction).
async fn alone<D: Dialect>(conns: &Conns<D::DB>, change: &MemberChange) -> Outcome<D> {
    let mut conn = conns.acquire().await?;
    let args: Vec<Arg<'_>> = change.args.iter().map(OwnedArg::as_arg).collect();
    let result = D::DB::fetch_optional(&mut conn, &change.sql, bind::<D>(&args)?).await;
    Ok(settled::<D, _>(&mut conn, result).await?)
}

/// The changes in order in one transaction, each entry at its place in it.
async fn together<D: Dialect>(
    conns: &Conns<D::DB>,
    batch: &[Queued<D>],
) -> Result<Vec<Option<RowOf<D>>>, Failed> {
    let mut tx = conns.begin().await.map_err(Failed::Transaction)?;
    let mut rows = Vec::with_capacity(batch.len());
    for (ordinal, queued) in batch.iter().enumerate() {
        let change = &queued.change;
        let mut args: Vec<Arg<'_>> = change.args.iter().map(OwnedArg::as_arg).collect();
        if let Some(slot) = args.get_mut(change.ordinal_at) {
            *slot = Arg::Int(ordinal as i64);
        }
        let bound = bind::<D>(&args).map_err(|_| Failed::Statement)?;
        let result = D::DB::fetch_optional(&mut tx, &change.sql, bound).await;
        match settled::<D, _>(&mut tx, result).await {
            Ok(row) => rows.push(row),
            Err(sqlx::Error::Database(_)) => return Err(Failed::Statement),
            Err(error) => return Err(Failed::Transaction(error)),
        }
    }
    tx.commit().await.map_err(Failed::Transaction)?;
    Ok(rows)
}

/// The error a failed transaction answers each of its changes with: sqlx's errors cannot be
/// cloned, so one that says the database is unreachable stays one (a 503 and a retry), and
/// any other is described.
fn shared(error: &sqlx::Error) -> StoreError {
    let copy = match error {
        sqlx::Error::Io(e) => sqlx::Error::Io(std::io::Error::new(e.kind(), e.to_string())),
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        other => sqlx::Error::Protocol(format!("a group's member changes failed: {other}")),
    };
    StoreError::Backend(copy)
}

#[cfg(test)]
mod tests {
    use futures_util::future::join_all;
    use sqlx::Row;
    use std::str::FromStr;
    use std::time::Duration;

    use sqlx::sqlite::SqliteConnectOptions;

    use super::*;
    use crate::store::sqlite::SqliteDialect;

    /// One connection to a database in memory, with a table each change inserts a row into,
    /// answering the value and the ordinal it was bound.
    async fn conns() -> Conns<sqlx::Sqlite> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").unwrap();
        let conns = Conns::own(options, 1, Duration::from_secs(3));
        sqlx::query("create table t (x integer primary key, ordinal integer not null)")
            .execute(&mut *conns.acquire().await.unwrap())
            .await
            .unwrap();
        conns
    }

    fn insert(x: i64) -> MemberChange {
        MemberChange {
            sql: "insert into t (x, ordinal) values ($1, $2) returning x, ordinal".into(),
            args: vec![OwnedArg::Int(x), OwnedArg::Int(0)],
            ordinal_at: 1,
        }
    }

    /// The changes queued at once, on one group: the first starts the queue's task, which
    /// runs only once every change is queued (the test's runtime has one thread).
    async fn write_all(conns: &Conns<sqlx::Sqlite>, values: &[i64]) -> Vec<Outcome<SqliteDialect>> {
        let queues = Arc::new(MemberQueues::<SqliteDialect>::default());
        let (org, group) = (Uuid::now_v7(), Uuid::now_v7());
        let writes = values
            .iter()
            .map(|x| queues.write(conns, org, group, insert(*x)));
        let outcomes = join_all(writes).await;
        assert!(
            queues.lock().is_empty(),
            "the group's queue is gone once it is empty"
        );
        outcomes
    }

    fn row_of(outcome: &Outcome<SqliteDialect>) -> (i64, i64) {
        let row = outcome.as_ref().unwrap().as_ref().unwrap();
        (row.get("x"), row.get("ordinal"))
    }

    #[tokio::test]
    async fn changes_queued_together_are_written_in_one_transaction_each_at_its_place() {
        let conns = conns().await;
        let outcomes = write_all(&conns, &[10, 20, 30]).await;
        let rows: Vec<(i64, i64)> = outcomes.iter().map(row_of).collect();
        assert_eq!(rows, [(10, 0), (20, 1), (30, 2)]);
    }

    #[tokio::test]
    async fn a_statement_that_fails_among_several_fails_only_its_own_change() {
        let conns = conns().await;
        // The second insert repeats the first's key: the transaction rolls back, and each
        // change then runs alone (at place 0).
        let outcomes = write_all(&conns, &[10, 10, 30]).await;
        assert_eq!(row_of(&outcomes[0]), (10, 0));
        assert!(
            matches!(
                &outcomes[1],
                Err(StoreError::Backend(sqlx::Error::Database(_)))
            ),
            "{:?}",
            outcomes[1].as_ref().map(|_| ())
        );
        assert_eq!(row_of(&outcomes[2]), (30, 0));
        let mut conn = conns.acquire().await.unwrap();
        let written: Vec<i64> = sqlx::query_scalar("select x from t order by x")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        assert_eq!(written, [10, 30]);
    }

    #[tokio::test]
    async fn a_change_whose_request_gave_up_before_its_turn_is_not_written() {
        let conns = conns().await;
        let queues = Arc::new(MemberQueues::<SqliteDialect>::default());
        let (org, group) = (Uuid::now_v7(), Uuid::now_v7());
        let first = queues.write(&conns, org, group, insert(1));
        let dropped = queues.write(&conns, org, group, insert(2));
        let last = queues.write(&conns, org, group, insert(3));
        // Each is polled once (queued), then the second is dropped before the task runs.
        let mut first = Box::pin(first);
        let mut dropped = Box::pin(dropped);
        let mut last = Box::pin(last);
        for future in [&mut first, &mut dropped, &mut last] {
            assert!(futures_util::poll!(future.as_mut()).is_pending());
        }
        drop(dropped);
        assert_eq!(row_of(&first.await), (1, 0));
        assert_eq!(row_of(&last.await), (3, 1));
    }
}
