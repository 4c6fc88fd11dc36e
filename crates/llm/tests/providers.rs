//! Each transport against a real HTTP server on 127.0.0.1 speaking its wire format.

mod fake;

use std::future::Future;
use std::time::{Duration, Instant};

use engram_llm::{
    ChatModel, ChatRequest, EXCERPT_CHARS, LlmError, Message, OutputSchema, ToolSpec, Transport,
    Usage,
};
use fake::{Fake, Planned, TRANSPORTS, chat_path, error_body, key_header, text_reply, tool_reply};
use serde_json::json;

/// Every test is bounded: a hung call fails the test instead of the run.
async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("test took more than 30 s");
}

fn request() -> ChatRequest {
    ChatRequest::new(
        "Be brief.",
        vec![Message::user("Alice: I drink tea daily.")],
    )
}

fn facts() -> OutputSchema {
    OutputSchema::new(
        "facts",
        json!({
            "type": "object",
            "properties": {"explicit": {"type": "array", "items": {"type": "string"}}},
            "required": ["explicit"]
        }),
    )
    .unwrap()
}

#[tokio::test]
async fn a_reply_carries_its_text_and_the_providers_token_counts() {
    bounded(async {
        for t in TRANSPORTS {
            let fake = Fake::start(vec![Planned::ok(text_reply(t, "Noted.", 12, 5))]).await;
            let reply = fake.model(t, &[]).chat(&request(), None).await.unwrap();
            assert_eq!(reply.text, "Noted.", "{t:?}");
            assert_eq!(
                reply.usage,
                Usage {
                    input_tokens: 12,
                    output_tokens: 5
                },
                "{t:?}"
            );
            let seen = fake.seen();
            assert_eq!(seen.len(), 1, "{t:?}");
            let (path, headers, body) = &seen[0];
            assert_eq!(path, chat_path(t));
            let (name, value) = key_header(t);
            assert_eq!(
                headers.get(name).and_then(|v| v.to_str().ok()),
                Some(value),
                "{t:?}"
            );
            let sent = body.to_string();
            assert!(
                sent.contains("Be brief.") && sent.contains("I drink tea"),
                "{t:?}: {sent}"
            );
            assert!(sent.contains("2500"), "{t:?}: max tokens not sent: {sent}");
        }
    })
    .await;
}

#[tokio::test]
async fn structured_output_is_requested_and_checked() {
    bounded(async {
        for t in TRANSPORTS {
            let fake = Fake::start(vec![Planned::ok(text_reply(
                t,
                r#"{"explicit": ["Alice drinks tea daily"]}"#,
                30,
                9,
            ))])
            .await;
            let reply = fake
                .model(t, &[])
                .chat_json(&request(), &facts())
                .await
                .unwrap();
            assert_eq!(
                reply.value,
                json!({"explicit": ["Alice drinks tea daily"]}),
                "{t:?}"
            );
            assert_eq!(reply.usage.output_tokens, 9, "{t:?}");
            // The schema went to the provider, in whatever shape the transport uses.
            let sent = fake.seen()[0].2.to_string();
            assert!(sent.contains("explicit"), "{t:?}: schema not sent: {sent}");
        }
    })
    .await;
}

#[tokio::test]
async fn output_that_is_not_json_is_an_error_with_a_bounded_excerpt() {
    bounded(async {
        for t in TRANSPORTS {
            let prose = format!("Sure! Alice likes tea. {}", "And more. ".repeat(300));
            let fake = Fake::start(vec![Planned::ok(text_reply(t, &prose, 30, 900))]).await;
            let e = fake
                .model(t, &[])
                .chat_json(&request(), &facts())
                .await
                .unwrap_err();
            assert!(matches!(e, LlmError::InvalidJson { .. }), "{t:?}: {e:?}");
            let excerpt = e.excerpt().unwrap();
            assert!(excerpt.starts_with("Sure! Alice likes tea."), "{t:?}");
            assert!(excerpt.chars().count() <= EXCERPT_CHARS + 1, "{t:?}");
            assert!(e.to_string().len() < 2 * EXCERPT_CHARS + 200, "{t:?}");
            assert_eq!(
                fake.seen().len(),
                1,
                "{t:?}: bad output is not retried here"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn output_violating_the_schema_is_an_error() {
    bounded(async {
        for t in TRANSPORTS {
            let fake = Fake::start(vec![Planned::ok(text_reply(
                t,
                r#"{"explicit": "tea"}"#,
                30,
                5,
            ))])
            .await;
            let e = fake
                .model(t, &[])
                .chat_json(&request(), &facts())
                .await
                .unwrap_err();
            let LlmError::SchemaViolation {
                schema, excerpt, ..
            } = &e
            else {
                panic!("{t:?}: {e:?}")
            };
            assert_eq!(schema, "facts");
            assert_eq!(excerpt, r#"{"explicit": "tea"}"#);
        }
    })
    .await;
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_succeeds() {
    bounded(async {
        for t in TRANSPORTS {
            let fake = Fake::start(vec![
                Planned::status(429, error_body("slow down")).header("retry-after", "1"),
                Planned::ok(text_reply(t, "ok", 1, 1)),
            ])
            .await;
            let started = Instant::now();
            let reply = fake.model(t, &[]).chat(&request(), None).await.unwrap();
            assert_eq!(reply.text, "ok", "{t:?}");
            assert_eq!(fake.seen().len(), 2, "{t:?}");
            // The policy's own backoff is 10 ms: only the header explains a 1 s wait.
            assert!(
                started.elapsed() >= Duration::from_secs(1),
                "{t:?}: Retry-After ignored"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    bounded(async {
        for t in TRANSPORTS {
            let fake = Fake::start(vec![
                Planned::status(500, error_body("boom")),
                Planned::status(503, error_body("overloaded")),
                Planned::ok(text_reply(t, "third time", 4, 2)),
            ])
            .await;
            let reply = fake.model(t, &[]).chat(&request(), None).await.unwrap();
            assert_eq!(reply.text, "third time", "{t:?}");
            assert_eq!(fake.seen().len(), 3, "{t:?}");

            let fake = Fake::start(
                (0..4)
                    .map(|_| Planned::status(502, error_body("down")))
                    .collect(),
            )
            .await;
            let e = fake.model(t, &[]).chat(&request(), None).await.unwrap_err();
            assert!(
                matches!(
                    e,
                    LlmError::Http {
                        status: 502,
                        attempts: 3,
                        ..
                    }
                ),
                "{t:?}: {e:?}"
            );
            assert_eq!(fake.seen().len(), 3, "{t:?}: stops at max_attempts");
        }
    })
    .await;
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    bounded(async {
        for t in TRANSPORTS {
            let fake = Fake::start(vec![
                Planned::status(400, error_body("bad model name")),
                Planned::ok(text_reply(t, "never", 1, 1)),
            ])
            .await;
            let e = fake.model(t, &[]).chat(&request(), None).await.unwrap_err();
            let LlmError::Http {
                status,
                attempts,
                body,
                ..
            } = &e
            else {
                panic!("{t:?}: {e:?}")
            };
            assert_eq!((*status, *attempts), (400, 1), "{t:?}");
            assert!(body.contains("bad model name"), "{t:?}: {body}");
            assert_eq!(fake.seen().len(), 1, "{t:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_slow_provider_times_out_after_the_configured_time() {
    bounded(async {
        for t in TRANSPORTS {
            let fake = Fake::start(vec![
                Planned::ok(text_reply(t, "late", 1, 1)).after(Duration::from_secs(20)),
            ])
            .await;
            let setting = "DERIVER_MODEL_CONFIG__OVERRIDES__PROVIDER_PARAMS__TIMEOUT";
            let model = fake.model(t, &[(setting, "0.3")]);
            let started = Instant::now();
            let e = model.chat(&request(), None).await.unwrap_err();
            let took = started.elapsed();
            let LlmError::Timeout {
                after,
                setting: named,
                ..
            } = &e
            else {
                panic!("{t:?}: {e:?}")
            };
            assert_eq!(*after, Duration::from_millis(300));
            assert_eq!(named, setting, "the error names the setting to raise");
            assert!(
                took >= Duration::from_millis(300) && took < Duration::from_secs(3),
                "{took:?}"
            );
            assert_eq!(fake.seen().len(), 1, "{t:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn tool_calls_are_offered_and_returned() {
    bounded(async {
        for t in TRANSPORTS {
            let fake = Fake::start(vec![Planned::ok(tool_reply(t))]).await;
            let mut req = request();
            req.tools.push(ToolSpec {
                name: "search".into(),
                description: "Search the peer's memory".into(),
                input_schema: json!({"type": "object", "properties": {"q": {"type": "string"}}}),
            });
            let reply = fake.model(t, &[]).chat(&req, None).await.unwrap();
            assert_eq!(reply.tool_calls.len(), 1, "{t:?}: {reply:?}");
            assert_eq!(reply.tool_calls[0].name, "search");
            assert_eq!(reply.tool_calls[0].arguments, json!({"q": "tea"}));
            assert_eq!(
                reply.usage,
                Usage {
                    input_tokens: 20,
                    output_tokens: 7
                },
                "{t:?}"
            );
            let sent = fake.seen()[0].2.to_string();
            assert!(sent.contains("Search the peer's memory"), "{t:?}: {sent}");
        }
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_server_is_retried_then_reported() {
    bounded(async {
        // A port that was just free: connections are refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let fake = Fake::unstarted(base);
        let e = fake
            .model(Transport::Anthropic, &[])
            .chat(&request(), None)
            .await
            .unwrap_err();
        assert!(
            matches!(e, LlmError::Transport { attempts: 3, .. }),
            "{e:?}"
        );
    })
    .await;
}
