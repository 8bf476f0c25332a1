// api.js: the one road to this node's REST API (same origin, session cookie). Writes carry
// the session's CSRF token, as the contract asks of cookie-authenticated writes.

export class ApiError extends Error {
  // STATUS: the HTTP status (0: the node could not be reached); MESSAGE: the API's "error".
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body || null;
  }

  // The field the API's message names ("servers[0].port: ..." -> "servers"), or null.
  get field() {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:[[.][^:]*)?:\s/.exec(this.message || "");
    return m ? m[1] : null;
  }
}

let csrfToken = "";

export function setCsrfToken(token) {
  csrfToken = token || "";
}

// METHOD PATH [BODY]: resolves with the parsed JSON body (null for none); rejects with an
// ApiError (status 0 when the node did not answer at all).
export async function api(method, path, body) {
  // X-Requested-With: no WWW-Authenticate on a 401, so no browser password dialog.
  const headers = { Accept: "application/json", "X-Requested-With": "vigil-ui" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-CSRFToken"] = csrfToken;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "this node did not answer (it may be down or restarting)");
  }
  const text = await res.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!res.ok) {
    const message = json && typeof json.error === "string" ? json.error : `HTTP ${res.status}`;
    throw new ApiError(res.status, message, json);
  }
  return json;
}

// Every object of TYPE (the API pages by 1000).
export async function listAll(type) {
  const out = [];
  for (let page = 1; page <= 100; page++) {
    const body = await api("GET", `/api/${type}?page=${page}&page_size=1000`);
    out.push(...body.results);
    if (out.length >= body.count || body.results.length === 0) break;
  }
  return out;
}
