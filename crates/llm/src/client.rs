//! [`ChatModel`] for the three transports through `genai`, the only file that knows it.

use std::time::Duration;

use async_trait::async_trait;
use genai::adapter::AdapterKind;
use genai::chat::{self as g, ChatOptions, JsonSpec};
use genai::resolver::{AuthData, Endpoint};
use genai::{ModelIden, ServiceTarget};

use crate::config::{ModelSettings, Transport};
use crate::error::LlmError;
use crate::model::{ChatModel, ChatReply, ChatRequest, Message, Role, ToolCall, Usage};
use crate::retry::{Failure, RetryPolicy, retry_after, with_retries};
use crate::schema::OutputSchema;

/// A configured model on an OpenAI-compatible, Anthropic or Gemini endpoint.
pub struct GenaiModel {
    settings: ModelSettings,
    retry: RetryPolicy,
    client: genai::Client,
}

impl GenaiModel {
    pub fn new(settings: ModelSettings) -> Result<Self, LlmError> {
        // genai builds its own reqwest client unless given one; ours has the workspace's
        // rustls setup and a connect timeout, so an unreachable host fails fast.
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| transport(&settings, 0, e.to_string()))?;
        let client = genai::Client::builder()
            .with_reqwest(http)
            .build()
            .map_err(|e| transport(&settings, 0, e.to_string()))?;
        Ok(Self {
            settings,
            retry: RetryPolicy::default(),
            client,
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn settings(&self) -> &ModelSettings {
        &self.settings
    }

    /// Where and as what to call: given per call, so genai's own model-name routing
    /// and environment lookups never apply.
    fn target(&self) -> ServiceTarget {
        let kind = match self.settings.transport {
            Transport::OpenAi => AdapterKind::OpenAI,
            Transport::Anthropic => AdapterKind::Anthropic,
            Transport::Gemini => AdapterKind::Gemini,
        };
        // genai's OpenAI adapter always sends a bearer token; keyless local servers
        // ignore it.
        let key = self
            .settings
            .api_key
            .clone()
            .unwrap_or_else(|| "none".to_owned());
        ServiceTarget {
            endpoint: Endpoint::from_owned(self.settings.base_url.clone()),
            auth: AuthData::from_single(key),
            model: ModelIden::new(kind, self.settings.model.clone()),
        }
    }

    fn options(&self, request: &ChatRequest, output: Option<&OutputSchema>) -> ChatOptions {
        let mut options = ChatOptions::default().with_max_tokens(
            request
                .max_tokens
                .unwrap_or(self.settings.max_output_tokens),
        );
        if let Some(t) = self.settings.temperature {
            options = options.with_temperature(t);
        }
        if let Some(schema) = output {
            options =
                options.with_response_format(JsonSpec::new(schema.name(), schema.schema().clone()));
        }
        options
    }

    async fn attempt(
        &self,
        request: g::ChatRequest,
        options: &ChatOptions,
    ) -> Result<ChatReply, Failure> {
        let call = self.client.exec_chat(self.target(), request, Some(options));
        let response = match tokio::time::timeout(self.settings.timeout, call).await {
            Err(_) => {
                return Err(Failure::Final(LlmError::Timeout {
                    provider: self.settings.transport.name(),
                    after: self.settings.timeout,
                    setting: self.settings.timeout_setting.clone(),
                }));
            }
            Ok(Err(e)) => return Err(classify(&self.settings, e)),
            Ok(Ok(response)) => response,
        };
        let usage = Usage {
            input_tokens: count(response.usage.prompt_tokens),
            output_tokens: count(response.usage.completion_tokens),
        };
        let tool_calls = response
            .tool_calls()
            .into_iter()
            .map(|c| ToolCall {
                call_id: c.call_id.clone(),
                name: c.fn_name.clone(),
                arguments: c.fn_arguments.clone(),
            })
            .collect();
        Ok(ChatReply {
            text: response.texts().concat(),
            tool_calls,
            usage,
        })
    }
}

#[async_trait]
impl ChatModel for GenaiModel {
    async fn chat(
        &self,
        request: &ChatRequest,
        output: Option<&OutputSchema>,
    ) -> Result<ChatReply, LlmError> {
        let options = self.options(request, output);
        let converted = convert(request);
        with_retries(&self.retry, self.settings.transport.name(), || {
            self.attempt(converted.clone(), &options)
        })
        .await
    }
}

fn convert(request: &ChatRequest) -> g::ChatRequest {
    let mut out = g::ChatRequest::default();
    if let Some(system) = &request.system {
        out = out.with_system(system.clone());
    }
    for message in &request.messages {
        out = out.append_message(match message {
            Message::Text {
                role: Role::User,
                text,
            } => g::ChatMessage::user(text.clone()),
            Message::Text {
                role: Role::Assistant,
                text,
            } => g::ChatMessage::assistant(text.clone()),
            Message::ToolCalls(calls) => g::ChatMessage::from(
                calls
                    .iter()
                    .map(|c| g::ToolCall {
                        call_id: c.call_id.clone(),
                        fn_name: c.name.clone(),
                        fn_arguments: c.arguments.clone(),
                        thought_signatures: None,
                    })
                    .collect::<Vec<_>>(),
            ),
            Message::ToolResult {
                call_id,
                name,
                content,
            } => g::ChatMessage::from(
                g::ToolResponse::new(call_id.clone(), content.clone()).with_fn_name(name.clone()),
            ),
        });
    }
    if !request.tools.is_empty() {
        out = out.with_tools(request.tools.iter().map(|t| {
            g::Tool::new(t.name.clone())
                .with_description(t.description.clone())
                .with_schema(t.input_schema.clone())
        }));
    }
    out
}

/// Sorts a genai error into what the retry loop needs: the provider's status and
/// `Retry-After`, a failed connection, or something retrying cannot fix.
fn classify(settings: &ModelSettings, e: genai::Error) -> Failure {
    if let Some(status) = e.status() {
        return Failure::Status {
            status: status.as_u16(),
            retry_after: e.headers().and_then(retry_after),
            body: e.to_string(),
        };
    }
    match &e {
        genai::Error::WebModelCall {
            webc_error: genai::webc::Error::Reqwest(_),
            ..
        } => Failure::Unreachable(e.to_string()),
        _ => Failure::Final(transport(settings, 1, e.to_string())),
    }
}

fn transport(settings: &ModelSettings, attempts: u32, message: String) -> LlmError {
    LlmError::Transport {
        provider: settings.transport.name(),
        attempts,
        message: crate::error::excerpt(&message),
    }
}

fn count(tokens: Option<i32>) -> u64 {
    tokens.and_then(|t| u64::try_from(t).ok()).unwrap_or(0)
}
