//! Group commit: a group whose commit fails answers every request in it with an error and
//! leaves nothing of any of them in the database; the same requests succeed afterwards.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::ConnectionTrait;
use tokio::sync::oneshot;

use super::*;
use crate::ids::ClientId;
use crate::oauth::pkce::CodeChallenge;
use crate::oauth::redirect_uri::RedirectUri;
use crate::oauth::resource::ResourceUri;
use crate::oauth::scope::ScopeSet;
use crate::store::Store;
use crate::store::login::{CodeRow, CompletedLogin};
use crate::store::tokens::{FamilyRow, RefreshRow};

const NOW: i64 = 1_750_000_000;
const LOGINS: usize = 8;

async fn file_store(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let store = Store::open(&url, 4, SqliteSynchronous::Normal)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

/// A completed login through `client_1`; returns the hash of its authorization code.
async fn login(store: &Store, i: usize) -> crate::ids::TokenHash {
    let code_hash = crate::ids::TokenHash::from_stored(format!("code_{i}"));
    let code = CodeRow {
        code_hash: code_hash.clone(),
        grant_id: format!("grt_{i}").parse().unwrap(),
        client_id: ClientId::from_stored("client_1".into()),
        user_id: format!("usr_{i}").parse().unwrap(),
        redirect_uri: RedirectUri::from_stored("https://host.example/cb".into()),
        code_challenge: CodeChallenge::from_stored("c".into()),
        resource: ResourceUri::from_stored("https://mcp.example/mcp".into()),
        scope: ScopeSet::from_stored("mcp"),
        auth_time: NOW,
        created_at: NOW,
        expires_at: NOW + 600,
        redeemed_at: None,
        access_jti: None,
    };
    let completed = CompletedLogin {
        provider: "dev".into(),
        subject: format!("subject_{i}"),
        display_name: None,
        new_user_id: format!("usr_{i}").parse().unwrap(),
        new_grant_id: format!("grt_{i}").parse().unwrap(),
        client_id: ClientId::from_stored("client_1".into()),
        resource: ResourceUri::from_stored("https://mcp.example/mcp".into()),
        scope: ScopeSet::from_stored("mcp"),
        upstream_expires_at: None,
        code,
        now: NOW,
        request_hash: format!("req_{i}"),
        audit: Arc::new(|_, _| {
            crate::store::audit::AuditRecord::new(
                NOW,
                "user",
                "grant.create",
                &serde_json::json!({}),
            )
        }),
    };
    store
        .complete_login(completed, Arc::new(|_| "sealed".to_owned()))
        .await
        .unwrap();
    code_hash
}

/// Redeems login `i`'s code as the token endpoint does: the family and its first token.
async fn redeem(store: &Store, i: usize) -> Result<bool, StoreError> {
    let family = FamilyRow {
        family_id: format!("fam_{i}").parse().unwrap(),
        grant_id: format!("grt_{i}").parse().unwrap(),
        client_id: ClientId::from_stored("client_1".into()),
        code_hash: Some(crate::ids::TokenHash::from_stored(format!("code_{i}"))),
        auth_time: NOW,
        created_at: NOW,
        absolute_expires_at: NOW + 86_400,
        revoked_at: None,
        redirect_uri: None,
    };
    let first = RefreshRow {
        token_hash: crate::ids::TokenHash::from_stored(format!("rt_{i}")),
        family_id: family.family_id.clone(),
        scope: ScopeSet::from_stored("mcp"),
        access_jti: format!("jti_{i}"),
        access_expires_at: NOW + 3600,
        created_at: NOW,
        idle_expires_at: NOW + 3600,
        rotated_at: None,
        successor: None,
    };
    store
        .redeem_code(
            &crate::ids::TokenHash::from_stored(format!("code_{i}")),
            family,
            first,
            NOW,
        )
        .await
}

/// Holds the writer until `release` fires, so that jobs queue up behind it as one group.
async fn hold_writer(store: &Store) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (release, held) = oneshot::channel::<()>();
    let (running, started) = oneshot::channel::<()>();
    let store = store.clone();
    let holder = tokio::spawn(async move {
        store
            .write(move |_txn| {
                Box::pin(async move {
                    running.send(()).ok();
                    held.await.ok();
                    Ok(Step::Commit(()))
                })
            })
            .await
            .unwrap();
    });
    started.await.unwrap();
    (release, holder)
}

async fn wait_until_queued(store: &Store, jobs: usize) {
    for _ in 0..500 {
        if store.writer.queued() >= jobs {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the jobs did not queue up");
}

/// A write whose statement passes but whose commit fails: a reference to a family that does
/// not exist, its check deferred to the commit (as a failed `fsync` fails only the commit).
fn poison(store: &Store) -> tokio::task::JoinHandle<Result<(), StoreError>> {
    let store = store.clone();
    tokio::spawn(async move {
        store
            .write(|txn| {
                Box::pin(async move {
                    txn.execute_unprepared("PRAGMA defer_foreign_keys = ON")
                        .await?;
                    txn.execute_unprepared(
                        "INSERT INTO refresh_tokens (token_hash, family_id, scope, access_jti, \
                         access_expires_at, created_at, idle_expires_at) \
                         VALUES ('orphan', 'no_such_family', 'mcp', 'j', 0, 0, 0)",
                    )
                    .await?;
                    Ok(Step::Commit(()))
                })
            })
            .await
    })
}

/// Codes spent plus families started.
async fn redeemed_codes(store: &Store) -> usize {
    let db = store.conn();
    let row = db
        .query_one(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT (SELECT COUNT(*) FROM authorization_codes WHERE redeemed_at IS NOT NULL) \
             + (SELECT COUNT(*) FROM refresh_families) AS n",
        ))
        .await
        .unwrap()
        .unwrap();
    usize::try_from(row.try_get::<i64>("", "n").unwrap()).unwrap()
}

/// Redemptions of `LOGINS` fresh codes, queued while the writer is held: released together,
/// they share one group.
async fn redemptions_behind_a_held_writer(
    store: &Store,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
    Vec<tokio::task::JoinHandle<Result<bool, StoreError>>>,
) {
    for i in 0..LOGINS {
        login(store, i).await;
    }
    let (release, holder) = hold_writer(store).await;
    let redemptions = (0..LOGINS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { redeem(&store, i).await })
        })
        .collect();
    (release, holder, redemptions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_commit_acknowledges_no_grant_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(&dir).await;
    let (release, holder, redemptions) = redemptions_behind_a_held_writer(&store).await;
    let poisoned = poison(&store);
    wait_until_queued(&store, LOGINS + 1).await;
    release.send(()).unwrap();
    holder.await.unwrap();

    assert!(poisoned.await.unwrap().is_err(), "the failing write fails");
    for (i, redemption) in redemptions.into_iter().enumerate() {
        let answer = redemption.await.unwrap();
        assert!(
            matches!(answer, Err(StoreError::Group(_))),
            "redemption {i} shared the failed commit and must not be acknowledged: {answer:?}"
        );
    }
    assert_eq!(
        redeemed_codes(&store).await,
        0,
        "no code spent, no family written"
    );

    // Nothing was spent: every code redeems now, once.
    for i in 0..LOGINS {
        assert!(
            redeem(&store, i).await.unwrap(),
            "code {i} redeems after the failure"
        );
        assert!(!redeem(&store, i).await.unwrap(), "code {i} is single use");
    }
    assert_eq!(redeemed_codes(&store).await, 2 * LOGINS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_is_undone_alone_and_its_group_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = file_store(&dir).await;
    let (release, holder, redemptions) = redemptions_behind_a_held_writer(&store).await;
    // A statement that fails at once (a duplicate primary key): only its own job fails.
    let duplicate = {
        let store = store.clone();
        tokio::spawn(async move { store.insert_counter_twice().await })
    };
    wait_until_queued(&store, LOGINS + 1).await;
    release.send(()).unwrap();
    holder.await.unwrap();
    assert!(duplicate.await.unwrap().is_err());
    for redemption in redemptions {
        assert!(redemption.await.unwrap().unwrap(), "redeemed");
    }
    assert_eq!(redeemed_codes(&store).await, 2 * LOGINS);
}

impl Store {
    /// One job that inserts the same counter twice: its second statement fails.
    async fn insert_counter_twice(&self) -> Result<(), StoreError> {
        self.write(|txn| {
            Box::pin(async move {
                for _ in 0..2 {
                    txn.execute_unprepared(
                        "INSERT INTO counters (name, value) VALUES ('twice', 0)",
                    )
                    .await?;
                }
                Ok(Step::Commit(()))
            })
        })
        .await
    }
}
