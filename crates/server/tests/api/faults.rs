//! A purge that fails is retried with backoff until it succeeds. The failure is a real
//! store error, injected with a trigger that refuses to delete messages until removed.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_engines;
use crate::helpers::TestApp;

const SQLITE_FAULT: &str = "CREATE TRIGGER inject_fault BEFORE DELETE ON messages \
     BEGIN SELECT RAISE(ABORT, 'injected fault'); END";
const PG_FAULT: [&str; 2] = [
    "CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS \
     $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$",
    "CREATE TRIGGER inject_fault BEFORE DELETE ON messages FOR EACH ROW EXECUTE FUNCTION inject_fault()",
];

/// Runs `statements` on the app's database beside the app, on either engine.
pub async fn execute(app: &TestApp, statements: &[&str]) {
    if let Some(dir) = app.data_dir() {
        let conn = rusqlite::Connection::open(dir.join("engram.db")).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        for sql in statements {
            conn.execute_batch(sql).unwrap();
        }
    } else {
        let url = app.db_url.as_deref().expect("postgres url");
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        for sql in statements {
            sqlx::query(sqlx::AssertSqlSafe(*sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

/// Makes every delete of a message fail (on) or succeed again (off).
pub async fn set_fault(app: &TestApp, on: bool) {
    match (app.data_dir().is_some(), on) {
        (true, true) => execute(app, &[SQLITE_FAULT]).await,
        (true, false) => execute(app, &["DROP TRIGGER inject_fault"]).await,
        (false, true) => execute(app, &PG_FAULT).await,
        (false, false) => execute(app, &["DROP TRIGGER inject_fault ON messages"]).await,
    }
}

/// Attempts made, state and last error of the (only) job, read from the store.
pub async fn job_state(app: &TestApp) -> (i64, String, Option<String>) {
    let sql = "SELECT attempts, state, last_error FROM jobs";
    if let Some(dir) = app.data_dir() {
        let conn = rusqlite::Connection::open(dir.join("engram.db")).unwrap();
        conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
    } else {
        let url = app.db_url.as_deref().expect("postgres url");
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        sqlx::query_as(sql).fetch_one(&mut conn).await.unwrap()
    }
}

both_engines!(
    failed_purge_is_retried_until_done,
    |app: TestApp| async move {
        app.add_messages("w", "s", &[("p", "a"), ("p", "b")]).await;
        set_fault(&app, true).await;
        let r = app
            .call(Method::DELETE, "/v3/workspaces/w/sessions/s", None)
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        // The first attempt fails and the job waits for its retry.
        let mut waited = 0;
        loop {
            let (attempts, state, error) = job_state(&app).await;
            if attempts >= 1 && state == "pending" {
                assert!(error.unwrap_or_default().contains("injected fault"));
                break;
            }
            waited += 1;
            assert!(waited < 200, "the failed attempt was never recorded");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let status = app.get("/v3/workspaces/w/queue/status").await;
        assert_eq!(status.body["deletions"]["pending"], 1);
        assert!(
            app.store.deletion_receipts("w").await.unwrap()[0]
                .finished_at
                .is_none()
        );
        // The session stayed invisible meanwhile.
        assert_eq!(
            app.post("/v3/workspaces/w/sessions/list", json!({}))
                .await
                .body["total"],
            0
        );

        set_fault(&app, false).await;
        for _ in 0..200 {
            let receipts = app.store.deletion_receipts("w").await.unwrap();
            if receipts[0].finished_at.is_some() {
                assert_eq!(receipts[0].messages_deleted, 2);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the purge was not retried to completion");
    }
);
