//! Benchmark seeding: N users, a 10,000-member group and a 10-member group, through the
//! store (the same writes the server makes). Writes the ids the load scripts pick from.
//! Usage: bench_seed DATABASE_URL ORG_SLUG N OUT_DIR

use std::io::Write;
use std::sync::Arc;

use scimd::store::{self, GroupWrite, UserWrite};
use serde_json::json;
use tokio::sync::Semaphore;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() == 5,
        "usage: bench_seed DATABASE_URL ORG_SLUG N OUT_DIR"
    );
    let (url, slug, n, out) = (&args[1], &args[2], args[3].parse::<usize>()?, &args[4]);
    let store = store::connect(url).await?;
    let org = store.org_by_slug(slug).await?.id;
    let permits = Arc::new(Semaphore::new(16));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (store, permits) = (store.clone(), permits.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire().await?;
            let name = format!("user{i:07}@bench.example.com");
            let doc = json!({"userName": name, "displayName": format!("User {i}"),
                             "name": {"givenName": "User", "familyName": format!("N{i}")},
                             "emails": [{"value": name, "type": "work", "primary": true}]});
            let user = UserWrite {
                user_name: name.clone(),
                external_id: Some(format!("ext-{i}")),
                active: true,
                doc: doc.as_object().cloned().unwrap_or_default(),
                password_hash: None,
            };
            let record = store.create_user(org, &user).await?;
            anyhow::Ok((record.id, name))
        }));
    }
    let mut users = Vec::with_capacity(n);
    for task in tasks {
        users.push(task.await??);
    }
    let big: Vec<_> = users
        .iter()
        .take(10_000.min(n / 2))
        .map(|(id, _)| *id)
        .collect();
    let small: Vec<_> = users
        .iter()
        .skip(big.len())
        .take(10)
        .map(|(id, _)| *id)
        .collect();
    let outsiders = &users[big.len() + small.len()..];
    let group = |name: &str| GroupWrite {
        display_name: name.into(),
        external_id: None,
        doc: json!({"displayName": name})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    let big_group = store.create_group(org, &group("bench-big"), &big).await?;
    let small_group = store
        .create_group(org, &group("bench-small"), &small)
        .await?;
    let write = |file: &str, lines: Vec<String>| -> anyhow::Result<()> {
        let mut f = std::fs::File::create(format!("{out}/{file}"))?;
        for line in lines {
            writeln!(f, "{line}")?;
        }
        Ok(())
    };
    write(
        "users.txt",
        users
            .iter()
            .map(|(id, name)| format!("{id} {name}"))
            .collect(),
    )?;
    write(
        "outsiders.txt",
        outsiders.iter().map(|(id, _)| id.to_string()).collect(),
    )?;
    write(
        "groups.txt",
        vec![format!("{} {}", big_group.id, small_group.id)],
    )?;
    eprintln!(
        "seeded {n} users, groups of {} and {}",
        big.len(),
        small.len()
    );
    Ok(())
}
