// The one HTTP helper of the tests: a request to a running hearth, answered as status, parsed JSON and text.

export interface Reply {
  status: number;
  /** the body parsed as JSON; null when it is empty or not JSON (then `text` holds it) */
  json: any;
  text: string;
  /** the content-type header ('' when absent) */
  type: string;
  headers: Headers;
}

/**
 * Calls `base + path`. A body makes it a POST with `content-type: application/json`: an object is
 * sent as JSON, a string as it is (for malformed JSON). `init` is the method, or fetch options whose
 * headers are added to the JSON content type.
 */
export async function call(
  base: string,
  path: string,
  body?: unknown,
  init: string | RequestInit = {},
): Promise<Reply> {
  const options: RequestInit = typeof init === 'string' ? { method: init } : init;
  const res = await fetch(`${base}${path}`, {
    ...options,
    method: options.method ?? (body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...Object.fromEntries(new Headers(options.headers).entries()),
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.status, json, text, type: res.headers.get('content-type') ?? '', headers: res.headers };
}
