//! Webhooks: the endpoints a tenant registers to be told of its events,
//! and the rules of delivering to them, as the Standard Webhooks
//! specification has them (signature, headers, retries).
//!
//! Nothing here does I/O: the randomness of a secret and of the retry
//! jitter, and the time, come from the caller.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

use crate::event::{Event, EventType};
use crate::loc;
use crate::validation::body::BodyReader;
use crate::validation::{values, Invalid, ValidationErrors};
use crate::Timestamp;

/// What a signing secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing secret: `whsec_` and the base64 of its key's bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// The key bytes, at least 24 of them, come from the caller's random
    /// source.
    pub fn from_key(key: &[u8]) -> Option<Self> {
        (key.len() >= 24).then(|| Self(format!("{SECRET_PREFIX}{}", BASE64.encode(key))))
    }

    /// A secret as stored; `None` when it is not one of ours.
    pub fn parse(text: &str) -> Option<Self> {
        let key = BASE64.decode(text.strip_prefix(SECRET_PREFIX)?).ok()?;
        Self::from_key(&key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn key(&self) -> Vec<u8> {
        self.0
            .strip_prefix(SECRET_PREFIX)
            .and_then(|b64| BASE64.decode(b64).ok())
            .unwrap_or_default()
    }

    /// `webhook-signature`: `v1,` and the base64 of the HMAC-SHA256 of
    /// `{id}.{timestamp}.{body}`, keyed with the secret's bytes.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes a key of any length.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key()) else {
            return String::new();
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// The limits a webhook request is checked against (settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookLimits {
    /// Plain `http` and private, loopback, link-local and metadata
    /// addresses are allowed (tests and local development).
    pub allow_private: bool,
    pub max_url_bytes: usize,
    pub max_description_chars: usize,
}

impl Default for WebhookLimits {
    fn default() -> Self {
        Self {
            allow_private: false,
            max_url_bytes: 2048,
            max_description_chars: 1000,
        }
    }
}

/// A registered endpoint as the API shows it (never with its secret).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    /// The event types delivered to it.
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
    /// `false` once disabled (by the receiver's 410, by failing for too
    /// long, or by a `PATCH`); `disabled_reason` says why.
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<Timestamp>,
    /// Since when every delivery to it has failed; `null` while it answers.
    pub failing_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Webhook {
    pub fn wants(&self, event_type: EventType) -> bool {
        self.event_types.contains(&event_type)
    }

    /// `event_types` as stored: comma-separated names.
    pub fn stored_types(types: &[EventType]) -> String {
        types
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads [`Webhook::stored_types`] back; unknown names are skipped.
    pub fn parse_stored_types(text: &str) -> Vec<EventType> {
        text.split(',').filter_map(EventType::parse).collect()
    }
}

/// A `POST /v1/webhooks` body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWebhook {
    pub url: String,
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
}

impl NewWebhook {
    pub fn from_body(
        body: Option<&Value>,
        limits: &WebhookLimits,
    ) -> Result<Self, ValidationErrors> {
        let body = body.unwrap_or(&Value::Null);
        let mut b = BodyReader::new(body)?;
        let url = b.required("url", |v| webhook_url(v, limits));
        let event_types = b.required("event_types", event_types);
        let description = b.optional_value("description", |v| description(v, limits));
        b.finish(|| {
            Some(Self {
                url: url?,
                event_types: event_types?,
                description,
            })
        })
    }

    /// The endpoint this registers as `id` at `now`: enabled, never failed.
    pub fn registered(self, id: Uuid, now: Timestamp) -> Webhook {
        Webhook {
            id,
            url: self.url,
            event_types: self.event_types,
            description: self.description,
            enabled: true,
            disabled_reason: None,
            disabled_at: None,
            failing_since: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A `PATCH /v1/webhooks/{id}` body: each field absent is left as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    /// `Some(None)`: cleared.
    pub description: Option<Option<String>>,
    /// `true` enables a disabled endpoint again (and forgets why it was
    /// disabled); `false` disables it.
    pub enabled: Option<bool>,
}

impl WebhookPatch {
    pub fn from_body(
        body: Option<&Value>,
        limits: &WebhookLimits,
    ) -> Result<Self, ValidationErrors> {
        let body = body.unwrap_or(&Value::Null);
        let mut b = BodyReader::new(body)?;
        let url = b.optional_value("url", |v| webhook_url(v, limits));
        let event_types = b.optional_value("event_types", event_types);
        let description = b.optional("description", |v| description(v, limits));
        let enabled = b.optional_value("enabled", |v| {
            v.as_bool()
                .ok_or_else(|| Invalid::new("bool_type", "Input should be a valid boolean"))
        });
        b.finish(|| {
            Some(Self {
                url,
                event_types,
                description,
                enabled,
            })
        })
    }

    /// `webhook` with this patch applied at `now`.
    pub fn apply(&self, mut webhook: Webhook, now: Timestamp) -> Webhook {
        if let Some(url) = &self.url {
            webhook.url.clone_from(url);
        }
        if let Some(types) = &self.event_types {
            webhook.event_types.clone_from(types);
        }
        if let Some(description) = &self.description {
            webhook.description.clone_from(description);
        }
        match self.enabled {
            Some(true) if !webhook.enabled => {
                webhook.enabled = true;
                webhook.disabled_at = None;
                webhook.disabled_reason = None;
                webhook.failing_since = None;
            }
            Some(false) if webhook.enabled => {
                webhook.enabled = false;
                webhook.disabled_at = Some(now);
                webhook.disabled_reason = Some("disabled by a PATCH".into());
            }
            _ => {}
        }
        webhook.updated_at = now;
        webhook
    }
}

fn webhook_url(v: &Value, limits: &WebhookLimits) -> Result<String, Invalid> {
    let text = values::string(v)?;
    check_url(text, limits).map(|_| text.to_owned())
}

fn event_types(v: &Value) -> Result<Vec<EventType>, Invalid> {
    let expected = || crate::validation::expected_list(EventType::ALL.iter().map(|t| t.as_str()));
    let Some(items) = v.as_array() else {
        return Err(Invalid::new("list_type", "Input should be a valid list"));
    };
    if items.is_empty() {
        return Err(Invalid::value_error("name at least one event type"));
    }
    let mut types = Vec::new();
    for item in items {
        let t = item
            .as_str()
            .and_then(EventType::parse)
            .ok_or_else(|| Invalid::enum_mismatch(expected()))?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    types.sort();
    Ok(types)
}

fn description(v: &Value, limits: &WebhookLimits) -> Result<String, Invalid> {
    let text = values::string(v)?;
    values::bounded(text, 0, limits.max_description_chars).map(str::to_owned)
}

/// Why a URL may not receive webhooks.
fn refused(reason: &str) -> Invalid {
    Invalid::value_error(reason)
}

/// Checks a webhook URL's shape: `https` (or `http` when private
/// addresses are allowed), a host, no credentials, within the length cap,
/// and, when the host is an address or `localhost`, not a private one.
/// A host name is resolved and its addresses checked with
/// [`forbidden_address`] when delivering.
pub fn check_url(text: &str, limits: &WebhookLimits) -> Result<url::Url, Invalid> {
    if text.len() > limits.max_url_bytes {
        return Err(Invalid::new(
            "string_too_long",
            format!(
                "String should have at most {} characters",
                limits.max_url_bytes
            ),
        )
        .with_ctx(json!({ "max_length": limits.max_url_bytes })));
    }
    let url = url::Url::parse(text).map_err(|e| refused(&format!("not a valid URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if limits.allow_private => {}
        _ => return Err(refused("the URL must start with https://")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("the URL must not carry credentials"));
    }
    let host = match url.host() {
        Some(host) => host,
        None => return Err(refused("the URL must name a host")),
    };
    if limits.allow_private {
        return Ok(url);
    }
    let private = match host {
        url::Host::Ipv4(ip) => forbidden_address(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => forbidden_address(IpAddr::V6(ip)),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    if private {
        return Err(refused(
            "the URL must not point at a loopback, private, link-local or metadata address",
        ));
    }
    Ok(url)
}

/// Addresses no webhook may reach: loopback, private, shared (carrier
/// NAT, which also holds some clouds' metadata services), link-local
/// (which holds the usual metadata address, 169.254.169.254),
/// unspecified, broadcast, multicast and reserved ones, and IPv6's unique
/// local and link-local ranges, with IPv4 inside IPv6 checked as IPv4.
pub fn forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        return forbidden_v4(v4);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
        // IPv4-compatible (::a.b.c.d), deprecated but still routed by some stacks.
        || (segments[..6] == [0; 6])
}

/// What becomes of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: still failing after the retry period, or the receiver
    /// answered 410.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// One event for one endpoint, as the deliveries list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Also the `webhook-id` header of every attempt.
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// The event's id, as `/v1/events` shows it.
    pub event_id: String,
    pub event_type: EventType,
    pub workflow_id: Uuid,
    pub status: DeliveryStatus,
    /// Attempts made (one that is under way counts).
    pub attempts: i64,
    /// The receiver's status code at the last attempt; `null` before any,
    /// or when it did not answer (`last_error` says why).
    pub last_status_code: Option<i64>,
    /// How long the last attempt took, in milliseconds.
    pub last_latency_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<Timestamp>,
    /// When a pending delivery is tried next.
    pub next_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// The body of a delivery: `type`, `timestamp` and the event as
/// `/v1/events` shows it.
pub fn payload(event: &Event) -> String {
    json!({
        "type": event.event_type,
        "timestamp": event.occurred_at,
        "data": event,
    })
    .to_string()
}

/// How long to wait before attempt `attempts + 1`, after `attempts`
/// failed: `base` doubled per attempt, at most `max`, then shortened by up
/// to half at random (`jitter` in `0..1`), so that endpoints that failed
/// together are not retried together.
pub fn retry_delay(attempts: i64, base: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 32)).unwrap_or(32);
    let full = base.saturating_mul(2u32.saturating_pow(doublings)).min(max);
    full.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0))
}

/// What an attempt's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Delivered,
    /// 410 Gone: the receiver wants no more; the endpoint is disabled.
    Gone,
    Failed,
}

impl Answer {
    /// A 2xx delivers; 410 disables; anything else (or no answer) fails.
    pub fn of(status: Option<u16>) -> Self {
        match status {
            Some(200..=299) => Answer::Delivered,
            Some(410) => Answer::Gone,
            _ => Answer::Failed,
        }
    }
}

/// After a failed attempt: when to try again, or `None` to give up,
/// because the delivery has been retried for `retry_for` since
/// `retrying_since`.
pub fn next_attempt(
    retrying_since: Timestamp,
    now: Timestamp,
    retry_for: Duration,
    delay: Duration,
) -> Option<Timestamp> {
    let deadline = plus(retrying_since, retry_for)?;
    let next = plus(now, delay)?;
    (now < deadline).then_some(next.min(deadline))
}

/// Whether an endpoint failing since `failing_since` is disabled at `now`.
pub fn failing_too_long(failing_since: Timestamp, now: Timestamp, disable_after: Duration) -> bool {
    plus(failing_since, disable_after).is_none_or(|until| now >= until)
}

/// `t` plus `d`, if representable.
pub fn plus(t: Timestamp, d: Duration) -> Option<Timestamp> {
    let micros = i64::try_from(d.as_micros()).ok()?;
    Timestamp::from_unix_micros(t.unix_micros().checked_add(micros)?)
}

/// The 422 of a tenant at its endpoint limit.
pub fn too_many(max: u32) -> ValidationErrors {
    ValidationErrors::single(
        Invalid::value_error(&format!(
            "a tenant has at most {max} webhook endpoints; delete one first"
        ))
        .at(loc!["body"], Value::Null),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> WebhookLimits {
        WebhookLimits::default()
    }

    #[test]
    fn a_secret_signs_as_the_standard_webhooks_example_does() {
        // The specification's example (standard-webhooks, spec/standard-webhooks.md).
        let secret =
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_secret_needs_at_least_24_bytes_of_key() {
        assert!(WebhookSecret::from_key(&[7; 23]).is_none());
        let secret = WebhookSecret::from_key(&[7; 24]).expect("secret");
        assert!(secret.as_str().starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(secret.as_str()), Some(secret));
        assert!(WebhookSecret::parse("nope").is_none());
    }

    #[test]
    fn urls_must_be_https_and_public_unless_private_ones_are_allowed() {
        assert!(check_url("https://hooks.example.com/in", &strict()).is_ok());
        for bad in [
            "http://hooks.example.com/in",
            "https://127.0.0.1/in",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fd00:ec2::254]/",
            "https://localhost:8443/",
            "https://user:pw@hooks.example.com/",
            "ftp://hooks.example.com/",
            "not a url",
        ] {
            assert!(check_url(bad, &strict()).is_err(), "{bad} passed");
        }
        let open = WebhookLimits {
            allow_private: true,
            ..strict()
        };
        assert!(check_url("http://127.0.0.1:9000/in", &open).is_ok());
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(check_url(&long, &open).is_err());
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(!forbidden_address(ip), "{ip}");
        }
        for ip in [
            "100.100.100.200",
            "0.0.0.0",
            "192.168.1.1",
            "64:ff9b::7f00:1",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(forbidden_address(ip), "{ip}");
        }
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_maximum_with_jitter() {
        let (base, max) = (Duration::from_secs(5), Duration::from_secs(3600));
        assert_eq!(retry_delay(1, base, max, 0.0), Duration::from_secs(5));
        assert_eq!(retry_delay(3, base, max, 0.0), Duration::from_secs(20));
        assert_eq!(retry_delay(40, base, max, 0.0), max);
        assert_eq!(retry_delay(3, base, max, 1.0), Duration::from_secs(10));
    }

    #[test]
    fn a_delivery_is_given_up_after_the_retry_period() {
        let start = Timestamp::from_unix_micros(0).expect("t");
        let day = Duration::from_secs(86_400);
        let later = plus(start, Duration::from_secs(60)).expect("t");
        assert!(next_attempt(start, later, day, Duration::from_secs(5)).is_some());
        let after = plus(start, day).expect("t");
        assert_eq!(
            next_attempt(start, after, day, Duration::from_secs(5)),
            None
        );
        assert!(failing_too_long(start, after, day));
        assert!(!failing_too_long(start, later, day));
    }

    #[test]
    fn answers_deliver_disable_or_fail() {
        assert_eq!(Answer::of(Some(204)), Answer::Delivered);
        assert_eq!(Answer::of(Some(410)), Answer::Gone);
        assert_eq!(Answer::of(Some(500)), Answer::Failed);
        assert_eq!(Answer::of(Some(301)), Answer::Failed);
        assert_eq!(Answer::of(None), Answer::Failed);
    }

    #[test]
    fn a_body_names_its_problems() {
        let body = json!({"url": "http://x.example", "event_types": ["workflow.nope"]});
        let e = NewWebhook::from_body(Some(&body), &strict()).expect_err("refused");
        let locs: Vec<_> = e.0.iter().map(|e| e.loc.clone()).collect();
        assert_eq!(locs, vec![loc!["body", "url"], loc!["body", "event_types"]]);
    }
}
