// The config stream's messages as grpc-js hands them over (proto-loader, camelCase fields).

export interface XdsNode {
  kind: 'ztunnel' | 'waypoint' | (string & {});
  name: string;
  build?: string;
}

export interface DeltaRequest {
  node?: XdsNode | null;
  typeUrl: string;
  initialResourceVersions?: Record<string, string>;
  responseNonce?: string;
  errorDetail?: string;
}

export interface WireResource {
  name: string;
  version: string;
  body: Buffer;
}

export interface DeltaResponse {
  typeUrl: string;
  systemVersionInfo: string;
  resources: WireResource[];
  removedResources: string[];
  nonce: string;
}
