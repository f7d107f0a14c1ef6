/*
 * A transport over the Fetch API (a browser, or any runtime with `fetch`): the console runs the admin API
 * client on it. An import uploads a Blob (a file the user picked) as the request body.
 */
import type { ApiResponse, Transport } from "./client.ts";

/** The `fetch` function a transport calls (the global one by default). */
export type FetchFunction = (input: URL, init: RequestInit) => Promise<Response>;

/** A transport that sends each request with `fetch`; an upload is a Blob. */
export function fetchTransport(
  fetchFunction: FetchFunction = (input, init) => fetch(input, init),
): Transport<Blob> {
  return async (request) => {
    const response = await fetchFunction(request.url, {
      method: request.method,
      headers: request.headers,
      ...(request.body !== undefined ? { body: request.body } : {}),
    });
    return answerOf(response);
  };
}

/** A Fetch API response as the client reads it. */
function answerOf(response: Response): ApiResponse {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name.toLowerCase()] = value;
  });
  return {
    status: response.status,
    headers,
    text: () => response.text(),
    chunks: async function* () {
      if (response.body === null) return;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (let read = await reader.read(); !read.done; read = await reader.read()) yield read.value;
    },
  };
}
