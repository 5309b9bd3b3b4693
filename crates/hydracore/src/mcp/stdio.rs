//! `hydracore mcp --server URL`: MCP on stdin/stdout for local agent hosts
//! that start their tools as programs. It is a client of a running server:
//! every request goes to that server's `/mcp` with the proxy key from
//! `HYDRACORE_PROXY_KEY`, and its answer comes back as it was. The tools
//! run on the server; this process keeps no state and opens no database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ErrorData,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::http::PATH;

/// Longer than the longest wait the server grants (`HYDRACORE_MAX_WAIT`
/// is below its request timeout), so that wait_for_human's answer arrives.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves MCP on stdin/stdout until the host closes stdin.
pub async fn run(server: &str, proxy_key: &str) -> anyhow::Result<()> {
    let relay = Relay::new(server, proxy_key)?;
    // A wrong URL or key is said at once, not at the model's first call.
    relay
        .request::<_, ListToolsResult>("tools/list", &json!({}))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
        .with_context(|| format!("reaching {}", relay.endpoint))?;
    let running = relay
        .serve(rmcp::transport::stdio())
        .await
        .context("starting MCP on stdio")?;
    running.waiting().await.context("serving MCP on stdio")?;
    Ok(())
}

/// Relays MCP requests to a server's `/mcp`.
pub struct Relay {
    client: reqwest::Client,
    endpoint: String,
    authorization: String,
    next_id: AtomicU64,
}

impl Relay {
    pub fn new(server: &str, proxy_key: &str) -> anyhow::Result<Self> {
        let base =
            reqwest::Url::parse(server).with_context(|| format!("the server URL {server:?}"))?;
        let endpoint = base.join(PATH).context("the server URL")?.to_string();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            client,
            endpoint,
            authorization: format!("Bearer {proxy_key}"),
            next_id: AtomicU64::new(1),
        })
    }

    /// Sends one JSON-RPC request and reads its result.
    async fn request<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<R, ErrorData> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self
            .client
            .post(&self.endpoint)
            .header("authorization", &self.authorization)
            .header("accept", "application/json, text/event-stream")
            .json(&message)
            .send()
            .await
            .map_err(|e| unreachable_server(&e))?;
        let status = response.status();
        let event_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let text = response.text().await.map_err(|e| unreachable_server(&e))?;
        if !status.is_success() {
            // The API's own answer: {"detail": "..."}.
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("detail").cloned())
                .unwrap_or(Value::String(text));
            return Err(ErrorData::internal_error(
                format!("the HydraCore server answered {status}: {detail}"),
                Some(json!({"status": status.as_u16(), "detail": detail})),
            ));
        }
        let answer = if event_stream {
            answer_in_events(&text, id)
        } else {
            serde_json::from_str(&text).ok()
        }
        .ok_or_else(|| ErrorData::internal_error("the server's answer was not JSON-RPC", None))?;
        if let Some(error) = answer.get("error") {
            return Err(serde_json::from_value(error.clone()).unwrap_or_else(|_| {
                ErrorData::internal_error("the server answered an unreadable error", None)
            }));
        }
        serde_json::from_value(answer.get("result").cloned().unwrap_or(Value::Null))
            .map_err(|e| ErrorData::internal_error(format!("the server's result: {e}"), None))
    }
}

fn unreachable_server(e: &reqwest::Error) -> ErrorData {
    ErrorData::internal_error(format!("the HydraCore server did not answer: {e}"), None)
}

/// The JSON-RPC answer with `id` in a Server-Sent Events body.
fn answer_in_events(text: &str, id: u64) -> Option<Value> {
    text.split("\n\n").find_map(|event| {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(str::trim_start)
            .collect();
        let message: Value = serde_json::from_str(&data.join("\n")).ok()?;
        (message.get("id") == Some(&json!(id))).then_some(message)
    })
}

impl ServerHandler for Relay {
    fn get_info(&self) -> ServerConfig {
        super::server::config()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.request("tools/list", &request.unwrap_or_default())
            .await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.request::<_, CallToolResult>("tools/call", &request)
            .await
            .map(Into::into)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.request("resources/list", &request.unwrap_or_default())
            .await
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.request("resources/templates/list", &request.unwrap_or_default())
            .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.request::<_, ReadResourceResult>("resources/read", &request)
            .await
            .map(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_found_among_the_events_by_its_id() {
        let body =
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                    id: 2\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n";
        assert_eq!(
            answer_in_events(body, 7),
            Some(json!({"jsonrpc": "2.0", "id": 7, "result": {}}))
        );
        assert_eq!(answer_in_events(body, 8), None);
    }
}
