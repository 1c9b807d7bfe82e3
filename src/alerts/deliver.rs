//! Delivering one message over HTTP (webhooks, ntfy, Alertmanager): the
//! I/O edge. One client a channel, made once, with the system's roots and
//! the channel's own `ca_file`; every request under a time limit.
//!
//! What the server answered decides what happens next: 2xx is delivered;
//! 4xx is [`Delivery::Refused`] (the request itself is wrong: retrying
//! would not help, the first line of the answer says why), except 408 and
//! 429 (too slow, too many: the server asks to be asked later); anything
//! else (5xx, a refused connection, a timeout) is [`Delivery::Failed`] and
//! is tried again later. Only the first 4 KiB of an answer
//! are read.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::Request;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use url::Url;

use super::settings::Secret;

/// How much of an answer is read, for its first line.
const ANSWER_READ: usize = 4096;

/// How long one delivery may take, connection included.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// The server refused the request (4xx): not tried again.
    Refused {
        status: u16,
        answer: String,
    },
    /// Not this time (5xx, no connection, a timeout): tried again later.
    Failed(String),
}

/// An HTTP endpoint that takes a POST.
pub struct HttpTarget {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: Url,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl HttpTarget {
    /// A client for `url` trusting the system's roots and `ca_file`, with
    /// these extra request headers.
    pub fn new(
        url: Url,
        headers: &[(String, Secret)],
        ca_file: Option<&Path>,
    ) -> Result<HttpTarget, String> {
        let mut roots = rustls::RootCertStore::empty();
        // A system without roots can still reach its own CA's servers.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(path) = ca_file {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let headers = headers
            .iter()
            .map(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("{name:?} is not a header name"))?;
                let value = HeaderValue::from_str(&value.0)
                    .map_err(|_| format!("the value of {name} is not a header value"))?;
                Ok((name, value))
            })
            .collect::<Result<_, String>>()?;
        Ok(HttpTarget {
            client,
            url,
            headers,
        })
    }

    /// POST `body` as `content_type` to the endpoint (or to `path` under
    /// it, for Alertmanager's `/api/v2/alerts`).
    pub async fn post(&self, path: Option<&str>, content_type: &str, body: Vec<u8>) -> Delivery {
        let url = match path {
            None => self.url.clone(),
            Some(p) => match self.url.join(p) {
                Ok(u) => u,
                Err(e) => return Delivery::Failed(format!("{}: {p}: {e}", host(&self.url))),
            },
        };
        let mut request = Request::post(url.as_str())
            .header(CONTENT_TYPE, content_type)
            .header(USER_AGENT, concat!("edgeprobe/", env!("CARGO_PKG_VERSION")));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let request = match request.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => {
                return Delivery::Failed(format!(
                    "{}: the request could not be built ({e}); check the channel's headers_file",
                    host(&url)
                ))
            }
        };
        let answer = async {
            let response = self.client.request(request).await.map_err(|e| {
                // The client's error says little ("client error (Connect)");
                // its sources say why ("tcp connect error: Connection refused").
                let why = certificate_problem(&e).unwrap_or_else(|| causes(&e));
                format!("{}: {why}", host(&url))
            })?;
            let status = response.status().as_u16();
            // A first line is all that is shown: a server that answers
            // with megabytes is not read to the end.
            let mut body = Vec::new();
            let mut stream = response.into_body();
            while body.len() < ANSWER_READ {
                match stream.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            body.extend_from_slice(data);
                        }
                    }
                    _ => break,
                }
            }
            Ok::<_, String>((status, first_line(&body)))
        };
        match tokio::time::timeout(DELIVERY_TIMEOUT, answer).await {
            Err(_) => Delivery::Failed(format!(
                "{}: no answer within {}s",
                host(&url),
                DELIVERY_TIMEOUT.as_secs()
            )),
            Ok(Err(e)) => Delivery::Failed(e),
            Ok(Ok((status, _))) if (200..300).contains(&status) => Delivery::Delivered,
            Ok(Ok((status @ (408 | 429), answer))) => Delivery::Failed(format!(
                "{} answered {status} (asked to try later): {answer}",
                host(&url)
            )),
            Ok(Ok((status, answer))) if (400..500).contains(&status) => {
                Delivery::Refused { status, answer }
            }
            Ok(Ok((status, answer))) => {
                Delivery::Failed(format!("{} answered {status}: {answer}", host(&url)))
            }
        }
    }
}

/// `host:port` of a URL, for messages (never its path: it may be a secret).
fn host(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => url.scheme().to_string(),
    }
}

/// What was wrong with the server's certificate, in words, if the
/// connection failed on it: the usual one is a CA that neither the system's
/// roots nor the channel's `ca_file` hold.
fn certificate_problem(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::CertificateError as C;
    let mut source = Some(e);
    while let Some(e) = source {
        if let Some(rustls::Error::InvalidCertificate(c)) = e.downcast_ref::<rustls::Error>() {
            return Some(match c {
                // BadSignature: a CA of that name is trusted, but another
                // one signed it (a CA made anew, say).
                C::UnknownIssuer | C::BadSignature => format!(
                    "the server's certificate is not trusted ({c}): no CA in the system's \
                     roots or the channel's ca_file signed it"
                ),
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    format!("the server's certificate is not for this address ({c})")
                }
                C::Expired | C::ExpiredContext { .. } => {
                    format!("the server's certificate has expired ({c})")
                }
                _ => format!("the server's certificate is not accepted ({c})"),
            });
        }
        // An io::Error's source skips the error it wraps: look inside.
        source = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// The sources of `e`, outermost first, joined with `: `; `e` itself only
/// when it has none.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut said: Vec<String> = Vec::new();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // An io::Error wrapping another repeats its text.
        if said.last() != Some(&text) {
            said.push(text);
        }
        source = cause.source();
    }
    if said.is_empty() {
        e.to_string()
    } else {
        said.join(": ")
    }
}

/// The first line of an answer, printable and at most 200 characters.
fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-shot HTTP server on loopback: answers `status` with `body`
    /// and hands back the request it read.
    async fn answer_once(
        status: &'static str,
        body: &'static str,
    ) -> (Url, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then a body of Content-Length bytes.
            loop {
                let n = conn.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if seen.len() >= end + 4 + len || n == 0 {
                        break;
                    }
                }
            }
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&seen).to_string()
        });
        (format!("http://{addr}/hook").parse().unwrap(), task)
    }

    #[tokio::test]
    async fn a_2xx_is_delivered_with_the_headers_and_body() {
        let (url, server) = answer_once("204 No Content", "").await;
        let headers = [("Authorization".to_string(), Secret("Bearer s3cret".into()))];
        let target = HttpTarget::new(url, &headers, None).unwrap();
        let d = target
            .post(None, "application/json", br#"{"a":1}"#.to_vec())
            .await;
        assert_eq!(d, Delivery::Delivered);
        let request = server.await.unwrap();
        assert!(request.starts_with("POST /hook HTTP/1.1\r\n"), "{request}");
        assert!(
            request
                .to_ascii_lowercase()
                .contains("authorization: bearer s3cret"),
            "{request}"
        );
        assert!(request.ends_with(r#"{"a":1}"#), "{request}");
    }

    #[tokio::test]
    async fn a_4xx_is_refused_with_the_first_line_of_the_answer() {
        let (url, _server) = answer_once("400 Bad Request", "\ninvalid_payload\nmore").await;
        let target = HttpTarget::new(url, &[], None).unwrap();
        let d = target.post(None, "application/json", b"{}".to_vec()).await;
        assert_eq!(
            d,
            Delivery::Refused {
                status: 400,
                answer: "invalid_payload".into()
            }
        );
    }

    #[tokio::test]
    async fn too_many_requests_is_tried_again_not_refused() {
        for status in ["429 Too Many Requests", "408 Request Timeout"] {
            let (url, _server) = answer_once(status, "slow down").await;
            let target = HttpTarget::new(url, &[], None).unwrap();
            let d = target.post(None, "application/json", b"{}".to_vec()).await;
            assert!(
                matches!(&d, Delivery::Failed(why) if why.contains("try later") && why.contains("slow down")),
                "{status}: {d:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_5xx_or_no_server_fails_and_is_tried_again() {
        let (url, _server) = answer_once("503 Service Unavailable", "busy").await;
        let target = HttpTarget::new(url, &[], None).unwrap();
        let d = target.post(None, "application/json", b"{}".to_vec()).await;
        assert!(
            matches!(&d, Delivery::Failed(why) if why.contains("503")),
            "{d:?}"
        );

        // A port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url: Url = format!("http://127.0.0.1:{port}/hook").parse().unwrap();
        let target = HttpTarget::new(url, &[], None).unwrap();
        let d = target.post(None, "application/json", b"{}".to_vec()).await;
        assert!(
            matches!(&d, Delivery::Failed(why) if why.starts_with(&format!("127.0.0.1:{port}"))
                && why.contains("onnection refused")),
            "{d:?}"
        );
    }

    #[tokio::test]
    async fn alertmanager_posts_under_the_server_url() {
        let (url, server) = answer_once("200 OK", "").await;
        let base: Url = url.join("/").unwrap();
        let target = HttpTarget::new(base, &[], None).unwrap();
        let d = target
            .post(Some("/api/v2/alerts"), "application/json", b"[]".to_vec())
            .await;
        assert_eq!(d, Delivery::Delivered);
        assert!(server
            .await
            .unwrap()
            .starts_with("POST /api/v2/alerts HTTP/1.1"));
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let url: Url = "https://127.0.0.1:9/".parse().unwrap();
        let e = HttpTarget::new(url, &[], Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .unwrap();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
