//! The load generator's HTTP client: one HTTP/1.1 keep-alive connection per
//! worker, on hyper's connection-level API.
//!
//! The bench shares the machine's two cores with the server and the
//! database it measures, so whatever the client spends is taken from them.
//! reqwest, which the workers used first, parses the URL, matches proxies
//! and passes each request through its pool's task: under the SQLite agent
//! mix the load generator was 23 % of all CPU samples (docs/benchmarks.md,
//! round 6). This client formats the request line from a path and sends it
//! on the worker's own connection, as wrk does.

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long a request may take before the worker gives up on it (and on
/// its connection).
const TIMEOUT: Duration = Duration::from_secs(30);

/// One request: the method, the path with its query, the `Authorization`
/// value, one more header if any, a JSON body if any, and whether the
/// answer's body is wanted (else it is read and dropped as it comes).
pub struct Call<'a> {
    pub method: Method,
    pub path: &'a str,
    pub auth: &'a str,
    pub extra: Option<(HeaderName, &'static str)>,
    pub json: Option<Vec<u8>>,
    pub keep_body: bool,
}

/// A worker's connection to the server, opened on first use and opened
/// again after an error.
pub struct Connection {
    /// `host:port`, for the socket and the `Host` header.
    authority: String,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// A connection to `base_url` (`http://host:port`); nothing is opened yet.
    pub fn new(base_url: &str) -> anyhow::Result<Connection> {
        let uri: http::Uri = base_url.parse().context("parsing the server's URL")?;
        if uri.scheme_str() != Some("http") {
            bail!("the load generator speaks plain http, not {base_url}");
        }
        let authority = uri
            .authority()
            .context("the server's URL has no host")?
            .as_str()
            .to_owned();
        let host = HeaderValue::from_str(&authority).context("the server's host")?;
        Ok(Connection {
            authority,
            host,
            sender: None,
        })
    }

    /// Sends `call` and reads the whole answer: its status, and its body
    /// when kept (else empty).
    pub async fn send(&mut self, call: Call<'_>) -> anyhow::Result<(u16, Bytes)> {
        let answer = match tokio::time::timeout(TIMEOUT, self.exchange(call)).await {
            Ok(answer) => answer,
            Err(_) => Err(anyhow::anyhow!("no answer within {TIMEOUT:?}")),
        };
        if answer.is_err() {
            // The next call starts on a new connection.
            self.sender = None;
        }
        answer
    }

    async fn exchange(&mut self, call: Call<'_>) -> anyhow::Result<(u16, Bytes)> {
        let keep_body = call.keep_body;
        let mut request = Request::builder()
            .method(call.method)
            .uri(call.path)
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, call.auth);
        if let Some((name, value)) = call.extra {
            request = request.header(name, value);
        }
        let body = match call.json {
            Some(json) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(json))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(body).context("building a request")?;
        let sender = self.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        if keep_body {
            return Ok((status, body.collect().await?.to_bytes()));
        }
        // A list's answer is tens of kilobytes; joining its chunks only to
        // drop them was the load generator's largest cost.
        while let Some(frame) = body.frame().await {
            frame?;
        }
        Ok((status, Bytes::new()))
    }

    /// The connection's sender once it can take a request, connecting first
    /// when there is none.
    async fn ready(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        let sender = match self.sender.take() {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        let sender = self.sender.insert(sender);
        sender.ready().await?;
        Ok(sender)
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .with_context(|| format!("connecting to {}", self.authority))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        // hyper's connection future does the reading and writing; it ends
        // when the sender is dropped or the server closes.
        tokio::spawn(connection);
        Ok(sender)
    }
}
