// The HTTP/1.1 response framing of the open-loop generator (bench/l7/http-load.ts): where the first
// whole response in a buffer ends, and its status.

/** The length of the first whole response in `b` and its status, or undefined if it has not all arrived. */
export function parseResponse(b: Buffer): { length: number; status: number } | undefined {
  const head = b.indexOf('\r\n\r\n');
  if (head < 0) return undefined;
  const lines = b.subarray(0, head).toString('latin1').split('\r\n');
  const status = Number(lines[0]?.split(' ')[1]);
  let length = 0;
  let chunked = false;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') length = Number(value);
    else if (name === 'transfer-encoding' && value.toLowerCase().includes('chunked')) chunked = true;
  }
  const bodyStart = head + 4;
  if (!chunked) return b.length >= bodyStart + length ? { length: bodyStart + length, status } : undefined;
  // Chunked: walk the chunk sizes up to the last (empty) chunk and its empty trailer.
  let at = bodyStart;
  for (;;) {
    const eol = b.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const size = Number.parseInt(b.subarray(at, eol).toString('latin1'), 16);
    if (size === 0) {
      const end = b.indexOf('\r\n\r\n', eol);
      return end < 0 ? undefined : { length: end + 4, status };
    }
    at = eol + 2 + size + 2;
    if (at > b.length) return undefined;
  }
}
