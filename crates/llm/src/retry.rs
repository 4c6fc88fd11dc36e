//! Retries of one model call: exponential backoff on 429, 5xx and failed connections,
//! honouring `Retry-After`; every other failure is final at once.

use std::future::Future;
use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::error::{LlmError, excerpt};

/// How often and how long to retry. The defaults are Honcho's: 3 attempts with waits
/// from 4 to 10 seconds (reference-reasoning §1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt; it doubles per attempt up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest `Retry-After` waited for inside the call. A provider asking for more
    /// gets [`LlmError::RateLimited`], so a queue worker is not held for minutes and
    /// the job can be rescheduled instead.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(4),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, failed_attempts: u32) -> Duration {
        let doubled = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(failed_attempts.saturating_sub(1)));
        doubled.min(self.max_backoff)
    }
}

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The provider answered with an error status.
    Status {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    /// No answer arrived (connection refused or reset): worth another try.
    Unreachable(String),
    /// Retrying cannot help (a timeout, an unreadable answer).
    Final(LlmError),
}

/// Runs `attempt` until it succeeds, fails for good, or the policy is used up.
pub(crate) async fn with_retries<T, Fut>(
    policy: &RetryPolicy,
    provider: &'static str,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, LlmError>
where
    Fut: Future<Output = Result<T, Failure>>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let last = attempts >= max_attempts;
        let wait = match attempt().await {
            Ok(value) => return Ok(value),
            Err(Failure::Final(e)) => return Err(e),
            Err(Failure::Status {
                status,
                body,
                retry_after,
            }) => {
                let retryable = status == 429 || (500..600).contains(&status);
                if !retryable || last {
                    return Err(LlmError::Http {
                        provider,
                        status,
                        attempts,
                        body: excerpt(&body),
                    });
                }
                match retry_after {
                    Some(wait) if wait > policy.max_retry_after => {
                        return Err(LlmError::RateLimited {
                            provider,
                            retry_after: wait,
                        });
                    }
                    Some(wait) => wait,
                    None => policy.backoff(attempts),
                }
            }
            Err(Failure::Unreachable(message)) => {
                if last {
                    return Err(LlmError::Transport {
                        provider,
                        attempts,
                        message: excerpt(&message),
                    });
                }
                policy.backoff(attempts)
            }
        };
        tracing::warn!(provider, attempts, ?wait, "model call failed; retrying");
        tokio::time::sleep(wait).await;
    }
}

/// The wait a response asks for: `retry-after-ms` (OpenAI's), else `Retry-After` in
/// seconds. An HTTP-date `Retry-After` is not read; the backoff applies instead.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| *n >= 0.0)
    };
    number("retry-after-ms")
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
        .or_else(|| number("retry-after").and_then(|s| Duration::try_from_secs_f64(s).ok()))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use reqwest::header::HeaderValue;

    use super::*;

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            max_retry_after: Duration::from_secs(1),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_secs(4));
        assert_eq!(p.backoff(2), Duration::from_secs(8));
        assert_eq!(p.backoff(3), Duration::from_secs(10));
        assert_eq!(p.backoff(40), Duration::from_secs(10));
    }

    #[test]
    fn reads_retry_after_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut date = HeaderMap::new();
        date.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&date), None);
    }

    async fn run(failures: Vec<Failure>) -> (Result<(), LlmError>, u32) {
        let calls = AtomicU32::new(0);
        let failures = std::sync::Mutex::new(failures.into_iter());
        let result = with_retries(&quick(), "test", || {
            calls.fetch_add(1, Ordering::SeqCst);
            let next = failures.lock().unwrap().next();
            async move { next.map_or(Ok(()), Err) }
        })
        .await;
        (result, calls.into_inner())
    }

    fn status(status: u16, retry_after: Option<Duration>) -> Failure {
        Failure::Status {
            status,
            body: "x".into(),
            retry_after,
        }
    }

    #[tokio::test]
    async fn retries_only_what_can_pass_and_stops_at_the_limit() {
        assert_eq!(run(vec![status(503, None), status(429, None)]).await.1, 3);
        assert!(
            run(vec![status(503, None), status(429, None)])
                .await
                .0
                .is_ok()
        );
        let (r, calls) = run(vec![status(400, None)]).await;
        assert!(
            matches!(
                r,
                Err(LlmError::Http {
                    status: 400,
                    attempts: 1,
                    ..
                })
            ),
            "{r:?}"
        );
        assert_eq!(calls, 1);
        let (r, calls) = run(vec![
            status(500, None),
            status(502, None),
            status(500, None),
        ])
        .await;
        assert!(
            matches!(
                r,
                Err(LlmError::Http {
                    status: 500,
                    attempts: 3,
                    ..
                })
            ),
            "{r:?}"
        );
        assert_eq!(calls, 3);
        let unreachable = || Failure::Unreachable("refused".into());
        let (r, _) = run(vec![unreachable(), unreachable(), unreachable()]).await;
        assert!(
            matches!(r, Err(LlmError::Transport { attempts: 3, .. })),
            "{r:?}"
        );
        let (r, calls) = run(vec![Failure::Final(LlmError::InvalidJson {
            reason: "r".into(),
            excerpt: "e".into(),
        })])
        .await;
        assert!(matches!(r, Err(LlmError::InvalidJson { .. })), "{r:?}");
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn a_long_retry_after_is_handed_to_the_caller() {
        let (r, calls) = run(vec![status(429, Some(Duration::from_secs(120)))]).await;
        assert!(
            matches!(r, Err(LlmError::RateLimited { retry_after, .. }) if retry_after == Duration::from_secs(120)),
            "{r:?}"
        );
        assert_eq!(calls, 1);
    }
}
