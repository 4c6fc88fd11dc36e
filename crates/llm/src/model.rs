//! The provider-neutral interface: what the deriver and other features call.

use async_trait::async_trait;
use serde_json::Value;

use crate::error::LlmError;
use crate::schema::OutputSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One turn of the conversation after the system prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Text {
        role: Role,
        text: String,
    },
    /// The model's earlier tool calls, replayed so it sees its own turn.
    ToolCalls(Vec<ToolCall>),
    /// What the tool `name` returned for the call `call_id` (Gemini matches results
    /// by name, the others by id).
    ToolResult {
        call_id: String,
        name: String,
        content: String,
    },
}

impl Message {
    pub fn user(text: impl Into<String>) -> Self {
        Self::Text {
            role: Role::User,
            text: text.into(),
        }
    }

    pub fn assistant(text: impl Into<String>) -> Self {
        Self::Text {
            role: Role::Assistant,
            text: text.into(),
        }
    }
}

/// A tool the model may call: its name, what it does, and a JSON schema of its input.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// A call the model asked for. `arguments` is the model's own JSON, unchecked.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub call_id: String,
    pub name: String,
    pub arguments: Value,
}

/// One model call's input.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    /// Overrides the configured maximum output tokens for this call.
    pub max_tokens: Option<u32>,
}

impl ChatRequest {
    pub fn new(system: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            system: Some(system.into()),
            messages,
            ..Self::default()
        }
    }
}

/// Tokens the provider reported for one call (0 where it reported none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// A model's answer: its text (empty when it only called tools), its tool calls and
/// what it cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatReply {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
}

/// A structured answer: JSON that satisfied the schema it was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonReply {
    pub value: Value,
    pub usage: Usage,
}

/// A chat model, whatever the provider. Implementations handle timeouts and retries;
/// every error is an [`LlmError`].
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// One call. When `output` is given, the provider is asked for JSON following that
    /// schema (each provider's own structured-output mode); the text is returned as
    /// the model wrote it.
    async fn chat(
        &self,
        request: &ChatRequest,
        output: Option<&OutputSchema>,
    ) -> Result<ChatReply, LlmError>;

    /// A call whose answer must be JSON satisfying `schema`. The reply is checked here,
    /// whatever the provider promised: model output is untrusted input, and a reply
    /// that is not valid is an error carrying a bounded excerpt of it, never an empty
    /// result.
    async fn chat_json(
        &self,
        request: &ChatRequest,
        schema: &OutputSchema,
    ) -> Result<JsonReply, LlmError> {
        let reply = self.chat(request, Some(schema)).await?;
        Ok(JsonReply {
            value: schema.check(&reply.text)?,
            usage: reply.usage,
        })
    }
}
