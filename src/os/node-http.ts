// node:http, loaded with require(). An ES module import of node:http builds its namespace by reading every
// export, and one of them (WebSocket, a lazy getter) loads Node's bundled undici: ~10 MB of resident
// memory in every process that imports node:http, for a client no proxy uses. Types still come from
// `import type … from 'node:http'`, which is erased.

import { createRequire } from 'node:module';

export const http: typeof import('node:http') = createRequire(import.meta.url)('node:http');
