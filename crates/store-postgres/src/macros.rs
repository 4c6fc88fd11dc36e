//! Transaction macros shared by the modules that implement the store traits.

/// Runs `$body` (an expression awaiting on `$c: &mut PgConnection`) in a transaction
/// begun by the future `$begin`, retrying the whole transaction when it lost a race.
macro_rules! transaction {
    ($begin:expr, |$c:ident| $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome: crate::R<_> = async {
                let mut tx = $begin.await?;
                let $c: &mut sqlx::PgConnection = &mut tx;
                let out = $body?;
                tx.commit().await?;
                Ok(out)
            }
            .await;
            match outcome {
                Ok(v) => break Ok(v),
                Err(fail) if attempt < crate::store::MAX_ATTEMPTS && fail.is_retryable() => {
                    tracing::debug!(attempt, error = ?fail, "postgres transaction lost a race; retrying");
                    tokio::time::sleep(crate::store::backoff(attempt)).await;
                }
                Err(fail) => break Err(fail.into_error()),
            }
        }
    }};
}

/// A write transaction; when it commits having queued jobs, this process's workers
/// are woken.
macro_rules! writing {
    ($store:expr, |$c:ident| $body:expr) => {{
        let (outcome, queued) =
            crate::queue::tracking(async { transaction!($store.pool.begin(), |$c| $body) }).await;
        if queued && outcome.is_ok() {
            $store.jobs_ready.notify_one();
        }
        outcome
    }};
}

macro_rules! reading {
    ($store:expr, |$c:ident| $body:expr) => {
        transaction!($store.pool.begin_with(crate::store::READ), |$c| $body)
    };
}
