// Loads the config stream's service definition from xds.proto once.

import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export const CONFIG_STREAM_SERVICE = 'ambit.xds.v1.ConfigStream';

const definition = loadSync(resolve(import.meta.dirname, 'proto/xds.proto'), {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

const loaded = grpc.loadPackageDefinition(definition) as unknown as {
  ambit: {
    xds: {
      v1: { ConfigStream: grpc.ServiceClientConstructor };
    };
  };
};

/** The generated client class; its `service` is the server-side definition. */
export const ConfigStreamClient = loaded.ambit.xds.v1.ConfigStream;
export const configStreamDefinition: grpc.ServiceDefinition = ConfigStreamClient.service;
