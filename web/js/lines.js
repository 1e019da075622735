// Splits a byte stream (watch events, followed logs) into lines across chunk boundaries.

/** A line splitter: `push(text)` returns the complete lines so far; `flush()` the rest. */
export function lineSplitter() {
  let rest = '';
  return {
    push(text) {
      rest += text;
      const parts = rest.split('\n');
      rest = parts.pop();
      return parts.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
    },
    flush() {
      const last = rest;
      rest = '';
      return last === '' ? [] : [last];
    },
  };
}

/** Reads a fetch Response body as lines (an async generator), decoding UTF-8 across chunks. */
export async function* readLines(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const split = lineSplitter();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      yield* split.push(decoder.decode(value, { stream: true }));
    }
    yield* split.push(decoder.decode());
    yield* split.flush();
  } finally {
    reader.releaseLock();
  }
}
