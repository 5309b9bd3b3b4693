//! The load generator's HTTP client: one HTTP/1.1 keep-alive connection per
//! worker, on hyper's connection-level API.
//!
//! The bench shares the machine's cores with the server and the database it
//! measures, so whatever the client spends is taken from them. A general
//! client (reqwest) parses a URL and matches proxies for every request; a
//! request here is a path and the headers it needs, sent on the worker's
//! own connection, and an answer's body is dropped unread.

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

/// One request but its credential: the method, the path with its query, one
/// more header if any, a JSON body if any, and whether the answer's body is
/// wanted (else it is read and dropped as it comes).
pub struct Call<'a> {
    method: Method,
    path: &'a str,
    extra: Option<(HeaderName, HeaderValue)>,
    json: Option<Vec<u8>>,
    keep_body: bool,
}

impl<'a> Call<'a> {
    pub fn new(method: Method, path: &'a str) -> Call<'a> {
        Call {
            method,
            path,
            extra: None,
            json: None,
            keep_body: false,
        }
    }

    pub fn json(self, json: Vec<u8>) -> Call<'a> {
        Call {
            json: Some(json),
            ..self
        }
    }

    pub fn header(self, name: HeaderName, value: HeaderValue) -> Call<'a> {
        Call {
            extra: Some((name, value)),
            ..self
        }
    }

    /// The answer's body is returned, not dropped.
    pub fn keep_body(self) -> Call<'a> {
        Call {
            keep_body: true,
            ..self
        }
    }
}

/// A worker's connection to the server, opened on first use and opened
/// again when it is closed or a request on it failed.
pub struct Connection {
    /// `host:port`, for the socket and the `Host` header.
    authority: String,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// A connection to `base_url` (`http://host[:port]`, no path); nothing
    /// is opened yet.
    pub fn new(base_url: &str) -> anyhow::Result<Connection> {
        let uri: http::Uri = base_url.parse().context("parsing the server's URL")?;
        if uri.scheme_str() != Some("http") {
            bail!("the load generator speaks plain http, not {base_url}");
        }
        if !matches!(uri.path(), "" | "/") {
            bail!("the server's URL must not have a path: {base_url}");
        }
        let host = uri.host().context("the server's URL has no host")?;
        let authority = format!("{host}:{}", uri.port_u16().unwrap_or(80));
        Ok(Connection {
            host: HeaderValue::from_str(&authority).context("the server's host")?,
            authority,
            sender: None,
        })
    }

    /// Sends `call` with `auth` as its `Authorization` and reads the whole
    /// answer: its status, and its body when kept (else empty).
    pub async fn send(
        &mut self,
        call: Call<'_>,
        auth: &HeaderValue,
    ) -> anyhow::Result<(u16, Bytes)> {
        let keep_body = call.keep_body;
        let request = self.request(call, auth)?;
        let answer = match tokio::time::timeout(TIMEOUT, self.exchange(request, keep_body)).await {
            Ok(answer) => answer,
            Err(_) => Err(anyhow::anyhow!("no answer within {TIMEOUT:?}")),
        };
        if answer.is_err() {
            // The next call starts on a new connection.
            self.sender = None;
        }
        answer
    }

    fn request(&self, call: Call<'_>, auth: &HeaderValue) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut request = Request::builder()
            .method(call.method)
            .uri(call.path)
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, auth.clone());
        if let Some((name, value)) = call.extra {
            request = request.header(name, value);
        }
        let body = match call.json {
            Some(json) => {
                request =
                    request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Full::new(Bytes::from(json))
            }
            None => Full::new(Bytes::new()),
        };
        request.body(body).context("building a request")
    }

    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
        keep_body: bool,
    ) -> anyhow::Result<(u16, Bytes)> {
        let response = match self.ready().await?.try_send_request(request).await {
            Ok(response) => response,
            // The connection ended before the request was written (the
            // server closed it while idle): it goes once more, on a new one.
            Err(mut unsent) => match unsent.take_message() {
                Some(request) => {
                    self.sender = None;
                    self.ready().await?.send_request(request).await?
                }
                None => return Err(unsent.into_error().into()),
            },
        };
        let status = response.status().as_u16();
        let mut body = response.into_body();
        if keep_body {
            return Ok((status, body.collect().await?.to_bytes()));
        }
        // A list's answer is tens of kilobytes: while the chunks were
        // joined only to be dropped, `memmove` was the load generator's top
        // symbol.
        while let Some(frame) = body.frame().await {
            frame?;
        }
        Ok((status, Bytes::new()))
    }

    /// The connection's sender once it can take a request, on a new
    /// connection when there is none or the server closed it.
    async fn ready(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.connect().await?,
        };
        if sender.ready().await.is_err() {
            sender = self.connect().await?;
            sender.ready().await?;
        }
        Ok(self.sender.insert(sender))
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn a_url_without_a_port_is_port_80() {
        let connection = Connection::new("http://localhost").expect("a plain URL");
        assert_eq!(connection.authority, "localhost:80");
    }

    #[test]
    fn a_url_with_a_path_or_tls_is_refused() {
        assert!(Connection::new("http://127.0.0.1:8080/hydracore").is_err());
        assert!(Connection::new("https://127.0.0.1:8443").is_err());
    }

    /// A server that answers one request per connection and closes it.
    async fn answers_once_per_connection(listener: TcpListener, connections: usize) {
        for n in 0..connections {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => request.extend_from_slice(&buf[..read]),
                }
            }
            let body = format!("connection {n}");
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_opened_again_for_the_next_request() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(answers_once_per_connection(listener, 2));
        let mut connection = Connection::new(&format!("http://{address}")).expect("URL");
        let auth = HeaderValue::from_static("Bearer test");
        for n in 0..2 {
            let call = Call::new(Method::GET, "/").keep_body();
            let (status, body) = connection.send(call, &auth).await.expect("an answer");
            assert_eq!(
                (status, body),
                (200, Bytes::from(format!("connection {n}")))
            );
        }
    }
}
