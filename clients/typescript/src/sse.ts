// Server-Sent Events, line by line (the WHATWG rules this server needs).

export interface SseMessage {
  id: string | null;
  event: string | null;
  data: string;
}

export class SseParser {
  private id: string | null = null;
  private event: string | null = null;
  private data: string[] = [];

  feed(line: string): SseMessage | null {
    if (line === "") {
      if (this.data.length === 0) {
        this.event = null;
        return null;
      }
      const message = { id: this.id, event: this.event, data: this.data.join("\n") };
      this.event = null;
      this.data = [];
      return message;
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "data") this.data.push(value);
    else if (name === "event") this.event = value;
    else if (name === "id" && !value.includes("\0")) this.id = value;
    return null;
  }
}

/** The lines of a byte stream (LF, CRLF or CR ends a line). */
export async function* lines(
  body: ReadableStream<Uint8Array>,
  onChunk: () => void,
): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      onChunk();
      buffer += decoder.decode(value, { stream: true });
      let end: RegExpExecArray | null;
      const pattern = /\r\n|\r|\n/g;
      let start = 0;
      while ((end = pattern.exec(buffer)) !== null) {
        // A CR at the very end may be the first half of a CRLF.
        if (end[0] === "\r" && end.index === buffer.length - 1) break;
        yield buffer.slice(start, end.index);
        start = end.index + end[0].length;
      }
      buffer = buffer.slice(start);
    }
  } finally {
    // Leaving early closes the connection; after the end this does nothing.
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
