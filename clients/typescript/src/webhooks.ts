// Checks that a webhook delivery came from HydraCore (Standard Webhooks),
// with the Web Crypto API of Node >= 18 and browsers.

import { webCrypto } from "./crypto.js";

/** How far a delivery's `webhook-timestamp` may be from now (seconds): older ones are replays. */
export const TOLERANCE_SECONDS = 300;

/** The delivery is not signed with the secret, or too old or new. */
export class WebhookVerificationError extends Error {
  override name = "WebhookVerificationError";
}

export type WebhookHeaders =
  | Headers
  | Record<string, string | string[] | undefined>;

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") {
    return (headers as Headers).get(name) ?? undefined;
  }
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value.join(" ") : value;
  }
  return undefined;
}

function bytesOf(body: string | Uint8Array | ArrayBuffer): Uint8Array {
  if (typeof body === "string") return new TextEncoder().encode(body);
  return body instanceof Uint8Array ? body : new Uint8Array(body);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function sameText(a: string, b: string): boolean {
  // Constant time in the length of the expected signature.
  let differ = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) differ |= a.charCodeAt(i) ^ b.charCodeAt(i % (b.length || 1));
  return differ === 0;
}

/**
 * Throws `WebhookVerificationError` unless the delivery is signed with
 * `secret` (`whsec_...`, as the webhook's registration answered it).
 * `body` is the raw request body, before any JSON parsing; `headers` a
 * `Headers` or Node's `req.headers`. Any `v1,` signature of the list may match.
 */
export async function verifyWebhook(
  secret: string,
  headers: WebhookHeaders,
  body: string | Uint8Array | ArrayBuffer,
  options: { toleranceSeconds?: number; now?: number } = {},
): Promise<void> {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (id === undefined || timestamp === undefined || signatures === undefined) {
    throw new WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature");
  }
  const sentAt = Number(timestamp);
  if (!/^\d+$/.test(timestamp) || !Number.isSafeInteger(sentAt)) {
    throw new WebhookVerificationError("webhook-timestamp is not a number");
  }
  const now = options.now ?? Date.now() / 1000;
  if (Math.abs(now - sentAt) > (options.toleranceSeconds ?? TOLERANCE_SECONDS)) {
    throw new WebhookVerificationError("webhook-timestamp is too far from now");
  }
  let key: Uint8Array;
  try {
    key = fromBase64(secret.startsWith("whsec_") ? secret.slice(6) : secret);
  } catch {
    throw new WebhookVerificationError("the secret is not whsec_ and base64");
  }
  const prefix = new TextEncoder().encode(`${id}.${timestamp}.`);
  const raw = bytesOf(body);
  const signed = new Uint8Array(prefix.length + raw.length);
  signed.set(prefix);
  signed.set(raw, prefix.length);
  const subtle = (await webCrypto()).subtle;
  const hmac = await subtle.importKey("raw", key as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const expected = toBase64(new Uint8Array(await subtle.sign("HMAC", hmac, signed as BufferSource)));
  for (const signature of signatures.split(" ")) {
    const comma = signature.indexOf(",");
    if (signature.slice(0, comma) === "v1" && sameText(expected, signature.slice(comma + 1))) return;
  }
  throw new WebhookVerificationError("no signature matches");
}
