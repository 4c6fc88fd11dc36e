//! A scripted model server on 127.0.0.1 speaking each transport's wire format: every
//! request takes the next planned answer and is recorded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use engram_llm::config::DERIVER;
use engram_llm::{GenaiModel, ModelSettings, RetryPolicy, Transport};
use serde_json::{Value, json};

pub const TRANSPORTS: [Transport; 3] = [Transport::OpenAi, Transport::Anthropic, Transport::Gemini];

/// One planned answer.
pub struct Planned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Planned {
    pub fn ok(body: Value) -> Self {
        Self::status(200, body)
    }

    pub fn status(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What the server received: path, headers, JSON body.
pub type Seen = (String, HeaderMap, Value);

#[derive(Clone, Default)]
pub struct Fake {
    plan: Arc<Mutex<VecDeque<Planned>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    pub base: String,
}

impl Fake {
    pub async fn start(plan: Vec<Planned>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Self {
            plan: Arc::new(Mutex::new(plan.into())),
            base: format!("http://{}", listener.local_addr().unwrap()),
            ..Self::default()
        };
        let server = fake.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let server = server.clone();
            async move { server.answer(uri, headers, body).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    async fn answer(&self, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        self.seen
            .lock()
            .unwrap()
            .push((uri.path().to_owned(), headers, body));
        let Some(planned) = self.plan.lock().unwrap().pop_front() else {
            return (StatusCode::IM_A_TEAPOT, "no answer planned").into_response();
        };
        tokio::time::sleep(planned.delay).await;
        let mut response = (
            StatusCode::from_u16(planned.status).unwrap(),
            [("content-type", "application/json")],
            planned.body,
        )
            .into_response();
        for (name, value) in planned.headers {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        response
    }

    /// A fake with no server behind `base` (for connection failures).
    pub fn unstarted(base: String) -> Self {
        Self {
            base,
            ..Self::default()
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// A model on this server, configured the way an operator would, with quick
    /// backoff so retry tests stay short.
    pub fn model(&self, transport: Transport, extra: &[(&str, &str)]) -> GenaiModel {
        let model = format!("{}/test-model", transport.name());
        let base = match transport {
            Transport::OpenAi => format!("{}/v1", self.base),
            _ => self.base.clone(),
        };
        let mut vars = vec![
            ("DERIVER_MODEL_CONFIG__MODEL", model.as_str()),
            ("DERIVER_MODEL_CONFIG__OVERRIDES__BASE_URL", base.as_str()),
            ("DERIVER_MODEL_CONFIG__OVERRIDES__API_KEY", "test-key"),
        ];
        vars.extend_from_slice(extra);
        let settings = ModelSettings::from_lookup(DERIVER, |name| {
            vars.iter()
                .rev()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
        GenaiModel::new(settings).unwrap().with_retry(RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(5),
        })
    }
}

/// The path each transport posts a chat call to.
pub fn chat_path(transport: Transport) -> &'static str {
    match transport {
        Transport::OpenAi => "/v1/chat/completions",
        Transport::Anthropic => "/v1/messages",
        Transport::Gemini => "/v1beta/models/test-model:generateContent",
    }
}

/// The header carrying the API key, and its expected value.
pub fn key_header(transport: Transport) -> (&'static str, &'static str) {
    match transport {
        Transport::OpenAi => ("authorization", "Bearer test-key"),
        Transport::Anthropic => ("x-api-key", "test-key"),
        Transport::Gemini => ("x-goog-api-key", "test-key"),
    }
}

/// A successful text answer with the given usage, in the transport's format.
pub fn text_reply(transport: Transport, text: &str, input: u64, output: u64) -> Value {
    match transport {
        Transport::OpenAi => json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "test-model",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": input, "completion_tokens": output,
                      "total_tokens": input + output}
        }),
        Transport::Anthropic => json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "test-model",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": input, "output_tokens": output}
        }),
        Transport::Gemini => json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": input, "candidatesTokenCount": output,
                              "totalTokenCount": input + output}
        }),
    }
}

/// An answer calling the tool `search` with `{"q": "tea"}`.
pub fn tool_reply(transport: Transport) -> Value {
    match transport {
        Transport::OpenAi => json!({
            "id": "chatcmpl-2", "object": "chat.completion", "created": 0, "model": "test-model",
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                         "message": {"role": "assistant", "content": null, "tool_calls": [
                             {"id": "call_1", "type": "function",
                              "function": {"name": "search", "arguments": "{\"q\":\"tea\"}"}}]}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}
        }),
        Transport::Anthropic => json!({
            "id": "msg_2", "type": "message", "role": "assistant", "model": "test-model",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "search",
                         "input": {"q": "tea"}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 20, "output_tokens": 7}
        }),
        Transport::Gemini => json!({
            "candidates": [{"content": {"role": "model", "parts": [
                               {"functionCall": {"name": "search", "args": {"q": "tea"}}}]},
                            "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 7,
                              "totalTokenCount": 27}
        }),
    }
}

/// An error body as the providers shape them (the content does not matter to engram).
pub fn error_body(message: &str) -> Value {
    json!({"error": {"message": message, "type": "test"}})
}
