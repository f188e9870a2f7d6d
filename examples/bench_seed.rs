//! Benchmark seeding through the `Store` trait (the same writes the server makes): N users, a
//! group of up to 10,000 members and a group of 10, then the ids the load scripts pick from.
//!
//! Usage: bench_seed DATABASE_URL ORG_SLUG [N] [OUT_DIR]   (N defaults to 100000, OUT_DIR to .)
//!
//! Writes in OUT_DIR:
//! - `users.txt`: `<id> <userName> <userName percent-encoded>` per line, every seeded user,
//!   every line the same width (the load script finds user k by its place; the encoded name is
//!   a filter's value, so the load generator does not encode it per request);
//! - `big_group.txt`, `small_group.txt`: the group id on the first line, then its member ids;
//! - `outsiders.txt`: users in neither group (the member add/remove scenarios use these);
//! - `seed.env`: sizes and seeding time, `KEY=value` per line.

use std::io::Write;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use scimd::scim::interop::Profile;
use scimd::store::{self, Actor, ChangeRequest, GroupWrite, Operation, UserWrite};
use serde_json::json;
use uuid::Uuid;

/// Writers in flight: enough to keep the store's pool busy without queueing on it.
const CONCURRENCY: usize = 8;
const BIG_GROUP: usize = 10_000;
const SMALL_GROUP: usize = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        (3..=5).contains(&args.len()),
        "usage: bench_seed DATABASE_URL ORG_SLUG [N] [OUT_DIR]"
    );
    let url = &args[1];
    let slug = &args[2];
    let n: usize = args.get(3).map_or(Ok(100_000), |s| s.parse())?;
    let out = std::path::PathBuf::from(args.get(4).map_or(".", String::as_str));
    anyhow::ensure!(n >= 100, "seed at least 100 users");
    std::fs::create_dir_all(&out)?;

    let store = store::connect(url, &store::StoreOptions::default()).await?;
    let org = store.org_by_slug(slug).await?.id;
    // Seeding is recorded in the change log like any other create, without request data.
    let seeder = Actor::default();
    let created = ChangeRequest {
        actor: &seeder,
        operation: Operation::Create,
        data: None,
    };

    let started = Instant::now();
    let users: Vec<(Uuid, String)> = futures::stream::iter(0..n)
        .map(|i| {
            let (store, created) = (store.clone(), created.clone());
            async move {
                let name = format!("user{i:07}@bench.example.com");
                let external_id = format!("ext-{i:07}");
                // The document as the HTTP layer stores it after a POST of the same body.
                let doc = json!({
                    "userName": name,
                    "externalId": external_id,
                    "active": true,
                    "displayName": format!("Bench User {i}"),
                    "name": {"givenName": "Bench", "familyName": format!("User{i}")},
                    "emails": [{"value": name, "type": "work", "primary": true}],
                });
                let user = UserWrite::from_doc(
                    doc.as_object().cloned().unwrap_or_default(),
                    None,
                    Profile::Reference,
                );
                let record = store.create_user(org, &user, &created).await?;
                anyhow::Ok((record.id, name))
            }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let users_secs = started.elapsed().as_secs_f64();

    // Keep at least a quarter of the users outside both groups for the add/remove scenarios.
    let big_len = BIG_GROUP.min(n * 3 / 4 - SMALL_GROUP);
    let big: Vec<Uuid> = users[..big_len].iter().map(|(id, _)| *id).collect();
    let small: Vec<Uuid> = users[big_len..big_len + SMALL_GROUP]
        .iter()
        .map(|(id, _)| *id)
        .collect();
    let outsiders = &users[big_len + SMALL_GROUP..];
    let group = |name: &str| {
        let doc = json!({"displayName": name});
        GroupWrite::from_doc(doc.as_object().cloned().unwrap_or_default())
    };
    let groups_started = Instant::now();
    let big_group = store
        .create_group(org, &group("bench-big")?, &big, &created)
        .await?;
    let small_group = store
        .create_group(org, &group("bench-small")?, &small, &created)
        .await?;
    let groups_secs = groups_started.elapsed().as_secs_f64();

    let write = |file: &str, lines: &mut dyn Iterator<Item = String>| -> anyhow::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(out.join(file))?);
        for line in lines {
            writeln!(f, "{line}")?;
        }
        f.flush()?;
        Ok(())
    };
    let lines: Vec<String> = users
        .iter()
        .map(|(id, name)| format!("{id} {name} {}", query_encoded(name)))
        .collect();
    anyhow::ensure!(
        lines.iter().all(|line| line.len() == lines[0].len()),
        "users.txt: every line must have the same width"
    );
    write("users.txt", &mut lines.into_iter())?;
    write(
        "big_group.txt",
        &mut std::iter::once(big_group.id)
            .chain(big.iter().copied())
            .map(|id| id.to_string()),
    )?;
    write(
        "small_group.txt",
        &mut std::iter::once(small_group.id)
            .chain(small.iter().copied())
            .map(|id| id.to_string()),
    )?;
    write(
        "outsiders.txt",
        &mut outsiders.iter().map(|(id, _)| id.to_string()),
    )?;
    write(
        "seed.env",
        &mut [
            format!("SEED_USERS={n}"),
            format!("SEED_BIG_GROUP={big_len}"),
            format!("SEED_SMALL_GROUP={SMALL_GROUP}"),
            format!("SEED_OUTSIDERS={}", outsiders.len()),
            format!("SEED_USERS_SECONDS={users_secs:.1}"),
            format!("SEED_GROUPS_SECONDS={groups_secs:.1}"),
        ]
        .into_iter(),
    )?;
    eprintln!(
        "bench_seed: {n} users in {users_secs:.1} s ({:.0}/s), groups of {big_len} and \
         {SMALL_GROUP} in {groups_secs:.1} s, ids in {}",
        n as f64 / users_secs.max(1e-9),
        out.display()
    );
    Ok(())
}

/// `text` as a query parameter's value: every byte but the unreserved ones (RFC 3986 §2.3) as
/// `%XX`.
fn query_encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
