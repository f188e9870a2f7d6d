//! Users in the skeleton: create, read, the read-modify-write update, delete, list, and the
//! `user_emails` rows behind `emails.value eq`.

use std::collections::HashSet;

use async_trait::async_trait;
use uuid::Uuid;

use super::changes::{append, logged_write_sql, run_logged_write, write_logged};
use super::rows::{StoredResource, locked};
use super::{
    Arg, Conn, Dialect, RowOf, SqlDb, SqlStore, execute, fetch_all, fetch_optional, member_refs,
};
use crate::scim::user::user_attribute_keys;
use crate::store::filter_sql::{Table, USERS};
use crate::store::{
    ChangeRequest, ChangeWrite, Doc, StoreError, StoreResult, StoredDoc, UserRecord, UserStore,
    UserUpdateFn, UserWrite, conflict_as, now_ms,
};

impl<D: Dialect> StoredResource<D> for UserRecord {
    const TABLE: &'static str = "users";
    const FILTER_TABLE: &'static Table = &USERS;
    const RESOURCE_TYPE: &'static str = "User";
    const MEMBERSHIP_KEY: (&'static str, &'static str) = ("user_id", "group_id");
    fn columns() -> &'static str {
        USER_SELECT
    }
    const BY_ID: &'static str = USER_BY_ID;
    fn external_id(&self) -> Option<&str> {
        self.external_id.as_deref()
    }
    fn from_row(row: &RowOf<D>) -> StoreResult<UserRecord> {
        user_from_row::<D>(row)
    }
    fn budget_bytes(&self) -> usize {
        self.doc.budget_bytes()
    }
}

/// A user row as the skeleton reads it; `groups` only where the dialect selected them.
/// Every statement that reads a user selects its own columns first, in the order of
/// `user_columns!` (a test checks the order), so they are read by place.
pub(super) fn user_from_row<D: Dialect>(row: &RowOf<D>) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: D::uuid_at(row, 0)?,
        org_id: D::uuid_at(row, 1)?,
        user_name: D::DB::text_at(row, 2)?,
        external_id: D::DB::opt_text_at(row, 3)?,
        active: D::DB::opt_flag_at(row, 4)?,
        doc: StoredDoc::from_text(D::DB::doc_text_at(row, 5)?, D::DOCS_CHECKED),
        password_hash: D::DB::opt_text_at(row, 6)?,
        created_at: D::DB::int_at(row, 7)?,
        modified_at: D::DB::int_at(row, 8)?,
        version: D::DB::int_at(row, 9)?,
        groups: D::DB::opt_id_name_pairs_at(row, USER_COLUMNS_COUNT, "groups")?.map(member_refs),
    })
}

/// How many columns of its own a user has: a statement's user groups, where it selects them,
/// come right after.
const USER_COLUMNS_COUNT: usize = 10;

/// The columns [`user_from_row`] reads by place, in that order.
#[cfg(test)]
const USER_COLUMNS_READ: [&str; USER_COLUMNS_COUNT] = [
    "id",
    "org_id",
    "user_name",
    "external_id",
    "active",
    "doc",
    "password_hash",
    "created_at",
    "modified_at",
    "version",
];

/// Runs a user's insert or update (`returning` the user) with its change-log entry; the
/// user as written. A taken `userName` is a conflict.
async fn write_user<D: Dialect>(
    conn: &mut Conn<D>,
    sql: &str,
    args: &[Arg<'_>],
    org_id: Uuid,
    entry: &ChangeWrite<'_>,
) -> StoreResult<UserRecord> {
    let row = write_logged::<D>(conn, sql, args, org_id, entry, conflict_as("userName"))
        .await?
        .ok_or(StoreError::NotFound)?;
    user_from_row::<D>(&row)
}

/// Checks, inside a user's write, that the user-attribute keys it adds (those in `next` and
/// not in `before`) are defined, holding their definitions (`for share` where the dialect has
/// row locks) until the write commits. A definition being deleted concurrently either waits
/// for this write and then finds the key in use, or was deleted first and the key is refused
/// here. Keys the user already carries need no check: a definition is only deleted when no
/// user carries its key.
async fn check_added_attributes<D: Dialect>(
    conn: &mut Conn<D>,
    org_id: Uuid,
    before: Option<&Doc>,
    next: &Doc,
) -> StoreResult<()> {
    let added = added_attributes(before, next);
    if added.is_empty() {
        return Ok(());
    }
    let defined = attribute_definitions::<D>(conn, org_id).await?;
    undefined_attribute(added.into_iter(), &defined)
}

/// The user-attribute keys `next` carries and `before` does not.
fn added_attributes<'a>(before: Option<&Doc>, next: &'a Doc) -> Vec<&'a String> {
    let carried: Vec<&String> =
        before.map_or_else(Vec::new, |doc| user_attribute_keys(doc).collect());
    user_attribute_keys(next)
        .filter(|key| !carried.contains(key))
        .collect()
}

/// Whether `next` carries a user-attribute key `before` does not.
fn adds_attributes(before: Option<&Doc>, next: &Doc) -> bool {
    !added_attributes(before, next).is_empty()
}

/// The organization's user-attribute keys, held (`for share`) until the transaction ends.
async fn attribute_definitions<D: Dialect>(
    conn: &mut Conn<D>,
    org_id: Uuid,
) -> StoreResult<Vec<String>> {
    let sql = format!(
        "select key from user_attribute_definitions where org_id = $1{}",
        D::FOR_SHARE
    );
    let rows = fetch_all::<D>(conn, &sql, &[Arg::Uuid(org_id)]).await?;
    Ok(rows
        .iter()
        .map(|row| D::DB::text(row, "key"))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Refuses the first of `keys` that is not `defined`.
fn undefined_attribute<'a>(
    mut keys: impl Iterator<Item = &'a String>,
    defined: &[String],
) -> StoreResult<()> {
    match keys.find(|key| !defined.contains(key)) {
        Some(key) => Err(StoreError::UndefinedUserAttribute(key.clone())),
        None => Ok(()),
    }
}

/// Replaces a user's rows in `user_emails` (the index behind `emails.value eq`).
pub(super) async fn write_emails<D: Dialect>(
    conn: &mut Conn<D>,
    user_id: Uuid,
    org_id: Uuid,
    emails: &[String],
) -> StoreResult<()> {
    let delete = "delete from user_emails where org_id = $1 and user_id = $2";
    execute::<D>(conn, delete, &[Arg::Uuid(org_id), Arg::Uuid(user_id)]).await?;
    insert_emails::<D>(conn, user_id, org_id, emails).await
}

/// Adds a new user's rows to `user_emails` (it has none to replace).
async fn insert_emails<D: Dialect>(
    conn: &mut Conn<D>,
    user_id: Uuid,
    org_id: Uuid,
    emails: &[String],
) -> StoreResult<()> {
    let rows: Vec<(Uuid, &str)> = emails.iter().map(|e| (user_id, e.as_str())).collect();
    insert_email_rows::<D>(conn, org_id, &rows).await
}

/// Rows of `user_emails` per statement: three parameters each, well below either database's
/// limit of parameters per statement.
const EMAIL_ROWS_PER_STATEMENT: usize = 500;

/// Adds `(user, folded email)` rows of new users to `user_emails`.
async fn insert_email_rows<D: Dialect>(
    conn: &mut Conn<D>,
    org_id: Uuid,
    rows: &[(Uuid, &str)],
) -> StoreResult<()> {
    for chunk in rows.chunks(EMAIL_ROWS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect();
        let sql = format!(
            "insert into user_emails (user_id, org_id, value_folded) values {}",
            values.join(", ")
        );
        let args: Vec<Arg<'_>> = chunk
            .iter()
            .flat_map(|(user_id, value)| [Arg::Uuid(*user_id), Arg::Uuid(org_id), Arg::Text(value)])
            .collect();
        execute::<D>(conn, &sql, &args).await?;
    }
    Ok(())
}

/// The columns a user's insert sets, and the number of parameters of one row of
/// [`user_insert_values`].
const USER_INSERT_COLUMNS: &str = "id, org_id, user_name, user_name_folded, external_id, \
     active, doc, password_hash, created_at, modified_at, version, doc_folded";
const USER_INSERT_PARAMS: usize = 10;

/// One row of a user's insert, its parameters from `$first` on: `created_at` and
/// `modified_at` take the same one, `version` is 1.
fn user_insert_values(first: usize) -> String {
    let p: Vec<String> = (first..first + USER_INSERT_PARAMS)
        .map(|i| format!("${i}"))
        .collect();
    format!("({}, {}, 1, {})", p[..9].join(", "), p[8], p[9])
}

/// The parameters of one row of a user's insert.
fn user_insert_args<'a>(id: Uuid, org_id: Uuid, user: &'a UserWrite, now: i64) -> [Arg<'a>; 10] {
    [
        Arg::Uuid(id),
        Arg::Uuid(org_id),
        Arg::Text(&user.user_name),
        Arg::Text(&user.user_name_folded),
        Arg::OptText(user.external_id.as_deref()),
        Arg::OptBool(user.active),
        Arg::DocJson(&user.doc),
        Arg::OptText(user.password_hash.as_deref()),
        Arg::Int(now),
        Arg::JsonText(user.doc_folded.text()),
    ]
}

/// A user's columns with its groups, as every read of a user selects them.
const USER_SELECT: &str = user_select!();
/// The statement of a read of one user by id, with its groups (`$1` its organization, `$2`
/// its id): the unlocked update's read (a write that changes nothing answers with it), and
/// `examples/floor.rs`'s, so that the floor run with scimd's own statement separates what the
/// statement costs Postgres from what scimd does around it (BENCHMARKS.md).
pub const USER_BY_ID: &str = concat!(
    "select ",
    user_select!(),
    " from users where org_id = $1 and id = $2"
);

/// The parameters of [`user_update_sql`] when versioned: [`user_update_args`]' and the
/// version read.
const VERSIONED_UPDATE_ARGS: usize = 11;

/// A user's update; `versioned` makes it apply only while the row is at the version bound
/// at `$11`.
fn user_update_sql<D: Dialect>(versioned: bool) -> String {
    format!(
        "update users set user_name = $3, user_name_folded = $4, external_id = $5, \
         active = $6, doc = $7, password_hash = $8, modified_at = {}($9, modified_at), \
         version = version + 1, doc_folded = $10 where org_id = $1 and id = $2{} \
         returning {}",
        D::GREATEST,
        if versioned { " and version = $11" } else { "" },
        USER_SELECT
    )
}

/// The parameters of [`user_update_sql`] up to `$10`.
fn user_update_args<'a>(org_id: Uuid, id: Uuid, next: &'a UserWrite) -> Vec<Arg<'a>> {
    vec![
        Arg::Uuid(org_id),
        Arg::Uuid(id),
        Arg::Text(&next.user_name),
        Arg::Text(&next.user_name_folded),
        Arg::OptText(next.external_id.as_deref()),
        Arg::OptBool(next.active),
        Arg::DocJson(&next.doc),
        Arg::OptText(next.password_hash.as_deref()),
        Arg::Int(now_ms()),
        Arg::JsonText(next.doc_folded.text()),
    ]
}

/// Unlocked attempts at a user's update before the locked transaction takes over: a failed
/// attempt means another writer committed in between, and under contention on one user the
/// lock's queue serves writers in turn where retries could starve one.
const UNLOCKED_ATTEMPTS: usize = 2;

impl<D: Dialect> SqlStore<D> {
    /// A user's update without holding its row across round trips (`Dialect::
    /// UNLOCKED_UPDATES`): read it, compute the next state, then write the row and its
    /// change-log entry in one statement that applies only if the row is still at the
    /// version read. Two round trips on one connection, where the locked transaction takes
    /// four (begin, locked read, write, commit).
    ///
    /// No update is lost: a writer that committed in between changed the version, so the
    /// statement matches nothing and the update starts again from a fresh read. A user's
    /// change-log entries stay in commit order: the statement takes its transaction id (the
    /// entry's position) when it writes, after the version it read had committed, so every
    /// committed change it follows has a lower id, and one that commits while it waits
    /// changes the version and makes it match nothing.
    ///
    /// `None` leaves the update to the locked path: when it adds a user-attribute key (its
    /// definition is held `for share` until commit), changes the emails (their lookup rows
    /// are rewritten in the same transaction), or lost every attempt.
    async fn update_user_unlocked(
        &self,
        org_id: Uuid,
        id: Uuid,
        update: &UserUpdateFn<'_>,
        change: &ChangeRequest<'_>,
    ) -> StoreResult<Option<UserRecord>> {
        let mut conn = self.dialect.writer().acquire().await?;
        let write = self.texts.unlocked_user_update.get_or_init(|| {
            logged_write_sql::<D>(&user_update_sql::<D>(true), VERSIONED_UPDATE_ARGS)
        });
        for _ in 0..UNLOCKED_ATTEMPTS {
            let row =
                fetch_optional::<D>(&mut conn, USER_BY_ID, &[Arg::Uuid(org_id), Arg::Uuid(id)])
                    .await?
                    .ok_or(StoreError::NotFound)?;
            let current = user_from_row::<D>(&row)?;
            let next = update(&current)?;
            if next.same_as(&current) {
                return Ok(Some(current));
            }
            if adds_attributes(Some(current.doc.map()?), &next.doc) || next.emails_differ(&current)
            {
                return Ok(None);
            }
            let mut args = user_update_args(org_id, id, &next);
            args.push(Arg::Int(current.version));
            debug_assert_eq!(args.len(), VERSIONED_UPDATE_ARGS);
            let entry = ChangeWrite::user(change, id, Some(&current), &next)?;
            let written = run_logged_write::<D>(
                &mut conn,
                write,
                &args,
                org_id,
                &entry,
                conflict_as("userName"),
            )
            .await?;
            if let Some(row) = written {
                self.recorded(org_id, change.operation, 1);
                return Ok(Some(user_from_row::<D>(&row)?));
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl<D: Dialect> UserStore for SqlStore<D> {
    async fn create_user(
        &self,
        org_id: Uuid,
        user: &UserWrite,
        change: &ChangeRequest<'_>,
    ) -> StoreResult<UserRecord> {
        let mut tx = self.dialect.writer().begin().await?;
        let sql = format!(
            "insert into users ({USER_INSERT_COLUMNS}) values {} returning {}",
            user_insert_values(1),
            USER_SELECT
        );
        let id = Uuid::now_v7();
        let args = user_insert_args(id, org_id, user, now_ms());
        check_added_attributes::<D>(&mut tx, org_id, None, &user.doc).await?;
        let entry = ChangeWrite::user(change, id, None, user)?;
        let record = write_user::<D>(&mut tx, &sql, &args, org_id, &entry).await?;
        insert_emails::<D>(&mut tx, record.id, org_id, &user.emails_folded).await?;
        tx.commit().await?;
        self.recorded(org_id, change.operation, 1);
        Ok(record)
    }

    async fn create_users(
        &self,
        org_id: Uuid,
        users: &[(UserWrite, ChangeRequest<'_>)],
    ) -> StoreResult<Vec<StoreResult<Uuid>>> {
        let mut tx = self.dialect.writer().begin().await?;
        let adds_attributes = users
            .iter()
            .any(|(user, _)| user_attribute_keys(&user.doc).next().is_some());
        let defined = if adds_attributes {
            attribute_definitions::<D>(&mut tx, org_id).await?
        } else {
            Vec::new()
        };
        let mut results: Vec<StoreResult<Uuid>> = users
            .iter()
            .map(|(user, _)| {
                undefined_attribute(user_attribute_keys(&user.doc), &defined)
                    .map(|()| Uuid::now_v7())
            })
            .collect();
        let insert: Vec<(Uuid, &UserWrite)> = results
            .iter()
            .zip(users)
            .filter_map(|(result, (user, _))| Some((*result.as_ref().ok()?, user)))
            .collect();
        if insert.is_empty() {
            return Ok(results);
        }
        // A taken userName skips its row instead of failing the statement, so the others
        // are still created; an earlier row of the same statement counts as taken.
        let values: Vec<String> = (0..insert.len())
            .map(|i| user_insert_values(i * USER_INSERT_PARAMS + 1))
            .collect();
        let sql = format!(
            "insert into users ({USER_INSERT_COLUMNS}) values {} on conflict do nothing \
             returning id",
            values.join(", ")
        );
        let now = now_ms();
        let args: Vec<Arg<'_>> = insert
            .iter()
            .flat_map(|(id, user)| user_insert_args(*id, org_id, user, now))
            .collect();
        let rows = fetch_all::<D>(&mut tx, &sql, &args).await?;
        let created = rows
            .iter()
            .map(|row| D::uuid(row, "id"))
            .collect::<StoreResult<HashSet<Uuid>>>()?;
        let mut entries = Vec::with_capacity(created.len());
        let mut emails = Vec::new();
        for (result, (user, change)) in results.iter_mut().zip(users) {
            let Ok(id) = *result else { continue };
            if !created.contains(&id) {
                *result = Err(StoreError::Conflict("userName"));
                continue;
            }
            entries.push(ChangeWrite::user(change, id, None, user)?);
            emails.extend(user.emails_folded.iter().map(|e| (id, e.as_str())));
        }
        append::<D>(&mut tx, org_id, &entries).await?;
        insert_email_rows::<D>(&mut tx, org_id, &emails).await?;
        tx.commit().await?;
        if let Some((_, change)) = users.first() {
            self.recorded(org_id, change.operation, entries.len());
        }
        Ok(results)
    }

    async fn update_user(
        &self,
        org_id: Uuid,
        id: Uuid,
        update: &UserUpdateFn<'_>,
        change: &ChangeRequest<'_>,
    ) -> StoreResult<UserRecord> {
        if D::UNLOCKED_UPDATES
            && let Some(updated) = self
                .update_user_unlocked(org_id, id, update, change)
                .await?
        {
            return Ok(updated);
        }
        // The row is read locked (Postgres `for update`; SQLite's single writer connection
        // serialises every transaction), so a merge never works from a stale copy and no
        // attribute set by a concurrent PUT is lost.
        let mut tx = self.dialect.writer().begin().await?;
        let current = locked::<D, UserRecord>(&mut tx, org_id, id).await?;
        let next = update(&current)?;
        if next.same_as(&current) {
            tx.commit().await?;
            return Ok(current);
        }
        check_added_attributes::<D>(&mut tx, org_id, Some(current.doc.map()?), &next.doc).await?;
        let sql = user_update_sql::<D>(false);
        let args = user_update_args(org_id, id, &next);
        let entry = ChangeWrite::user(change, id, Some(&current), &next)?;
        let updated = write_user::<D>(&mut tx, &sql, &args, org_id, &entry).await?;
        if next.emails_differ(&current) {
            write_emails::<D>(&mut tx, id, org_id, &next.emails_folded).await?;
        }
        tx.commit().await?;
        self.recorded(org_id, change.operation, 1);
        Ok(updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first columns of a statement's select list, as written.
    fn leading_columns(select: &str) -> Vec<&str> {
        select
            .split(',')
            .map(str::trim)
            .take(USER_COLUMNS_READ.len())
            .collect()
    }

    #[test]
    fn every_select_of_a_user_starts_with_the_columns_read_by_place() {
        for select in [user_columns!(), USER_SELECT] {
            assert_eq!(leading_columns(select), USER_COLUMNS_READ, "{select}");
        }
        // The groups are the one column after those, named as `user_from_row` reads them.
        let own = USER_COLUMNS_READ.join(", ");
        assert_eq!(USER_SELECT, format!("{own}, users.member_of as groups"));
    }
}
