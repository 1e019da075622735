//! `api-writes`: durable API creates per second with 1, 8 and 64 concurrent clients (HTTP over
//! loopback into a real API server on a redb store), beside raw redb single-transaction durable
//! commits per second on the same disk.

use std::time::Instant;

use anyhow::Context;

use super::api::start_api;

/// Raw redb: one durable write transaction per insert, back to back.
fn redb_commits_per_sec(dir: &std::path::Path, seconds: f64) -> anyhow::Result<f64> {
    const T: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("bench");
    let db = redb::Database::create(dir.join("raw.redb"))?;
    let value = vec![7u8; 300];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        let tx = db.begin_write()?;
        {
            let mut t = tx.open_table(T)?;
            t.insert(n, value.as_slice())?;
        }
        tx.commit()?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

pub(crate) async fn run(seconds: f64) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().to_path_buf();
    let raw = tokio::task::spawn_blocking(move || redb_commits_per_sec(&dir, seconds))
        .await
        .context("raw redb benchmark")??;
    println!("reference: raw redb durable single-insert commits: {raw:.0}/s");
    for clients in [1usize, 8, 64] {
        let api = start_api().await?;
        let rate = super::datastore::api_creates(&api, clients, seconds).await?;
        let stats = api.store.stats();
        println!(
            "api creates, {clients:>2} clients: {rate:>8.0}/s = {:.2}x raw redb commits (writes per commit {:.1})",
            rate / raw,
            stats.writes as f64 / stats.commits.max(1) as f64
        );
        api.shutdown.cancel();
    }
    Ok(())
}
