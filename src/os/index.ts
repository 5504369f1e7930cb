// What the operating system tells a proxy that Node does not: a redirected connection's original
// destination and a Unix socket peer's uid (the addon in native/), and private local endpoints built
// on them (0700 directories, 0600 sockets whose peers are checked); node:http without the cost of its
// ES module namespace.

export { type Addon, addon, fdOf, peerUid, requireAddon } from './addon.ts';
export { OS_ERRORS } from './errors.ts';
export { http } from './node-http.ts';
export { listenPrivateSocket, type PrivateSocketOptions, preparePrivateDir } from './private.ts';
