//! The MCP server of the HTTP transport: the tools and resources of the
//! instance whose proxy key authenticated the request.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorData, Implementation,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler};

use super::http::PublicBase;
use super::{resources, tools};
use crate::http::auth::ProxyAuth;
use crate::http::AppState;

/// What the server tells a host about itself at `initialize`.
pub fn config() -> ServerConfig {
    ServerConfig::new(
        ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .build(),
    )
    .with_server_info(Implementation::new("hydracore", env!("CARGO_PKG_VERSION")))
    .with_instructions(INSTRUCTIONS)
}

const INSTRUCTIONS: &str = "HydraCore keeps durable workflow records for this agent, and asks \
people to decide. Start a piece of work with create_workflow and record progress with \
advance_workflow (pass the `version` you last saw as expected_version). When a person must \
decide, call ask_human with the question and a resume_schema for the answer, then \
wait_for_human: it answers {\"status\": \"answered\", \"resume_data\": ...} or \
{\"status\": \"waiting\"} (call again later; nothing is lost meanwhile). Finish with \
complete_workflow.";

/// One request's server: built per request (the transport is stateless,
/// so any replica can answer any request).
#[derive(Clone)]
pub struct HydraCoreMcp {
    state: AppState,
}

impl HydraCoreMcp {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// The agent the request authenticated as (`super::http` put it there).
fn agent(context: &RequestContext<RoleServer>) -> Result<ProxyAuth, ErrorData> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<ProxyAuth>())
        .cloned()
        .ok_or_else(|| ErrorData::internal_error("the request was not authenticated", None))
}

impl ServerHandler for HydraCoreMcp {
    fn get_info(&self) -> ServerConfig {
        config()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::TOOLS.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let agent = agent(&context)?;
        let base = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<PublicBase>())
            .map(|b| b.0.clone());
        let arguments = request.arguments.unwrap_or_default();
        match tools::call(
            &self.state,
            &agent,
            base.as_deref(),
            &request.name,
            arguments,
        )
        .await
        {
            Some(result) => Ok(result.into()),
            None => Err(ErrorData::invalid_params(
                format!("no tool named {:?}", request.name),
                None,
            )),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let agent = agent(&context)?;
        Ok(ListResourcesResult::with_all_items(
            resources::list(&self.state, &agent).await?,
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let agent = agent(&context)?;
        Ok(resources::read(&self.state, &agent, &request.uri)
            .await?
            .into())
    }
}
